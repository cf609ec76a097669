"""The ``search`` section of a run config: rounds, replacements, named ensembles, finalists.

Ensembles are named configurations (:class:`EnsembleSection`): a members rule, a size and a
training budget. Rules, applied to the screened candidates ranked best first on the selection
split:

- ``top``: the top ``k``;
- ``diverse_rounds``: the best candidate of each round (the first ``k`` rounds' bests when
  ``k`` is given);
- ``correctness``: the top ``k`` among the candidates that check the answer (scored higher
  when the gold answer agrees with the completion; see :mod:`rewardsmith.search.ensembles`).

Without ``ensembles`` the plan is :data:`PAPER_ENSEMBLES`, the seven configurations of
arXiv 2605.02073. ``ensemble_sizes: [k, ...]`` is the older shorthand for ``top`` ensembles
named ``top-k`` at ``ensemble_steps``; when given it replaces ``ensembles``.

>>> s = SearchSection(ensembles=[{"name": "top-2", "k": 2}, {"name": "per-round",
...                               "rule": "diverse_rounds", "steps": 50}])
>>> [(e.name, e.rule, e.k, s.steps_of(e)) for e in s.ensemble_plan()]
[('top-2', 'top', 2, 300), ('per-round', 'diverse_rounds', None, 50)]
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rewardsmith.config_methods import Float, Int, Section

EnsembleRule = Literal["top", "diverse_rounds", "correctness"]


class ScreeningSection(Section):
    """How each round's candidates are screened (issue: successive halving).

    ``full`` (the paper): every candidate trains the whole screening budget
    (``grpo.max_steps``) with one seed. ``halving``: rung 0 trains every candidate for
    ``min_steps`` (default: the budget / eta**(number of rungs - 1)), the best 1/``eta`` go on
    to the next rung, which continues their run to ``eta`` times the steps, and so on up to the
    full budget; ``rungs`` lists the step counts explicitly instead. At the top rung the
    survivors are trained with ``seeds_at_top`` seeds in all.

    ``rank_by`` orders candidates within a rung (:mod:`rewardsmith.search.ranking`):
    ``paired`` by the lower confidence bound of the mean paired accuracy difference from the
    screening baseline over seeds; ``metric`` by ``search.rank_metric`` averaged over seeds
    (the paper's F1 ranking).
    """

    mode: Literal["full", "halving"] = "full"
    eta: Int = Field(3, ge=2)
    min_steps: Int | None = Field(None, gt=0)
    rungs: list[Int] | None = None
    seeds_at_top: Int = Field(1, gt=0)
    rank_by: Literal["paired", "metric"] = "paired"

    @field_validator("rungs")
    @classmethod
    def _increasing(cls, rungs: list[int] | None) -> list[int] | None:
        if rungs is None:
            return None
        if not rungs or min(rungs) < 1 or any(b <= a for a, b in itertools.pairwise(rungs)):
            raise ValueError("must be a non-empty list of increasing step counts >= 1")
        return rungs

    def rung_steps(self, budget: int) -> list[int]:
        """The GRPO steps each rung trains up to, the last one being the full ``budget``.

        ``rungs`` below the budget, then the budget; else ``min_steps * eta**k`` while eta times
        it is still within the budget, then the budget; without ``min_steps`` the first rung is
        ``budget // eta**2`` (three rungs; ``budget // eta`` or the budget itself when the budget
        is too small). In ``full`` mode: just the budget.

        >>> ScreeningSection(mode="halving").rung_steps(300)
        [33, 99, 300]
        >>> ScreeningSection(mode="halving", eta=2, min_steps=50).rung_steps(300)
        [50, 100, 300]
        >>> ScreeningSection(mode="halving", rungs=[10, 100, 400]).rung_steps(300)
        [10, 100, 300]
        >>> ScreeningSection(mode="halving").rung_steps(4), ScreeningSection().rung_steps(4)
        ([1, 4], [4])
        """
        if budget < 1:
            raise ValueError(f"the screening budget must be >= 1 step, got {budget}")
        if self.mode == "full":
            return [budget]
        if self.rungs is not None:
            return [r for r in self.rungs if r < budget] + [budget]
        first = self.min_steps
        if first is None:
            n = next(k for k in (3, 2, 1) if budget // self.eta ** (k - 1) >= 1)
            first = budget // self.eta ** (n - 1)
        steps = []
        while first * self.eta <= budget:  # the next rung trains at least eta times as long
            steps.append(first)
            first *= self.eta
        return steps + [budget]


class EnsembleSection(Section):
    """One named ensemble configuration: base rewards + the members its rule picks, summed."""

    name: str
    rule: EnsembleRule = "top"
    k: Int | None = Field(None, gt=0)
    steps: Int | None = Field(None, gt=0)  # None: search.ensemble_steps

    @field_validator("name")
    @classmethod
    def _non_empty(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("must not be empty")
        return name

    @model_validator(mode="after")
    def _k_when_needed(self) -> EnsembleSection:
        if self.rule != "diverse_rounds" and self.k is None:
            raise ValueError(f"ensemble {self.name!r}: rule {self.rule!r} needs k")
        return self


#: arXiv 2605.02073's seven ensemble configurations. The paper does not say how many
#: "correctness" members it took: 5 is assumed (the size of its best configuration).
PAPER_ENSEMBLES: tuple[EnsembleSection, ...] = (
    EnsembleSection(name="top-3", rule="top", k=3, steps=300),
    EnsembleSection(name="top-5", rule="top", k=5, steps=300),
    EnsembleSection(name="top-5 (500 steps)", rule="top", k=5, steps=500),
    EnsembleSection(name="top-7", rule="top", k=7, steps=300),
    EnsembleSection(name="top-10", rule="top", k=10, steps=300),
    EnsembleSection(name="diverse-rounds", rule="diverse_rounds", steps=300),
    EnsembleSection(name="correctness", rule="correctness", k=5, steps=300),
)


def _candidate_total(info: ValidationInfo) -> int | None:
    """rounds * candidates_per_round of the search section being validated, if both are valid."""
    rounds, per_round = info.data.get("rounds"), info.data.get("candidates_per_round")
    return None if rounds is None or per_round is None else rounds * per_round


class SearchSection(Section):
    """The search: rounds of candidates, then baseline, control, ensembles and final seeds.

    The base-rewards-only baseline is trained first, with the screening budget, so every
    round's feedback can compare candidates with it; the finalists' baseline and the control
    are trained with ``ensemble_steps``. With ``replace_failed`` a screened candidate whose
    trial FAILED or scored F1 = 0 is replaced by a new generation, its slot tried at most
    ``replace_attempts`` times in all (the paper: on, 3). ``fixed_examples`` shows the
    generator the same sampled training problems every round (the paper) instead of a new
    sample per round.
    """

    rounds: Int = Field(5, gt=0)
    candidates_per_round: Int = Field(10, gt=0)
    max_rejections_per_round: Int = Field(20, ge=0)
    rank_metric: Literal["f1", "accuracy"] = "f1"  # the same order: F1 = 2acc/(1+acc)
    generator: Literal["offline", "llm"] = "offline"
    generator_options: dict[str, Any] = Field(default_factory=dict)
    fixed_examples: bool = False
    replace_failed: bool = False
    replace_attempts: Int = Field(3, gt=0)
    ensemble_sizes: list[Int] | None = None
    # Checked even when left at None: the paper's seven must fit the search's candidates.
    ensembles: list[EnsembleSection] | None = Field(None, validate_default=True)
    ensemble_steps: Int = Field(300, gt=0)
    final_seeds: Int = Field(3, gt=0)
    control_k: Int = Field(5, gt=0, validate_default=True)
    parallel: Int = Field(1, gt=0)
    screening: ScreeningSection = Field(default_factory=ScreeningSection)
    # Where trials run: worker processes on this machine, or Ray tasks (pip install
    # rewardsmith[ray]); ray_address None starts a local Ray, "auto" joins a running cluster.
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # Ray custom resources each trial asks for, e.g. {"a100": 1}: only nodes started with
    # ``ray start --resources '{"a100": 8}'`` run trials.
    ray_resources: dict[str, Float] = Field(default_factory=dict)
    # GPU slots: "auto" (every visible GPU), a count, or a list of device ids; each GPU runs
    # trials_per_gpu trials at once (Ray: num_gpus = 1 / trials_per_gpu per trial).
    gpus: Literal["auto"] | Int | list[Int] = "auto"
    trials_per_gpu: Int = Field(1, gt=0)
    cpus_per_trial: Float = Field(1.0, gt=0)
    max_attempts: Int = Field(2, gt=0)
    # Local executor: each slot keeps one worker process that runs trial after trial (imports
    # paid once per slot); false: a fresh process per trial.
    reuse_workers: bool = True
    # Adapters and records of trials: the run directory (None), another path shared by the
    # machines, or an fsspec URL (s3://..., gs://...); the store keeps their URIs.
    artifact_root: str | None = None

    @field_validator("gpus")
    @classmethod
    def _gpu_ids(cls, gpus: Any) -> Any:
        if isinstance(gpus, int) and gpus < 0:
            raise ValueError("a GPU count must be >= 0")
        if isinstance(gpus, list) and (len(set(gpus)) != len(gpus) or any(g < 0 for g in gpus)):
            raise ValueError("GPU ids must be distinct and >= 0")
        return gpus

    @model_validator(mode="before")
    @classmethod
    def _sizes_replace_ensembles(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ensemble_sizes") is not None:
            data = {k: v for k, v in data.items() if k != "ensembles"}
        return data

    @field_validator("ensemble_sizes")
    @classmethod
    def _sizes_fit(cls, sizes: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if sizes is None:
            return None
        if not sizes:
            raise ValueError("must list at least one ensemble size")
        if len(set(sizes)) != len(sizes) or min(sizes) < 1:
            raise ValueError("sizes must be distinct and >= 1")
        total = _candidate_total(info)
        if total is not None and max(sizes) > total:
            raise ValueError(f"largest size exceeds the {total} candidates of the search")
        return sizes

    @field_validator("ensembles")
    @classmethod
    def _ensembles_fit(
        cls, ensembles: list[EnsembleSection] | None, info: ValidationInfo
    ) -> list[EnsembleSection] | None:
        if info.data.get("ensemble_sizes") is not None:
            return ensembles
        plan = PAPER_ENSEMBLES if ensembles is None else ensembles
        if not plan:
            raise ValueError("must list at least one ensemble")
        names = [e.name for e in plan]
        if len(set(names)) != len(names):
            raise ValueError(f"ensemble names must be distinct, got {names}")
        total = _candidate_total(info)
        too_big = [e.name for e in plan if e.k is not None and total is not None and e.k > total]
        if too_big:
            raise ValueError(f"{too_big[0]!r} needs more than the {total} candidates of the search")
        return ensembles

    @field_validator("control_k")
    @classmethod
    def _control_fits(cls, k: int, info: ValidationInfo) -> int:
        total = _candidate_total(info)
        if total is not None and k > total:
            raise ValueError(f"exceeds the {total} candidates of the search")
        return k

    def ensemble_plan(self) -> list[EnsembleSection]:
        """The ensemble configurations this search trains, in order."""
        if self.ensemble_sizes is not None:
            return [EnsembleSection(name=f"top-{k}", rule="top", k=k) for k in self.ensemble_sizes]
        return list(PAPER_ENSEMBLES if self.ensembles is None else self.ensembles)

    def steps_of(self, ensemble: EnsembleSection) -> int:
        """The GRPO steps ``ensemble`` trains (its own, else ``ensemble_steps``)."""
        return self.ensemble_steps if ensemble.steps is None else ensemble.steps
