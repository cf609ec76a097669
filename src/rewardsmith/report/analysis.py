"""What the report computes from a :class:`~rewardsmith.report.data.ReportData`; no rendering.

* :func:`leaderboard`: screened candidates ranked by selection accuracy (F1 = 2acc/(1+acc) gives
  the same order); failed trials last.
* :func:`round_summary`: mean and best selection accuracy and F1 per round (empty rounds too).
* :func:`finalist_vectors`: test correctness vectors of the finalists, for McNemar.
* :func:`headline`: baseline vs control vs the best ensemble (chosen on the selection split),
  plus the multi-seed mean +- std of the best ensemble's ``final`` re-trainings.
* :func:`hacking_suspects`: rewards the policy learnt to game (see its docstring).
* :func:`monitor_findings`: what watching the sandboxed rewards during training found.
* :func:`summary`: all of the above as plain data, for ``report.json``.

The reward-hacking panel's computations (:func:`hacking_suspects`, :func:`monitor_findings` and
their heuristics and thresholds) live in :mod:`rewardsmith.report.hacking`, and the per-trial
basics (:func:`metric`, :func:`rank_key`, :func:`label`, :func:`best_trial`) in
:mod:`rewardsmith.report._rank`; both are re-exported here, so ``analysis.<name>`` still works.

Every function copes with a partial run: missing kinds, FAILED trials without metrics, no rounds.

>>> distinct_ngram_ratio("a b c d e f"), round(distinct_ngram_ratio("go " * 8), 3)
(1.0, 0.167)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.evaluation import same_backend
from rewardsmith.report._rank import best_trial as best_trial
from rewardsmith.report._rank import label as label
from rewardsmith.report._rank import metric as metric
from rewardsmith.report._rank import rank_key as rank_key
from rewardsmith.report.data import ReportData, TrialRecord
from rewardsmith.report.hacking import DEGENERATE_SHARE as DEGENERATE_SHARE
from rewardsmith.report.hacking import EXTRACTION_THRESHOLD as EXTRACTION_THRESHOLD
from rewardsmith.report.hacking import REPETITION_MIN_WORDS as REPETITION_MIN_WORDS
from rewardsmith.report.hacking import REPETITION_THRESHOLD as REPETITION_THRESHOLD
from rewardsmith.report.hacking import MonitorFinding as MonitorFinding
from rewardsmith.report.hacking import Suspect as Suspect
from rewardsmith.report.hacking import audit_reasons as audit_reasons
from rewardsmith.report.hacking import curve_trend as curve_trend
from rewardsmith.report.hacking import degenerate_reason as degenerate_reason
from rewardsmith.report.hacking import distinct_ngram_ratio as distinct_ngram_ratio
from rewardsmith.report.hacking import hacking_suspects as hacking_suspects
from rewardsmith.report.hacking import monitor_findings as monitor_findings
from rewardsmith.stats import McNemarResult, PairwiseResult, mcnemar_test, pairwise_mcnemar
from rewardsmith.stats import seed_summary as _seed_summary

log = logging.getLogger(__name__)

#: Kinds of trials compared in the finalist McNemar matrix, in display order.
FINALIST_KINDS = ("baseline", "control", "ensemble", "screen")


@dataclass
class LeaderRow:
    """One leaderboard row; ``rank`` is ``None`` for trials without selection metrics."""

    rank: int | None
    trial: TrialRecord
    name: str
    round: int | None


def top_rung_screens(data: ReportData) -> list[TrialRecord]:
    """One screen trial per candidate: the one of its highest rung (successive halving), the
    earliest among several seeds there (the run that was continued, not the luckiest seed)."""
    best: dict[Any, TrialRecord] = {}
    for trial in data.trials_of("screen"):
        key = trial.candidate_name or f"#{trial.id}"
        held = best.get(key)
        if held is None or (trial.rung or 0) > (held.rung or 0):
            best[key] = trial
    return list(best.values())


def leaderboard(data: ReportData) -> list[LeaderRow]:
    """Screen trials (one per candidate, see :func:`top_rung_screens`) ranked by selection
    (accuracy, F1), descending; unranked ones last."""
    screens = top_rung_screens(data)
    ranked = sorted((t for t in screens if t.complete and t.selection), key=rank_key, reverse=True)
    rest = [t for t in screens if t not in ranked]
    rows = []
    for i, trial in enumerate(ranked + rest):
        cand = data.candidate(trial.candidate_name)
        rank = i + 1 if i < len(ranked) else None
        rows.append(LeaderRow(rank, trial, label(trial), cand.round if cand else None))
    return rows


@dataclass
class RoundRow:
    """Selection accuracy and F1 over the completed screen trials of one round (``None`` when
    there are none)."""

    round: int
    n_candidates: int
    n_scored: int
    mean_f1: float | None
    best_f1: float | None
    best_name: str | None
    mean_accuracy: float | None = None
    best_accuracy: float | None = None


def round_summary(data: ReportData) -> list[RoundRow]:
    """Mean and best selection accuracy and F1 per round, for every round that has a candidate
    or a trial."""
    rows_by_round: dict[int, list[LeaderRow]] = {}
    for row in leaderboard(data):
        if row.round is not None:
            rows_by_round.setdefault(row.round, []).append(row)
    rounds = sorted({c.round for c in data.candidates} | set(rows_by_round))
    out = []
    for rnd in rounds:
        scored = [r for r in rows_by_round.get(rnd, []) if r.rank is not None]
        f1s = [metric(r.trial.selection, "f1") or 0.0 for r in scored]
        accs = [metric(r.trial.selection, "accuracy") or 0.0 for r in scored]
        best = max(scored, key=lambda r: rank_key(r.trial)) if scored else None
        out.append(
            RoundRow(
                round=rnd,
                n_candidates=sum(1 for c in data.candidates if c.round == rnd),
                n_scored=len(scored),
                mean_f1=sum(f1s) / len(f1s) if f1s else None,
                best_f1=max(f1s) if f1s else None,
                best_name=best.name if best else None,
                mean_accuracy=sum(accs) / len(accs) if accs else None,
                best_accuracy=max(accs) if accs else None,
            )
        )
    return out


def ensembles(data: ReportData) -> list[TrialRecord]:
    """Ensemble trials: named configurations in the order trained, then unnamed ones by k."""
    return sorted(
        data.trials_of("ensemble"),
        key=lambda t: (t.name is None, 0 if t.name else t.ensemble_k, str(t.id)),
    )


def finalist_vectors(data: ReportData, kinds: tuple[str, ...]) -> dict[str, list[bool]]:
    """Test correctness vectors of completed trials of ``kinds``, keyed by a unique label.

    Vectors whose length differs from the first one are left out (with a log line): McNemar
    needs the same questions in the same order.
    """
    order = {kind: i for i, kind in enumerate(kinds)}
    trials = [t for t in data.trials if t.kind in order and t.complete and t.test_correct]
    trials.sort(key=lambda t: (order[t.kind], [-x for x in rank_key(t)]))
    out: dict[str, list[bool]] = {}
    for trial in trials:
        name = label(trial)
        if name in out:
            name = f"{name} #{trial.id}"
        if out and len(trial.test_correct) != len(next(iter(out.values()))):
            log.warning("trial %s: test vector length differs; left out of McNemar", trial.id)
            continue
        if not same_backend(trial.test, trials[0].test):
            log.warning("trial %s: evaluated by another backend; left out of McNemar", trial.id)
            continue
        out[name] = list(trial.test_correct)
    return out


def pairwise(data: ReportData, kinds: tuple[str, ...]) -> PairwiseResult | None:
    """Pairwise McNemar over the finalists of ``kinds``; ``None`` with fewer than two."""
    vectors = finalist_vectors(data, kinds)
    if len(vectors) < 2:
        return None
    return pairwise_mcnemar(vectors, alpha=data.alpha)


@dataclass
class Headline:
    """Baseline vs control vs best ensemble, and the best ensemble's seed re-trainings."""

    baseline: TrialRecord | None
    control: TrialRecord | None
    best_ensemble: TrialRecord | None
    finals: list[TrialRecord] = field(default_factory=list)
    seed_f1: tuple[float, float] | None = None
    seed_accuracy: tuple[float, float] | None = None
    #: The same over the extra seeds only, without the selected run (biased upward: it was
    #: picked for scoring best on the selection split).
    extra_f1: tuple[float, float] | None = None
    extra_accuracy: tuple[float, float] | None = None
    vs_baseline: McNemarResult | None = None
    vs_control: McNemarResult | None = None


