"""The report's sections, as render-neutral blocks (see :mod:`rewardsmith.report.blocks`).

Each ``*_section`` function takes the :class:`ReportData` and returns a list of blocks; each
copes with a partial run by saying what is missing instead of failing.
"""

from __future__ import annotations

import json
from typing import Any

from rewardsmith.report import analysis as an
from rewardsmith.report import plots, screening
from rewardsmith.report._format import DASH, F1_NOTE, fmt, fmt_ci, fmt_p
from rewardsmith.report.blocks import Block, Details, Heading, Image, Paragraph, Table
from rewardsmith.report.data import ReportData, TrialRecord
from rewardsmith.stats import McNemarResult, PairwiseResult


def _rewards(trial: TrialRecord) -> str:
    parts = [
        name if weight == 1.0 else f"{name}×{weight:g}"
        for name, weight in zip(trial.rewards, trial.weights, strict=True)
    ]
    return ", ".join(parts) or DASH


def overview_section(data: ReportData) -> list[Block]:
    """Run identity, counts, and the config and manifest as JSON."""
    states: dict[str, int] = {}
    for t in data.trials:
        states[t.state] = states.get(t.state, 0) + 1
    accepted = sum(1 for c in data.candidates if c.verdict and c.verdict.accepted)
    state_text = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none yet"
    return [
        Paragraph(
            f"Run {data.run_id}, created {data.created}. Candidates are ranked on the "
            f"'{data.selection_split}' split; test metrics are reported for finalists only."
        ),
        Paragraph(
            f"{len(data.candidates)} candidates ({accepted} accepted by validation); "
            f"{len(data.trials)} trials ({state_text})."
        ),
        *_assumptions(data.config),
        Details("Configuration", pre=json.dumps(data.config, indent=2, sort_keys=True)),
        Details("Manifest", pre=json.dumps(data.manifest, indent=2, sort_keys=True, default=str)),
    ]


def _assumptions(config: dict[str, Any]) -> list[Block]:
    """The recipe's stated assumptions (where the reproduced method is silent), if any."""
    notes = config.get("assumptions") or {}
    lines = [f"{path}: {why}" for path, why in sorted(notes.items())]
    return [Details(f"Assumptions of this recipe ({len(lines)})", lines)] if lines else []


def leaderboard_section(data: ReportData) -> list[Block]:
    """Screened candidates from the noise-aware ranking when the run stored one, else ranked by
    selection accuracy (the same order as F1), one row per candidate (its highest rung)."""
    if data.ranking:
        return screening.ranking_section(data)
    rows = [
        [
            str(r.rank) if r.rank else DASH,
            r.name,
            str(r.round) if r.round is not None else DASH,
            fmt_ci(r.trial.selection, "accuracy"),
            fmt_ci(r.trial.selection, "f1"),
            fmt(an.metric(r.trial.selection, "extraction_rate"), 2),
            r.trial.state,
        ]
        for r in an.leaderboard(data)
    ]
    headers = [
        "rank",
        "candidate",
        "round",
        f"{data.selection_split} accuracy [95% CI]",
        f"{data.selection_split} F1 [95% CI]",
        "extraction",
        "state",
    ]
    note = Paragraph(F1_NOTE, "note")
    return [Heading("Leaderboard"), note, Table(headers, rows, "no candidate screened yet")]


def rounds_section(data: ReportData) -> list[Block]:
    """Mean and best selection accuracy (and F1) per round, table and plot."""
    rows = an.round_summary(data)
    headers = ["round", "candidates", "scored", "mean accuracy", "best accuracy", "mean F1"]
    table = Table(
        [*headers, "best F1", "best candidate"],
        [
            [str(r.round), str(r.n_candidates), str(r.n_scored), fmt(r.mean_accuracy)]
            + [fmt(r.best_accuracy), fmt(r.mean_f1), fmt(r.best_f1), r.best_name or DASH]
            for r in rows
        ],
        "no round yet",
    )
    blocks: list[Block] = [Heading("Accuracy per round"), table]
    baseline = an.best_trial(data.trials_of("baseline"))
    png = plots.rounds_plot(rows, an.metric(baseline.selection, "accuracy") if baseline else None)
    if png:
        caption = f"Mean and best {data.selection_split} accuracy per round"
        blocks.append(Image("rounds", png, caption))
    return blocks


def ensemble_section(data: ReportData) -> list[Block]:
    """The named ensemble configurations: base rewards plus the members their rule picked."""
    trials = an.ensembles(data)
    rows = [
        [an.label(t), str(t.ensemble_k), DASH if t.steps is None else str(t.steps), _rewards(t)]
        + [fmt_ci(t.selection, "accuracy"), fmt_ci(t.selection, "f1")]
        + [fmt_ci(t.test, "accuracy"), fmt_ci(t.test, "f1"), t.state]
        for t in trials
    ]
    sel = data.selection_split
    headers = ["configuration", "k", "steps", "rewards", f"{sel} accuracy", f"{sel} F1"]
    headers += ["test accuracy", "test F1", "state"]
    blocks: list[Block] = [Heading("Ensembles"), Table(headers, rows, "no ensemble trained yet")]
    png = plots.ensemble_plot(trials)
    if png:
        blocks.append(Image("ensembles", png, "Ensemble accuracy with 95% CIs"))
    return blocks


