"""Screening in the report: the rung ladder of successive halving per round, the noise-aware
leaderboard, and the compute spent (with the share saved against full screening).

* :func:`ladder`: per round, each candidate's selection accuracy at every rung it reached (the
  mean over seeds at the top rung), whether it was promoted, and the GRPO steps each rung
  trained. A trial's ``promoted`` flag is used when the search stored one; otherwise a candidate
  counts as promoted from rung r when it has a trial at rung r + 1.
* :func:`ranking_section`: the leaderboard from the stored noise-aware ranking
  (``ReportData.ranking``).
* :func:`compute_section`: ``ReportData.compute`` as a table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from rewardsmith.report import analysis as an
from rewardsmith.report._format import DASH, F1_NOTE, fmt, fmt_p
from rewardsmith.report.blocks import Block, Heading, Paragraph, Table
from rewardsmith.report.data import ReportData, TrialRecord

PROMOTED, STOPPED = "↑", "·"


@dataclass
class LadderCell:
    """A candidate at one rung: its trials there (several seeds at the top rung)."""

    trials: list[TrialRecord]
    promoted: bool | None = None

    @property
    def accuracy(self) -> float | None:
        values = [an.metric(t.selection, "accuracy") for t in self.trials if t.complete]
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None


@dataclass
class RoundLadder:
    """One round's rungs: ``steps[r]`` is rung r's budget, ``spent[r]`` the GRPO steps its trials
    trained (continued runs count only what they added), ``cells[name][r]`` a candidate."""

    round: int | None
    steps: dict[int, int | None] = field(default_factory=dict)
    spent: dict[int, int] = field(default_factory=dict)
    cells: dict[str, dict[int, LadderCell]] = field(default_factory=dict)

    def order(self) -> list[str]:
        """Candidates by the highest rung reached, then accuracy there, best first."""

        def key(name: str) -> tuple[int, float]:
            top = max(self.cells[name])
            return top, self.cells[name][top].accuracy or -1.0

        return sorted(self.cells, key=key, reverse=True)


def halving_used(data: ReportData) -> bool:
    return any((t.rung or 0) > 0 for t in data.trials_of("screen"))


def _trained(trial: TrialRecord, by_id: dict) -> int:
    before = by_id.get(trial.continues)
    return max((trial.steps or 0) - ((before.steps or 0) if before else 0), 0)


def ladder(data: ReportData) -> list[RoundLadder]:
    """The rung ladder of every round with screen trials, in round order."""
    by_id = {t.id: t for t in data.trials}
    rounds: dict[int | None, RoundLadder] = {}
    for trial in data.trials_of("screen"):
        name = trial.candidate_name or f"#{trial.id}"
        cand = data.candidate(trial.candidate_name)
        rnd = cand.round if cand else None
        lad = rounds.setdefault(rnd, RoundLadder(rnd))
        rung = trial.rung or 0
        lad.steps.setdefault(rung, trial.steps)
        lad.spent[rung] = lad.spent.get(rung, 0) + (_trained(trial, by_id) if trial.complete else 0)
        cell = lad.cells.setdefault(name, {}).setdefault(rung, LadderCell([]))
        cell.trials.append(trial)
        if trial.promoted is not None:
            cell.promoted = trial.promoted
    for lad in rounds.values():
        top = max(lad.steps)
        for cells in lad.cells.values():
            for rung, cell in cells.items():
                if cell.promoted is None and rung < top:
                    cell.promoted = rung + 1 in cells
    return [rounds[k] for k in sorted(rounds, key=lambda r: (r is None, r or 0))]


def _cell_text(cell: LadderCell | None) -> str:
    if cell is None:
        return DASH
    seeds = len(cell.trials)
    text = fmt(cell.accuracy) + (f" ({seeds} seeds)" if seeds > 1 else "")
    if cell.promoted is not None:
        text += f" {PROMOTED if cell.promoted else STOPPED}"
    return text


def ladder_table(lad: RoundLadder) -> Table:
    rungs = sorted(lad.steps)
    headers = ["candidate"] + [f"rung {r} ({lad.steps[r] or '?'} steps)" for r in rungs]
    rows = [[name] + [_cell_text(lad.cells[name].get(r)) for r in rungs] for name in lad.order()]
    rows.append(["GRPO steps trained"] + [str(lad.spent.get(r, 0)) for r in rungs])
    return Table(headers, rows)


def ladder_section(data: ReportData) -> list[Block]:
    """Successive halving's rung ladder per round (nothing when every candidate was screened
    at the full budget)."""
    if not halving_used(data):
        return []
    blocks: list[Block] = [
        Heading("Screening rungs (successive halving)"),
        Paragraph(
            f"Selection accuracy of each candidate at each rung it reached ({PROMOTED} promoted "
            f"to the next rung, {STOPPED} stopped there); a continued run trains only the steps "
            "it adds. Several seeds at a rung show their mean.",
            "note",
        ),
    ]
    for lad in ladder(data):
        title = "round ?" if lad.round is None else f"round {lad.round}"
        blocks += [Heading(title, 3), ladder_table(lad)]
    return blocks


def _delta(row: dict) -> str:
    delta, ci = row.get("delta"), row.get("ci")
    if delta is None:
        return DASH
    return f"{delta:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")


def ranking_section(data: ReportData) -> list[Block]:
    """The leaderboard from the noise-aware ranking, best first."""
    ranks = {c.name: c.round for c in data.candidates}
    rows = [
        [str(i), str(r.get("name")), str(ranks.get(r.get("name"), DASH))]
        + [DASH if r.get("rung") is None else str(r["rung"]), str(r.get("seeds") or DASH)]
        + [fmt(r.get("accuracy")), _delta(r)]
        + [DASH if r.get("p_mcnemar") is None else fmt_p(r["p_mcnemar"]), fmt(r.get("score"))]
        for i, r in enumerate(data.ranking or [], 1)
    ]
    sel = data.selection_split
    headers = ["rank", "candidate", "round", "rung", "seeds", f"{sel} accuracy"]
    headers += ["Δ acc vs baseline [95% CI]", "McNemar p", "score"]
    note = (
        "Ranked by the noise-aware ranking (rewardsmith.search.ranking): a higher rung first, "
        "then the score, the lower bound of the 95% CI of Δ (the rank metric when no baseline "
        "is usable). Accuracy is the mean over the candidate's seeds at its highest rung; Δ its "
        "paired difference from the base-rewards-only baseline on the same questions, with "
        "McNemar's p (of its first seed). The ensembles, the leaders fed back to the generator "
        "and the finalists follow this order. "
    )
    return [
        Heading("Leaderboard"),
        Paragraph(note + F1_NOTE, "note"),
        Table(headers, rows, "no candidate ranked yet"),
    ]


def _seconds(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _saved(share: float | None) -> str:
    if share is None:
        return DASH
    return f"{share:.0%} of its steps saved" if share >= 0 else f"{-share:.0%} more steps"


def compute_section(data: ReportData) -> list[Block]:
    """GRPO steps, wall time and GPU time per phase (and screening rung), and the share of
    steps saved against full screening."""
    from rewardsmith.search.compute import ComputeSummary

    blocks: list[Block] = [Heading("Compute")]
    if not data.compute:
        return blocks + [Paragraph("no compute recorded", "note")]
    s = ComputeSummary.from_dict(data.compute)
    parts = [(name, p) for name, p in s.phases.items()]
    if len(s.rungs) > 1:
        parts[1:1] = [(f"  screening rung {r}", p) for r, p in s.rungs.items()]
    parts.append(("total", s.total))
    rows = [
        [name, str(p.trials), str(p.steps), _seconds(p.wall_s), _seconds(p.gpu_s)]
        for name, p in parts
    ]
    table = Table(["phase", "trials", "GRPO steps", "wall time", "GPU time"], rows)
    blocks.append(table)
    if s.full_screening_steps:
        screening = s.phases["screening"].steps
        blocks.append(
            Paragraph(
                f"Screening trained {screening} GRPO steps for {s.candidates} candidate(s); full "
                f"screening (every candidate {s.budget} steps, one seed) would train "
                f"{s.full_screening_steps}: {_saved(s.saved_share)}.",
            )
        )
    blocks.append(
        Paragraph(
            "GPU time is the wall time of trials that ran on CUDA times the devices their worker "
            "saw. Wall time includes model loading and evaluation."
            + (f" {s.failed} FAILED trial(s) count wall time but no steps." if s.failed else ""),
            "note",
        )
    )
    return blocks