def _paired_test(a: TrialRecord | None, b: TrialRecord | None) -> McNemarResult | None:
    if not (a and b and a.test_correct and b.test_correct):
        return None
    if len(a.test_correct) != len(b.test_correct):
        return None
    if not same_backend(a.test, b.test):  # greedy outputs of two backends may differ
        return None
    return mcnemar_test(a.test_correct, b.test_correct)


def headline(data: ReportData) -> Headline:
    """Compare the baseline, the control and the best ensemble (picked on selection metrics)."""
    best = best_trial(data.trials_of("ensemble"))
    baseline = comparable_baseline(data, best)
    control = best_trial(data.trials_of("control"))
    finals = [t for t in data.trials_of("final") if t.complete and t.test]
    if best is not None:
        same = [t for t in finals if sorted(t.rewards) == sorted(best.rewards)]
        # the best ensemble's own run is one of its seeds; the final trials are the others
        if same:
            finals = ([best] if best.complete and best.test else []) + same
    out = Headline(baseline, control, best, finals)
    out.seed_accuracy, out.seed_f1 = _test_summaries(finals)
    if best is not None and best in finals and len(finals) > 1:
        out.extra_accuracy, out.extra_f1 = _test_summaries([t for t in finals if t is not best])
    out.vs_baseline = _paired_test(best, baseline)
    out.vs_control = _paired_test(best, control)
    return out