def _mean_std(pair: tuple[float, float] | None) -> str:
    return DASH if pair is None else f"{pair[0]:.3f} ± {pair[1]:.3f}"


def _test_cell(test: McNemarResult | None, other: str) -> str:
    if test is None:
        return f"no paired test vectors (best ensemble vs {other})"
    return (
        f"McNemar best ensemble vs {other}: only ensemble right {test.b}, only {other} right "
        f"{test.c}, p = {fmt_p(test.pvalue)} ({test.method})"
    )


def headline_section(data: ReportData) -> list[Block]:
    """Baseline vs control vs the best ensemble, and the best ensemble's seed re-trainings."""
    head = an.headline(data)
    rows = []
    for role, trial in (
        ("baseline (base rewards)", head.baseline),
        ("control (random rewards)", head.control),
        ("best ensemble", head.best_ensemble),
    ):
        if trial is not None:
            rows.append(
                [role, an.label(trial), fmt_ci(trial.selection, "accuracy")]
                + [fmt_ci(trial.test, "accuracy"), fmt_ci(trial.test, "f1")]
            )
    n = len(head.finals)
    for role, acc, f1 in (
        (f"best ensemble, {n} seeds (selected run included)", head.seed_accuracy, head.seed_f1),
        (f"best ensemble, {n - 1} extra seeds (selected run left out)", head.extra_accuracy,
         head.extra_f1),
    ):  # fmt: skip
        if acc is not None or f1 is not None:
            rows.append([role, "mean ± std", DASH, _mean_std(acc), _mean_std(f1)])
    sel = data.selection_split
    headers = ["configuration", "trial", f"{sel} accuracy", "test accuracy", "test F1"]
    blocks: list[Block] = [
        Heading("Baseline vs control vs best ensemble"),
        Paragraph(
            "The best ensemble is chosen on the selection split, never on test. Its seed "
            "summary is shown with and without the selected run: that run was picked for "
            "scoring best, so it is biased upward; the extra seeds alone are not.",
            "note",
        ),
        Table(headers, rows, "no baseline, control or ensemble yet"),
    ]
    if head.best_ensemble is not None:
        blocks += [
            Paragraph(_test_cell(head.vs_baseline, "baseline"), "note"),
            Paragraph(_test_cell(head.vs_control, "control"), "note"),
        ]
    return blocks


def _matrix(result: PairwiseResult) -> Table:
    rows = []
    for a in result.names:
        row = [a]
        for b in result.names:
            if a == b:
                row.append(DASH)
                continue
            comp = result.get(a, b)
            mark = "**" if comp.significant_bonferroni else "*" if comp.significant_holm else ""
            row.append(f"{fmt_p(comp.test.pvalue)}{mark}")
        rows.append(row)
    return Table(["raw p"] + list(result.names), rows)


def _pairs(result: PairwiseResult) -> Table:
    rows = [
        [
            c.a,
            c.b,
            str(c.test.b),
            str(c.test.c),
            c.test.method,
            fmt_p(c.test.pvalue),
            fmt_p(c.p_bonferroni),
            fmt_p(c.p_holm),
            c.verdict,
        ]
        for c in result.comparisons
    ]
    headers = [
        "A",
        "B",
        "only A right",
        "only B right",
        "test",
        "p",
        "p Bonferroni",
        "p Holm",
        "verdict",
    ]
    return Table(headers, rows)


def mcnemar_section(data: ReportData) -> list[Block]:
    """Pairwise McNemar on test correctness: the ensembles (the paper's family), then finalists."""
    blocks: list[Block] = [Heading("McNemar tests on the test split")]
    families = (
        ("Ensemble configurations", ("ensemble",)),
        ("All finalists (baseline, control, ensembles, top single rewards)", an.FINALIST_KINDS),
    )
    for title, kinds in families:
        result = an.pairwise(data, kinds)
        blocks.append(Heading(title, 3))
        if result is None:
            blocks.append(Paragraph("fewer than two finalists with test results", "note"))
            continue
        blocks += [
            Paragraph(
                f"{result.n_comparisons} comparison(s); family-wise alpha {result.alpha:g}, so "
                f"Bonferroni tests each pair at {result.bonferroni_alpha:.2e}. "
                "** significant after Bonferroni, * after Holm only.",
                "note",
            ),
            _matrix(result),
            _pairs(result),
        ]
    return blocks


