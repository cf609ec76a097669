"""Build a :class:`~rewardsmith.report.data.ReportData` from a run store, and write the report.

This is the one place that knows both the store's records and the report's schema:

* candidates come with their validation verdicts (a verdict without ``accepted`` is read from
  its ``stage``);
* every trial is listed, FAILED and unfinished ones included (with their state and reason);
  ``"manual"`` trials (from ``rewardsmith train``) show as screens;
* ``selection`` is the trial result's metrics (the selection split); ``test``/``test_correct``
  come from the trial's ``"test"`` evaluation, or from the result itself when the selection
  split *is* the test split (``eval.selection: test``, the paper's protocol);
* curves drop the store's private entries (keys starting with ``_``); ``durations`` come from
  the ``_timings`` entry plus the trial's wall time;
* ``samples`` are the first :data:`N_SAMPLES` responses of the trial's evaluation records; a
  missing or unreadable file gives ``None`` and a log line, never an error.
* ``monitor`` is what watching each sandboxed reward in training found
  (:meth:`RunStore.reward_monitors`), for COMPLETE and FAILED trials alike.
* ``name`` is the ensemble configuration(s) a trial trains (its ``name`` attribute, set by the
  search), ``steps`` its GRPO budget (from its config); ``rung``, ``continues`` and
  ``promoted`` come from a screen trial's attributes (successive halving; ``rung`` 0 when
  absent);
* ``compute`` is :func:`rewardsmith.search.compute.compute_summary`; ``ranking`` the
  noise-aware ranking of the screened candidates
  (:func:`rewardsmith.search.ranking.rank_candidates`), empty when it cannot be computed.

The builder reads and never writes, so it works on a run in progress as on a finished one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rewardsmith.report.data import (
    BASE_REWARDS,
    TRIAL_KINDS,
    CandidateRecord,
    ReportData,
    TrialRecord,
    VerdictRecord,
)
from rewardsmith.report.writer import write_report
from rewardsmith.search.compute import compute_summary
from rewardsmith.store import Evaluation, RunStore, Trial, TrialResult, TrialState

log = logging.getLogger(__name__)

#: Sample responses kept per trial (for the reward-hacking panel).
N_SAMPLES = 3
#: Store trial kinds shown as another kind in the report.
KIND_ALIASES = {"manual": "screen"}
#: Kinds whose ``k`` is their number of candidates.
SIZED_KINDS = ("ensemble", "control", "final")
REPORT_DIR = "report"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _verdict(raw: dict[str, Any] | None) -> VerdictRecord | None:
    if not raw:
        return None
    accepted = raw.get("accepted", raw.get("stage") == "accepted")
    return VerdictRecord.from_dict({**raw, "accepted": accepted})


def _candidates(store: RunStore) -> list[CandidateRecord]:
    verdicts = store.verdicts()
    return [
        CandidateRecord(
            name=c.name,
            description=c.description,
            round=c.round,
            generator=c.generator,
            parent=c.parent,
            code=c.code,
            verdict=_verdict(verdicts.get(c.name)),
        )
        for c in store.candidates()
    ]


def _rewards(trial: Trial) -> tuple[list[str], list[float]]:
    """The rewards a trial trained with and their weights, as the trial worker builds them."""
    rewards_cfg = trial.config.get("rewards") or {}
    use_base = rewards_cfg.get("use_base_rewards", True) and not trial.attrs.get("no_base_rewards")
    names = (list(BASE_REWARDS) if use_base else []) + list(trial.candidates)
    weights = {**(rewards_cfg.get("weights") or {}), **trial.weights}
    return names, [float(weights.get(name, 1.0)) for name in names]


def _curves(raw: dict[str, Any]) -> dict[str, list[list[float]]]:
    """The public curves: private ``_`` entries and malformed points are left out."""
    out = {}
    for name, points in raw.items():
        if name.startswith("_") or not isinstance(points, list):
            continue
        try:
            out[name] = [[float(step), float(value)] for step, value in points]
        except (TypeError, ValueError):
            log.warning("curve %r is malformed; left out of the report", name)
    return out


def _durations(trial: Trial, result: TrialResult | None) -> dict[str, float]:
    """Seconds only (``*_s``): the ``_timings`` entry also holds steps and device counts."""
    timings = (result.curves.get("_timings") if result else None) or {}
    out = {
        str(k): float(v)
        for k, v in timings.items()
        if str(k).endswith("_s") and isinstance(v, int | float) and not isinstance(v, bool)
    }
    if trial.duration_s is not None:
        out["wall_s"] = float(trial.duration_s)
    return out


def resolve_path(path: str | None, run_dir: Path) -> Path | None:
    """An existing file for a path the store recorded, or ``None``.

    Tried in order: the path as stored (absolute, or relative to the working directory), the
    path relative to the run directory, and the part after the run directory's name re-anchored
    at ``run_dir`` (a run directory moved or copied elsewhere, or a report made from another
    working directory).
    """
    if not path:
        return None
    stored = Path(path)
    tries = [stored] if stored.is_absolute() else [stored, run_dir / stored]
    parts = stored.parts
    if run_dir.name in parts:
        last = len(parts) - 1 - parts[::-1].index(run_dir.name)
        tries.append(run_dir.joinpath(*parts[last + 1 :]))
    return next((p for p in tries if p.is_file()), None)


def read_samples(path: str | None, run_dir: Path, n: int = N_SAMPLES) -> list[str] | None:
    """The first ``n`` ``response`` fields of an evaluation records JSONL file.

    ``None`` when the file is missing, unreadable or holds no response; a malformed line ends
    the reading (the responses before it are kept).
    """
    file = resolve_path(path, run_dir)
    if file is None:
        if path:
            log.info("evaluation records %s not found; no samples", path)
        return None
    samples: list[str] = []
    try:
        with file.open(encoding="utf-8") as fh:
            for line in fh:
                if len(samples) >= n:
                    break
                if line.strip():
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("response") is not None:
                        samples.append(str(record["response"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("cannot read samples from %s: %s", file, error)
    return samples or None


def _test_view(
    result: TrialResult | None, evaluation: Evaluation | None, selection_split: str
) -> tuple[dict[str, Any] | None, list[bool] | None]:
    """(test metrics, test correctness): the test evaluation, else the result when it was
    computed on the test split."""
    if evaluation is not None:
        return dict(evaluation.metrics), [bool(c) for c in evaluation.correctness]
    if result is not None and result.metrics.get("split", selection_split) == "test":
        return dict(result.metrics), [bool(c) for c in result.correctness]
    return None, None


def trial_record(
    store: RunStore, trial: Trial, selection_split: str, test: Evaluation | None
) -> TrialRecord | None:
    """The report's view of one stored trial; ``None`` (with a warning) for a kind the report
    does not know."""
    kind = KIND_ALIASES.get(trial.kind, trial.kind)
    if kind not in TRIAL_KINDS:
        log.warning("trial %d: kind %r is not reported", trial.id, trial.kind)
        return None
    result = store.result(trial.id) if trial.state == TrialState.COMPLETE else None
    rewards, weights = _rewards(trial)
    test_metrics, test_correct = _test_view(result, test, selection_split)
    k = trial.attrs.get("k")  # the search may record the size it meant; else count candidates
    if not isinstance(k, int):
        k = len(trial.candidates) if kind in SIZED_KINDS else None
    return TrialRecord(
        id=trial.id,
        kind=kind,
        rewards=rewards,
        weights=weights,
        seed=trial.seed,
        state=trial.state.value,
        fail_reason=trial.fail_reason,
        selection=dict(result.metrics) if result else None,
        test=test_metrics,
        test_correct=test_correct,
        curves=_curves(result.curves) if result else {},
        samples=(
            read_samples(store.local_path(result.eval_path, missing_ok=True), store.run_dir)
            if result
            else None
        ),
        durations=_durations(trial, result),
        candidate=trial.candidates[0] if kind == "screen" and len(trial.candidates) == 1 else None,
        k=k,
        monitor={
            m.reward: {"summary": dict(m.summary), "findings": [dict(f) for f in m.findings]}
            for m in store.reward_monitors(trial.id)
        },
        name=trial.attrs.get("name") if isinstance(trial.attrs.get("name"), str) else None,
        steps=(trial.config.get("grpo") or {}).get("max_steps"),
        **(_rung_fields(trial) if kind == "screen" else {}),
    )


def _rung_fields(trial: Trial) -> dict[str, Any]:
    """A screen trial's place in successive halving (rung 0, nothing continued, by default)."""
    attrs = trial.attrs
    rung = attrs.get("rung")
    promoted = attrs.get("promoted")
    return {
        "rung": rung if isinstance(rung, int) else 0,
        "continues": attrs.get("continues") if isinstance(attrs.get("continues"), int) else None,
        "promoted": promoted if isinstance(promoted, bool) else None,
    }