def _test_summaries(trials: list[TrialRecord]) -> tuple[Any, Any]:
    """(accuracy, F1) mean and std over ``trials``' test metrics; None where one is missing."""
    out = []
    for name in ("accuracy", "f1"):
        values = [metric(t.test, name) for t in trials]
        ok = trials and None not in values
        out.append(_seed_summary(values) if ok else None)  # type: ignore[arg-type]
    return out[0], out[1]


def comparable_baseline(data: ReportData, trial: TrialRecord | None) -> TrialRecord | None:
    """The baseline trained with ``trial``'s budget when there is one, else the best baseline
    (a search trains one with the screening budget and one with ``ensemble_steps``)."""
    baselines = data.trials_of("baseline")
    same = [b for b in baselines if trial is not None and b.steps == trial.steps]
    return best_trial(same) or best_trial(baselines)


_FINDING_KEYS = ("reward", "kind", "step", "detail")


def summary(data: ReportData) -> dict[str, Any]:
    """The computed tables as plain data, for ``report.json``."""
    head = headline(data)
    ens_family = pairwise(data, ("ensemble",))
    finalists = pairwise(data, FINALIST_KINDS)

    def _ref(trial: TrialRecord | None) -> Any:
        return None if trial is None else trial.id

    return {
        "leaderboard": [
            {"rank": r.rank, "trial": r.trial.id, "name": r.name, "round": r.round}
            for r in leaderboard(data)
        ],
        "rounds": [r.__dict__ for r in round_summary(data)],
        "headline": {
            "baseline": _ref(head.baseline),
            "control": _ref(head.control),
            "best_ensemble": _ref(head.best_ensemble),
            "final_trials": [t.id for t in head.finals],
            "seed_f1_mean_std": head.seed_f1,
            "seed_accuracy_mean_std": head.seed_accuracy,
            "extra_seed_accuracy_mean_std": head.extra_accuracy,
            "extra_seed_f1_mean_std": head.extra_f1,
            "vs_baseline": head.vs_baseline.to_dict() if head.vs_baseline else None,
            "vs_control": head.vs_control.to_dict() if head.vs_control else None,
        },
        "mcnemar_ensembles": ens_family.to_dict() if ens_family else None,
        "mcnemar_finalists": finalists.to_dict() if finalists else None,
        "hacking": [
            {"name": s.name, "trial": s.trial.id, "reasons": s.reasons}
            for s in hacking_suspects(data)
        ],
        "monitor_findings": [
            {"name": f.name, "trial": f.trial.id, **{k: getattr(f, k) for k in _FINDING_KEYS}}
            for f in monitor_findings(data)
        ],
    }
