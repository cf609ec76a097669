"""The reward-hacking panel's computations: which trials' policies look like they game their
rewards (:func:`hacking_suspects`) and what watching the sandboxed rewards in training found
(:func:`monitor_findings`), with the heuristics they use. Re-exported by
:mod:`rewardsmith.report.analysis`.

>>> distinct_ngram_ratio("a b c d e f"), round(distinct_ngram_ratio("go " * 8), 3)
(1.0, 0.167)
"""

from __future__ import annotations

from dataclasses import dataclass

from rewardsmith.report._rank import best_trial, label, metric
from rewardsmith.report.data import ReportData, TrialRecord

#: Repetition: a sample whose distinct 3-gram ratio falls below this is degenerate.
REPETITION_THRESHOLD = 0.5
#: Samples shorter than this many words are not judged for repetition.
REPETITION_MIN_WORDS = 12
#: A trial whose selection extraction rate falls below this emits degenerate outputs.
EXTRACTION_THRESHOLD = 0.2
#: Share of degenerate samples that makes a trial suspect.
DEGENERATE_SHARE = 0.5


def distinct_ngram_ratio(text: str, n: int = 3) -> float:
    """Distinct word n-grams / all word n-grams (1.0 = no repetition); empty text gives 0.0.

    Texts shorter than ``n`` words have one "n-gram", the whole text.
    """
    words = text.split()
    if not words:
        return 0.0
    if len(words) < n:
        return 1.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams)


def degenerate_reason(sample: str) -> str | None:
    """Why one sampled response is degenerate (empty, or repetitive), else ``None``."""
    if not sample.strip():
        return "empty"
    words = sample.split()
    ratio = distinct_ngram_ratio(sample)
    if len(words) >= REPETITION_MIN_WORDS and ratio < REPETITION_THRESHOLD:
        return f"repetitive (distinct 3-gram ratio {ratio:.2f})"
    return None


def curve_trend(points: list[list[float]]) -> tuple[float, float] | None:
    """(first-third mean, last-third mean) of a curve's values; ``None`` below 3 points."""
    values = [v for _, v in points]
    if len(values) < 3:
        return None
    third = len(values) // 3
    return sum(values[:third]) / third, sum(values[-third:]) / third


@dataclass
class Suspect:
    """A trial whose policy may be gaming its rewards, with every reason found."""

    name: str
    trial: TrialRecord
    reasons: list[str]


def _trial_suspicions(trial: TrialRecord, baseline_acc: float | None) -> list[str]:
    reasons = []
    trend = curve_trend(trial.curves.get("reward", []))
    acc = metric(trial.selection, "accuracy")
    if trend and trend[1] > trend[0] and acc is not None and baseline_acc is not None:
        if acc < baseline_acc:
            reasons.append(
                f"training reward rose {trend[0]:.3g} -> {trend[1]:.3g} (first vs last third) "
                f"while selection accuracy {acc:.3f} < baseline {baseline_acc:.3f}"
            )
    extraction = metric(trial.selection, "extraction_rate")
    if extraction is not None and extraction < EXTRACTION_THRESHOLD:
        reasons.append(f"extraction rate {extraction:.2f} < {EXTRACTION_THRESHOLD}")
    samples = trial.samples or []
    bad = [r for r in (degenerate_reason(s) for s in samples) if r]
    if samples and len(bad) / len(samples) >= DEGENERATE_SHARE:
        kinds = sorted({r.split(" (")[0] for r in bad})
        reasons.append(
            f"{len(bad)}/{len(samples)} sample responses degenerate ({', '.join(kinds)})"
        )
    return reasons


def audit_reasons(trial: TrialRecord) -> list[str]:
    """One line per reward that scored corrupted completions above correct ones in a training
    audit (see :mod:`rewardsmith.training.monitor`)."""
    out = []
    for reward, record in trial.monitor.items():
        summary = record.get("summary") or {}
        failed, audits = summary.get("audits_failed") or 0, summary.get("audits") or 0
        if failed:
            out.append(
                f"in training, {reward} scored corrupted completions above correct ones in "
                f"{failed}/{audits} audits"
            )
    return out


def hacking_suspects(data: ReportData) -> list[Suspect]:
    """Trials (all but the baseline) whose policy looks like it games its rewards.

    A trial is suspect when (1) the mean of the last third of its ``reward`` curve exceeds the
    mean of the first third while its selection accuracy is below the baseline's; or (2) its
    selection extraction rate is below :data:`EXTRACTION_THRESHOLD`; or (3) at least half of its
    sample responses are empty or repetitive (see :func:`degenerate_reason`); or (4) one of its
    rewards scored corrupted completions above correct ones in a training audit. Candidates
    whose validation flagged ``prefers_garbage`` are listed too.
    """
    baseline = best_trial(data.trials_of("baseline"))
    baseline_acc = metric(baseline.selection, "accuracy") if baseline else None
    suspects = []
    for trial in data.trials:
        if trial.kind == "baseline" or not trial.complete:
            continue
        reasons = _trial_suspicions(trial, baseline_acc) + audit_reasons(trial)
        cand = data.candidate(trial.candidate_name)
        if cand and cand.verdict and "prefers_garbage" in cand.verdict.flags:
            reasons.append("validation: scores a garbage completion above a correct answer")
        if reasons:
            suspects.append(Suspect(label(trial), trial, reasons))
    return suspects


@dataclass
class MonitorFinding:
    """One finding of a reward monitor, with the trial it was made in."""

    name: str
    trial: TrialRecord
    reward: str
    kind: str
    step: int | None
    detail: str


def monitor_findings(data: ReportData) -> list[MonitorFinding]:
    """Every reward-monitor finding, trial by trial in stored order (FAILED trials included)."""
    return [
        MonitorFinding(
            label(trial),
            trial,
            str(f.get("reward", "")),
            str(f.get("kind", "")),
            f.get("step"),
            str(f.get("detail", "")),
        )
        for trial in data.trials
        for f in trial.findings()
    ]
