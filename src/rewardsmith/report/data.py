"""The report's input: a plain, JSON-serialisable snapshot of a run (:class:`ReportData`).

The report never reads the run store itself: the search (or ``rewardsmith report RUN``) builds a
:class:`ReportData` from whatever the store holds, complete or not, and the report renders it.
Every field is plain data (str, int, float, bool, None, lists, dicts), so
``ReportData.from_dict(data.to_dict()) == data`` and the JSON file reloads into the same object.

Schema (defaults in brackets; metrics dicts have the shape of ``Metrics.to_dict()``: ``n, tp,
fp, fn, precision, recall, f1, accuracy, exact_match, extraction_rate, ci{f1, accuracy},
errors{no_extraction, wrong, correct}``)::

    ReportData: run_id, created (ISO-8601 str), config {}, manifest {}, selection_split ["val"],
                alpha [0.05], candidates [CandidateRecord], trials [TrialRecord],
                compute [None: ComputeSummary.to_dict() of rewardsmith.search.compute],
                ranking [None: the noise-aware ranking, [{name, rung, seeds, accuracy, delta,
                         ci, p_mcnemar, score, trial_ids}] best first]
    CandidateRecord: name, description [""], round [0], generator [""], parent [None], code [""],
                     verdict [None] -> VerdictRecord(accepted, stage, reason [""], flags [])
    TrialRecord: id, kind ("screen" | "baseline" | "control" | "ensemble" | "final"),
                 rewards [names], weights [1.0 each], seed [0], state ["COMPLETE"],
                 fail_reason [None], selection [None], test [None], test_correct [None],
                 curves {name: [[step, value], ...]}, samples [None], durations {},
                 candidate [None: the one non-base reward of a screen trial], k [None],
                 name [None: the ensemble configuration(s) it trains, e.g. "top-5"],
                 steps [None: GRPO steps trained], rung [None: its halving rung, 0 in full
                 screening], continues [None: the trial whose run it continued],
                 promoted [None: whether halving promoted it to the next rung],
                 monitor {reward: {summary {calls, audits, audits_failed, ...},
                                   findings [{reward, kind, step, detail, value}]}}

>>> t = TrialRecord(id=1, kind="screen", rewards=["check_answer", "units_reward"])
>>> t.candidate_name, t.weights
('units_reward', [1.0, 1.0])
>>> d = ReportData(run_id="r1", trials=[t])
>>> ReportData.from_dict(d.to_dict()) == d
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TRIAL_KINDS = ("screen", "baseline", "control", "ensemble", "final")
#: The paper's base rewards; kept here (not imported) so the report has no reward dependencies.
BASE_REWARDS = ("match_format_exactly", "match_format_approximately", "check_answer")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _created(value: Any) -> str:
    """An ISO-8601 string from an ISO string or POSIX seconds (the store keeps floats)."""
    if value is None:
        return _now_iso()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="seconds")
    return str(value)


@dataclass
class VerdictRecord:
    """A candidate's validation verdict (``stage == "accepted"`` when accepted)."""

    accepted: bool
    stage: str
    reason: str = ""
    flags: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerdictRecord:
        """Rebuild from :meth:`to_dict` (or a validation ``Verdict.to_dict()``)."""
        return cls(
            accepted=bool(data["accepted"]),
            stage=str(data.get("stage", "")),
            reason=str(data.get("reason") or ""),
            flags=[str(f) for f in data.get("flags") or []],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CandidateRecord:
    """A proposed reward: code, provenance, and its validation verdict when known."""

    name: str
    description: str = ""
    round: int = 0
    generator: str = ""
    parent: str | None = None
    code: str = ""
    verdict: VerdictRecord | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateRecord:
        """Rebuild from :meth:`to_dict` (or ``Candidate.to_dict()``); unknown keys are ignored."""
        verdict = data.get("verdict")
        return cls(
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            round=int(data.get("round") or 0),
            generator=str(data.get("generator") or ""),
            parent=None if data.get("parent") is None else str(data["parent"]),
            code=str(data.get("code") or ""),
            verdict=VerdictRecord.from_dict(verdict) if verdict else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.to_dict() if self.verdict else None
        return out


def _curves(raw: dict[str, Any] | None) -> dict[str, list[list[float]]]:
    return {
        str(name): [[float(step), float(value)] for step, value in points]
        for name, points in (raw or {}).items()
    }


@dataclass
class TrialRecord:
    """One training run of a set of rewards with a seed, and what came out of it.

    ``selection``/``test`` are metrics dicts (``Metrics.to_dict()`` shape) or ``None`` when the
    trial failed or was not evaluated there; ``test_correct`` is the per-question correctness on
    the test split, in a fixed question order shared by every trial (for McNemar).
    """

    id: int | str
    kind: str
    rewards: list[str]
    weights: list[float] = field(default_factory=list)
    seed: int = 0
    state: str = "COMPLETE"
    fail_reason: str | None = None
    selection: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    test_correct: list[bool] | None = None
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    samples: list[str] | None = None
    durations: dict[str, float] = field(default_factory=dict)
    candidate: str | None = None
    k: int | None = None
    monitor: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str | None = None
    steps: int | None = None
    rung: int | None = None
    continues: int | str | None = None
    promoted: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRIAL_KINDS:
            raise ValueError(f"trial {self.id}: kind {self.kind!r} is not one of {TRIAL_KINDS}")
        if not self.weights:
            self.weights = [1.0] * len(self.rewards)
        if len(self.weights) != len(self.rewards):
            raise ValueError(f"trial {self.id}: {len(self.weights)} weights for rewards")

    @property
    def extra_rewards(self) -> list[str]:
        """The rewards beyond the paper's base rewards, in order."""
        return [r for r in self.rewards if r not in BASE_REWARDS]

    @property
    def candidate_name(self) -> str | None:
        """The screened candidate: :attr:`candidate`, else the single non-base reward."""
        if self.candidate is not None:
            return self.candidate
        extra = self.extra_rewards
        return extra[0] if self.kind == "screen" and len(extra) == 1 else None

    @property
    def ensemble_k(self) -> int:
        """:attr:`k` when set, else the number of non-base rewards."""
        return self.k if self.k is not None else len(self.extra_rewards)

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """Rebuild from :meth:`to_dict`; unknown keys are ignored."""
        correct = data.get("test_correct")
        if isinstance(correct, str):  # the store keeps "1"/"0" strings
            correct = [ch == "1" for ch in correct]
        samples = data.get("samples")
        return cls(
            id=data["id"],
            kind=str(data["kind"]),
            rewards=[str(r) for r in data.get("rewards") or []],
            weights=[float(w) for w in data.get("weights") or []],
            seed=int(data.get("seed") or 0),
            state=str(data.get("state") or "COMPLETE"),
            fail_reason=data.get("fail_reason"),
            selection=data.get("selection"),
            test=data.get("test"),
            test_correct=None if correct is None else [bool(c) for c in correct],
            curves=_curves(data.get("curves")),
            samples=None if samples is None else [str(s) for s in samples],
            durations={str(k): float(v) for k, v in (data.get("durations") or {}).items()},
            candidate=data.get("candidate"),
            k=None if data.get("k") is None else int(data["k"]),
            monitor={str(k): dict(v) for k, v in (data.get("monitor") or {}).items()},
            name=None if data.get("name") is None else str(data["name"]),
            steps=None if data.get("steps") is None else int(data["steps"]),
            rung=None if data.get("rung") is None else int(data["rung"]),
            continues=data.get("continues"),
            promoted=None if data.get("promoted") is None else bool(data["promoted"]),
        )

    def findings(self) -> list[dict[str, Any]]:
        """Every reward-monitor finding of this trial, by reward then in the order found."""
        return [f for reward in self.monitor.values() for f in reward.get("findings") or []]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReportData:
    """Everything the report shows about one run; see the module docstring for the schema."""

    run_id: str
    created: str = field(default_factory=_now_iso)
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    selection_split: str = "val"
    alpha: float = 0.05
    candidates: list[CandidateRecord] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)
    compute: dict[str, Any] | None = None
    ranking: list[dict[str, Any]] | None = None

    def candidate(self, name: str | None) -> CandidateRecord | None:
        """The candidate called ``name``, or ``None``."""
        return next((c for c in self.candidates if c.name == name), None)

    def trials_of(self, kind: str) -> list[TrialRecord]:
        """The trials of one kind, in stored order."""
        return [t for t in self.trials if t.kind == kind]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportData:
        """Rebuild from :meth:`to_dict`; ``created`` may also be POSIX seconds."""
        return cls(
            run_id=str(data["run_id"]),
            created=_created(data.get("created")),
            config=dict(data.get("config") or {}),
            manifest=dict(data.get("manifest") or {}),
            selection_split=str(data.get("selection_split") or "val"),
            alpha=float(data.get("alpha", 0.05)),
            candidates=[CandidateRecord.from_dict(c) for c in data.get("candidates") or []],
            trials=[TrialRecord.from_dict(t) for t in data.get("trials") or []],
            compute=data.get("compute"),
            ranking=data.get("ranking"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created": self.created,
            "config": self.config,
            "manifest": self.manifest,
            "selection_split": self.selection_split,
            "alpha": self.alpha,
            "candidates": [c.to_dict() for c in self.candidates],
            "trials": [t.to_dict() for t in self.trials],
            "compute": self.compute,
            "ranking": self.ranking,
        }

    @classmethod
    def load(cls, path: str | Path) -> ReportData:
        """Load a ``report.json`` written by :func:`~rewardsmith.report.write_report`."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(raw.get("data", raw))
