"""The search: rounds of generated rewards, screened and ranked, then the finalists.

:mod:`.loop` runs it (:class:`~rewardsmith.search.loop.Search`), :mod:`.feedback` builds what the
generator is shown each round, :mod:`.ensembles` turns the named ensemble configurations into
trials, and :mod:`.baseline` finds the base-rewards-only baseline trained before round 1. Only
the light :mod:`.baseline` names are imported here, so any module of the package can import
them without a cycle.
"""

from rewardsmith.search.baseline import BASELINE_KIND, screening_baseline

__all__ = ["BASELINE_KIND", "screening_baseline"]