def ranking_rows(store: RunStore) -> list[dict[str, Any]]:
    """The noise-aware ranking of the screened candidates as plain dicts, best first."""
    from rewardsmith.search.ranking import rank_candidates

    return [_plain(asdict(r)) for r in rank_candidates(store)]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists, and no infinities (a candidate without a result scores -inf)."""
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in row.items()}
    if row.get("seeds") == 0:
        out.update(accuracy=None, score=None)
    return out


def build_report_data(store: RunStore) -> ReportData:
    """Everything the report shows about the run in ``store``, complete or not.

    Raises :class:`~rewardsmith.store.StoreError` when the store is unreadable or its config no
    longer validates; anything missing inside the run (results, evaluations, records files)
    shows as missing in the report instead.
    """
    manifest = store.manifest()
    selection = store.config().eval.selection
    tests = {e.trial_id: e for e in store.evaluations(split="test")}
    trials = [trial_record(store, t, selection, tests.get(t.id)) for t in store.trials()]
    about = {k: v for k, v in asdict(manifest).items() if k != "config"}
    about["created_at"] = _iso(manifest.created_at)
    about["run_dir"] = str(store.run_dir)
    return ReportData(
        run_id=manifest.run_id,
        created=_iso(manifest.created_at),
        config=dict(manifest.config),
        manifest=about,
        selection_split=selection,
        candidates=_candidates(store),
        trials=[t for t in trials if t is not None],
        compute=compute_summary(store).to_dict(),
        ranking=ranking_rows(store),
    )


def write_run_report(store: RunStore, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Build the run's :class:`ReportData` and write the report into ``out_dir`` (default:
    ``<run dir>/report``); returns the written paths keyed ``"html"``, ``"markdown"``,
    ``"json"`` (see :func:`~rewardsmith.report.write_report`)."""
    target = Path(out_dir) if out_dir is not None else store.run_dir / REPORT_DIR
    return write_report(build_report_data(store), target)
