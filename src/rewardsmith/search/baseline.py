"""The base-rewards-only baseline a search trains before round 1: the screening baseline.

It is the trial of kind :data:`BASELINE_KIND` with no candidates, trained with the run's own
config (the screening budget, ``grpo.max_steps``) and the run's seed, so it is paired with every
screening trial: same budget, same selection split, the same questions in the same order (its
result's ``correctness`` lines up with each screen's). The finalists' baseline, trained with
``search.ensemble_steps``, is this very trial when the two budgets agree.
"""

from __future__ import annotations

from typing import Any

#: The trial kind of every base-rewards-only baseline (screening and finalists').
BASELINE_KIND = "baseline"


def screening_baseline(store: Any) -> Any:
    """The COMPLETE screening baseline :class:`~rewardsmith.store.Trial` of the run in
    ``store``, or None while it is not trained (or when it failed). Its result is
    ``store.result(trial.id)``."""
    cfg = store.config()
    config_hash = cfg.config_hash()
    for trial in store.trials(state="COMPLETE", kind=BASELINE_KIND):
        if not trial.candidates and trial.config_hash == config_hash and trial.seed == cfg.seed:
            return trial
    return None
