"""Frozen views of stored rows: what the run store hands out and takes in.

The store never returns live ORM objects: a :class:`Trial`, :class:`TrialResult`,
:class:`Evaluation`, :class:`RewardMonitorRecord` or :class:`Manifest` is a plain immutable
snapshot, safe to keep after the session closes and to send to another process. :func:`json_safe`
is the single rule for what goes into JSON columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardsmith.store.schema import (
    EvaluationRow,
    ResultRow,
    RewardMonitorRow,
    RunRow,
    TrialRow,
    TrialState,
)


def json_safe(value: Any) -> Any:
    """A JSON-ready copy of ``value``: non-finite floats become ``None``, tuples become lists.

    >>> json_safe({"f1": float("nan"), "ci": (0.5, 0.7)})
    {'f1': None, 'ci': [0.5, 0.7]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return json_safe(value.tolist())
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def encode_correctness(vector: Sequence[Any]) -> str:
    """``[1, 0, True]`` -> ``"101"``; anything but 0/1/bool raises ``ValueError``.

    >>> encode_correctness([1, 0, True, False])
    '1010'
    """
    out = []
    for value in vector:
        if value not in (0, 1):  # True == 1 and False == 0, so bools pass
            raise ValueError(f"correctness values must be 0 or 1, got {value!r}")
        out.append("1" if value else "0")
    return "".join(out)


@dataclass(frozen=True)
class TrialResult:
    """The outcome of a COMPLETE trial.

    ``metrics`` holds the selection-split metrics (with CIs); ``correctness`` is one 0/1 per
    evaluated question in evaluation order (for McNemar tests); ``curves`` holds the training
    statistics (per-reward mean/std over steps, total reward, completion length, format rate,
    zero-std fraction); the paths point at files in the run directory.
    """

    metrics: dict[str, Any]
    correctness: tuple[int, ...] = ()
    curves: dict[str, Any] = field(default_factory=dict)
    eval_path: str | None = None
    adapter_path: str | None = None

    def to_row(self, trial_id: int, now: float) -> ResultRow:
        """The row that stores this result for ``trial_id``."""
        return ResultRow(
            trial_id=trial_id,
            metrics=json_safe(self.metrics),
            correctness=encode_correctness(self.correctness),
            curves=json_safe(self.curves),
            eval_path=self.eval_path,
            adapter_path=self.adapter_path,
            created_at=now,
        )

    @classmethod
    def from_row(cls, row: ResultRow) -> TrialResult:
        """Rebuild a result from its row."""
        return cls(
            metrics=dict(row.metrics),
            correctness=tuple(int(c) for c in row.correctness),
            curves=dict(row.curves),
            eval_path=row.eval_path,
            adapter_path=row.adapter_path,
        )


@dataclass(frozen=True)
class Evaluation:
    """A COMPLETE trial's policy evaluated on one more split (a finalist's test evaluation).

    ``metrics`` has the shape of ``Metrics.to_dict()``; ``correctness`` is one 0/1 per question
    of ``split`` in evaluation order, the same order for every trial (for McNemar);
    ``records_path`` points at the per-question JSONL records, when kept.
    """

    trial_id: int
    split: str
    metrics: dict[str, Any]
    correctness: tuple[int, ...] = ()
    records_path: str | None = None
    created_at: float = 0.0

    def to_row(self) -> EvaluationRow:
        """The row that stores this evaluation (``ValueError`` for correctness that is not 0/1,
        ``TypeError`` for metrics that JSON cannot hold)."""
        return EvaluationRow(
            trial_id=self.trial_id,
            split=self.split,
            metrics=json_safe(self.metrics),
            correctness=encode_correctness(self.correctness),
            records_path=self.records_path,
            created_at=self.created_at,
        )

    @classmethod
    def from_row(cls, row: EvaluationRow) -> Evaluation:
        """Rebuild an evaluation from its row."""
        return cls(
            trial_id=row.trial_id,
            split=row.split,
            metrics=dict(row.metrics),
            correctness=tuple(int(c) for c in row.correctness),
            records_path=row.records_path,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class RewardMonitorRecord:
    """What watching one sandboxed reward during a trial found.

    ``summary`` holds counters (``calls``, ``failures``, ``timeouts``, ``audits``,
    ``audits_failed``, ``p95_latency_s``...); ``findings`` one dict per finding with ``reward``,
    ``kind``, ``step``, ``detail`` and ``value`` (see :mod:`rewardsmith.training.monitor`).
    """

    reward: str
    summary: dict[str, Any] = field(default_factory=dict)
    findings: tuple[dict[str, Any], ...] = ()

    def to_row(self, trial_id: int, now: float) -> RewardMonitorRow:
        """The row that stores this record for ``trial_id`` (``TypeError`` for data JSON
        cannot hold)."""
        return RewardMonitorRow(
            trial_id=trial_id,
            reward=self.reward,
            summary=json_safe(self.summary),
            findings=json_safe(list(self.findings)),
            created_at=now,
        )

    @classmethod
    def from_row(cls, row: RewardMonitorRow) -> RewardMonitorRecord:
        """Rebuild a record from its row."""
        return cls(
            reward=row.reward,
            summary=dict(row.summary),
            findings=tuple(dict(f) for f in row.findings),
        )


@dataclass(frozen=True)
class Trial:
    """A snapshot of one trial: what it trains (kind, candidates, weights, config, seed) and
    where it stands (state, attempts, timings, worker).

    ``attempt_token`` identifies the current attempt (set by a claim, cleared by recovery):
    writes that pass it succeed only while that attempt is current. ``worker_pid`` and
    ``worker_start`` name the process running it, once recorded.
    """

    id: int
    kind: str
    candidates: tuple[str, ...]
    weights: dict[str, float]
    seed: int
    config: dict[str, Any] = field(repr=False)
    config_hash: str
    attrs: dict[str, Any]
    state: TrialState
    fail_reason: str | None
    attempts: int
    worker: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    attempt_token: str | None = None
    worker_pid: int | None = None
    worker_start: str | None = None

    @classmethod
    def from_row(cls, row: TrialRow) -> Trial:
        """Snapshot a trial row."""
        return cls(
            id=row.id,
            kind=row.kind,
            candidates=tuple(row.candidates),
            weights={str(k): float(v) for k, v in row.weights.items()},
            seed=row.seed,
            config=dict(row.config),
            config_hash=row.config_hash,
            attrs=dict(row.attrs),
            state=TrialState(row.state),
            fail_reason=row.fail_reason,
            attempts=row.attempts,
            worker=row.worker,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_s=row.duration_s,
            attempt_token=row.attempt_token,
            worker_pid=row.worker_pid,
            worker_start=row.worker_start,
        )


@dataclass(frozen=True)
class Manifest:
    """What a run was made from, like the paper's data manifest.

    ``fingerprints``/``split_sizes`` are per split (train/val/test); ``overlaps`` counts shared
    questions per split pair ("train/val", "train/test", "val/test"), all 0 for a clean task;
    ``versions`` maps package -> version (None when not installed); ``extra`` is free-form.
    """

    run_id: str
    created_at: float
    config: dict[str, Any] = field(repr=False)
    config_hash: str
    fingerprints: dict[str, str] = field(default_factory=dict)
    overlaps: dict[str, int] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def splits_disjoint(self) -> bool:
        """True when no split pair shares a question."""
        return not any(self.overlaps.values())

    def to_row(self, schema_version: int) -> RunRow:
        """The single ``run`` row holding this manifest."""
        return RunRow(
            id=1,
            run_id=self.run_id,
            schema_version=schema_version,
            created_at=self.created_at,
            config=json_safe(self.config),
            config_hash=self.config_hash,
            fingerprints=json_safe(self.fingerprints),
            overlaps=json_safe(self.overlaps),
            split_sizes=json_safe(self.split_sizes),
            versions=json_safe(self.versions),
            git_commit=self.git_commit,
            extra=json_safe(self.extra),
        )

    @classmethod
    def from_row(cls, row: RunRow) -> Manifest:
        """Rebuild the manifest from the run row."""
        return cls(
            run_id=row.run_id,
            created_at=row.created_at,
            config=dict(row.config),
            config_hash=row.config_hash,
            fingerprints=dict(row.fingerprints),
            overlaps=dict(row.overlaps),
            split_sizes=dict(row.split_sizes),
            versions=dict(row.versions),
            git_commit=row.git_commit,
            extra=dict(row.extra),
        )