def hacking_section(data: ReportData) -> list[Block]:
    """The reward-hacking panel."""
    suspects = an.hacking_suspects(data)
    blocks: list[Block] = [
        Heading("Reward-hacking panel"),
        Paragraph(
            "Suspect when the training reward rose (last third vs first third of the curve) while "
            "selection accuracy fell below the baseline's, when the extraction rate is below "
            f"{an.EXTRACTION_THRESHOLD}, when at least half of the sampled responses are empty "
            f"or repetitive (distinct 3-gram ratio < {an.REPETITION_THRESHOLD}), or when one of "
            "its rewards scored corrupted completions above correct ones in a training audit.",
            "note",
        ),
    ]
    if suspects:
        blocks.append(Paragraph(f"{len(suspects)} suspect(s) found; review them below.", "warn"))
    rows = [[s.name, s.trial.kind, "; ".join(s.reasons)] for s in suspects]
    blocks.append(Table(["trial", "kind", "why"], rows, "no suspect found"))
    for s in suspects:
        if s.trial.samples:
            sample_text = "\n----\n".join(s.trial.samples)
            blocks.append(Details(f"sample responses of {s.name}", pre=sample_text))
    return blocks + _monitor_blocks(data)


def _monitor_blocks(data: ReportData) -> list[Block]:
    """The reward monitors' findings during training, one row per finding."""
    findings = an.monitor_findings(data)
    blocks: list[Block] = [
        Heading("Reward monitor findings during training", 3),
        Paragraph(
            "Each generated reward is watched while it trains: failed and timed-out calls, "
            "latency, zero within-group spread (no learning signal), and audits that score "
            "corrupted copies of correct live completions (answer removed, tags broken, words "
            "shuffled) against their originals.",
            "note",
        ),
    ]
    if any(f.kind == "garbage_above_correct" for f in findings):
        blocks.append(
            Paragraph("A reward scored corrupted completions above correct ones.", "warn")
        )
    rows = [
        [f.name, f.trial.state, f.reward, f.kind, DASH if f.step is None else str(f.step), f.detail]
        for f in findings
    ]
    headers = ["trial", "state", "reward", "finding", "step", "detail"]
    return blocks + [Table(headers, rows, "no finding")]


def curves_section(data: ReportData) -> list[Block]:
    """Training curves per trial as small multiples."""
    order = {"baseline": 0, "control": 1, "screen": 2, "ensemble": 3, "final": 4}
    trials = sorted(data.trials, key=lambda t: (order[t.kind], [-x for x in an.rank_key(t)]))
    images = plots.curve_grids(trials)
    blocks: list[Block] = [Heading("Training curves")]
    if not images:
        return blocks + [Paragraph("no training curves recorded yet", "note")]
    for i, png in enumerate(images):
        blocks.append(Image(f"curves-{i + 1}", png, f"Training curves ({i + 1}/{len(images)})"))
    return blocks


def failures_section(data: ReportData) -> list[Block]:
    """Failed trials and rejected candidates, with their reasons."""
    failed = [
        [str(t.id), t.kind, an.label(t), t.state, t.fail_reason or DASH]
        for t in data.trials
        if t.state == "FAILED"
    ]
    rejected = [
        [c.name, str(c.round), c.verdict.stage, c.verdict.reason]
        for c in data.candidates
        if c.verdict and not c.verdict.accepted
    ]
    return [
        Heading("Failures"),
        Heading("Failed trials", 3),
        Table(["trial", "kind", "name", "state", "reason"], failed, "no failed trial"),
        Heading("Rejected candidates", 3),
        Table(["candidate", "round", "stage", "reason"], rejected, "no rejected candidate"),
    ]


def code_section(data: ReportData) -> list[Block]:
    """Every candidate's code and verdict, collapsed."""
    blocks: list[Block] = [Heading("Candidates: code and verdicts")]
    if not data.candidates:
        return blocks + [Paragraph("no candidate yet", "note")]
    for c in sorted(data.candidates, key=lambda c: (c.round, c.name)):
        v = c.verdict
        verdict = "not validated" if v is None else ("accepted" if v.accepted else "rejected")
        lines = [
            f"description: {c.description or DASH}",
            f"round {c.round}, generator {c.generator or DASH}, parent {c.parent or DASH}",
        ]
        if v is not None:
            lines.append(f"verdict: {verdict} at stage {v.stage}; {v.reason or DASH}")
            if v.flags:
                lines.append(f"flags: {', '.join(v.flags)}")
        blocks.append(Details(f"{c.name} (round {c.round}, {verdict})", lines, c.code))
    return blocks


SECTIONS = (
    overview_section,
    leaderboard_section,
    screening.ladder_section,
    rounds_section,
    ensemble_section,
    headline_section,
    mcnemar_section,
    screening.compute_section,
    hacking_section,
    curves_section,
    failures_section,
    code_section,
)


def build_blocks(data: ReportData) -> list[Block]:
    """All sections, in display order."""
    return [block for section in SECTIONS for block in section(data)]
