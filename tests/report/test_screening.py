"""Screening in the report: the rung ladder of successive halving, the noise-aware leaderboard,
the compute table, and the best ensemble's seeds with and without the selected run."""

from __future__ import annotations

import re

import pytest

from rewardsmith.report import ReportData, TrialRecord, screening, write_report
from rewardsmith.report import analysis as an
from rewardsmith.report.blocks import Table
from rewardsmith.search.compute import TrialCompute, summarize

from .conftest import BASE, build_run, candidate, metrics_for


def rung(tid, name, r, steps, acc, *, continues=None, seed=1, promoted=None) -> TrialRecord:
    return TrialRecord(
        id=tid,
        kind="screen",
        rewards=BASE + [name],
        seed=seed,
        selection=metrics_for(acc, 1.0, seed=tid),
        steps=steps,
        rung=r,
        continues=continues,
        promoted=promoted,
    )


def halving_run() -> ReportData:
    """Round 1: a, b, c at rung 0 (3 steps); a and b at rung 1 (9 steps); a at rung 2 (27 steps)
    with a second seed. Round 2: d alone, screened at the full budget."""
    trials = [
        rung(1, "a", 0, 3, 0.5),
        rung(2, "b", 0, 3, 0.4),
        rung(3, "c", 0, 3, 0.2),
        rung(4, "a", 1, 9, 0.6, continues=1),
        rung(5, "b", 1, 9, 0.3, continues=2, promoted=False),
        rung(6, "a", 2, 27, 0.7, continues=4),
        rung(7, "a", 2, 27, 0.5, seed=2),  # an extra seed at the top: trained from scratch
        rung(8, "d", 0, 27, 0.45),
    ]
    cands = [candidate(n, 1) for n in "abc"] + [candidate("d", 2)]
    return ReportData(run_id="halving", candidates=cands, trials=trials)


def cells(table: Table) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table.rows}


def test_ladder_shows_scores_promotions_and_steps_per_rung() -> None:
    first, second = screening.ladder(halving_run())

    table = screening.ladder_table(first)
    rows = cells(table)
    assert table.headers == [
        "candidate",
        "rung 0 (3 steps)",
        "rung 1 (9 steps)",
        "rung 2 (27 steps)",
    ]
    assert list(rows)[:3] == ["a", "b", "c"]  # the highest rung reached first
    assert rows["a"] == ["0.500 ↑", "0.600 ↑", "0.600 (2 seeds)"]  # mean of 0.7 and 0.5
    assert rows["b"] == ["0.400 ↑", "0.300 ·", "—"]  # the stored decision wins
    assert rows["c"] == ["0.200 ·", "—", "—"]
    # continued runs count only what they add: 3 x 3; 2 x (9 - 3); (27 - 9) + 27 from scratch
    assert rows["GRPO steps trained"] == ["9", "12", "45"]
    assert second.round == 2 and cells(screening.ladder_table(second))["d"] == ["0.450"]


def test_ladder_section_only_when_halving_was_used(tmp_path) -> None:
    assert screening.ladder_section(build_run()) == []  # full screening: no ladder
    html = write_report(halving_run(), tmp_path)["html"].read_text(encoding="utf-8")
    assert "<h2>Screening rungs (successive halving)</h2>" in html
    assert "<h3>round 1</h3>" in html and "<h3>round 2</h3>" in html


def test_leaderboard_keeps_one_row_per_candidate_at_its_highest_rung() -> None:
    rows = an.leaderboard(halving_run())

    assert [(r.name, r.trial.id) for r in rows] == [("a", 6), ("d", 8), ("b", 5), ("c", 3)]


def test_seed_summary_with_and_without_the_selected_run(tmp_path) -> None:
    data = build_run()  # best ensemble #9 (test acc ~0.8) + 3 final seeds
    head = an.headline(data)
    extra = data.trials_of("final")

    assert len(head.finals) == 4 and head.best_ensemble in head.finals
    assert head.extra_accuracy[0] == pytest.approx(
        sum(t.test["accuracy"] for t in extra) / len(extra)
    )
    assert head.extra_f1[0] == pytest.approx(sum(t.test["f1"] for t in extra) / len(extra))
    assert head.extra_accuracy != head.seed_accuracy
    html = write_report(data, tmp_path)["html"].read_text(encoding="utf-8")
    assert "best ensemble, 4 seeds (selected run included)" in html
    assert "best ensemble, 3 extra seeds (selected run left out)" in html
    summary = an.summary(data)["headline"]
    assert summary["extra_seed_accuracy_mean_std"] == pytest.approx(head.extra_accuracy)


def test_ranking_drives_the_leaderboard_accuracy_first(tmp_path) -> None:
    data = halving_run()
    data.ranking = [
        {"name": "a", "rung": 2, "seeds": 2, "accuracy": 0.6, "delta": 0.1,
         "ci": [0.02, 0.18], "p_mcnemar": 0.012, "score": 0.02, "trial_ids": [6, 7]},
        {"name": "d", "rung": 0, "seeds": 1, "accuracy": 0.45, "delta": -0.05,
         "ci": [-0.12, 0.02], "p_mcnemar": 0.3, "score": -0.12, "trial_ids": [8]},
    ]  # fmt: skip

    html = write_report(data, tmp_path)["html"].read_text(encoding="utf-8")

    board = html[html.index("<h2>Leaderboard</h2>") : html.index("<h2>Screening rungs")]
    headers = re.findall(r"<th>(.*?)</th>", board)
    assert headers.index("val accuracy") < headers.index("Δ acc vs baseline [95% CI]")
    assert "+0.100 [+0.020, +0.180]" in board and "0.0120" in board
    assert board.index("<td>a</td>") < board.index("<td>d</td>")
    assert ReportData.from_dict(data.to_dict()) == data


def test_compute_table_and_share_saved(tmp_path) -> None:
    data = halving_run()
    data.compute = summarize(
        [
            TrialCompute(1, "screen", "a", 3, 1.0, 1.0, 2.0, None, 0, 27),
            TrialCompute(2, "screen", "b", 3, 1.0, 1.0, 2.0, None, 0, 27),
            TrialCompute(4, "screen", "a", 24, 8.0, 1.0, 9.0, None, 1, 27),
            TrialCompute(9, "baseline", None, 27, 9.0, 1.0, 10.0, 20.0),
        ]
    ).to_dict()

    blocks = screening.compute_section(data)
    table = next(b for b in blocks if isinstance(b, Table))
    rows = cells(table)

    assert rows["screening"] == ["3", "30", "13 s", "—"]
    assert rows["  screening rung 1"] == ["1", "24", "9 s", "—"]
    assert rows["total"] == ["4", "57", "23 s", "20 s"]
    text = " ".join(b.text for b in blocks if hasattr(b, "text"))
    assert "full screening (every candidate 27 steps, one seed) would train 54" in text
    assert "44% of its steps saved" in text  # 1 - 30/54
    html = write_report(data, tmp_path)["html"].read_text(encoding="utf-8")
    assert "<h2>Compute</h2>" in html


def test_store_rungs_and_compute_reach_the_report(tmp_path) -> None:
    from rewardsmith.config import parse_config
    from rewardsmith.report.from_store import build_report_data
    from rewardsmith.rewards.candidate import Candidate
    from rewardsmith.search.compute import compute_record
    from rewardsmith.search.loop import with_steps
    from rewardsmith.store import RunStore, TrialResult

    cfg = parse_config({"name": "ladder", "grpo": {"max_steps": 9}})
    with RunStore.create(tmp_path / "run", cfg) as store:
        code = "def a(prompts, completions, **kw):\n    return []\n"
        store.add_candidate(Candidate("a", code, "about a", 1, "offline"))
        ids = []
        for r, steps in enumerate((3, 9)):
            attrs = {
                "rung": r,
                "rung_steps": steps,
                "budget": 9,
                "continues": ids[-1] if ids else None,
            }
            ids.append(
                store.enqueue_trial("screen", ["a"], config=with_steps(cfg, steps), attrs=attrs)
            )
            store.claim_trial(ids[-1])
            curves = {"_timings": compute_record(steps - 3 * r, 1.0, 0.5)}
            store.complete_trial(ids[-1], TrialResult({"accuracy": 0.5}, (1, 0), curves))
        data = build_report_data(store)

    first, second = data.trials
    assert (first.rung, first.continues, second.rung, second.continues) == (0, None, 1, ids[0])
    assert set(second.durations) == {"train_s", "eval_s", "wall_s"}  # seconds only
    assert data.compute["phases"]["screening"]["steps"] == 9
    assert data.compute["saved_share"] == 0.0  # one candidate, carried to the full budget
    (ranked,) = data.ranking  # no baseline yet: scored on the rank metric, no delta
    assert (ranked["name"], ranked["rung"], ranked["trial_ids"], ranked["delta"]) == (
        "a",
        1,
        [ids[1]],
        None,
    )


def test_cli_table_gives_the_extra_seeds_without_the_selected_run(tmp_path) -> None:
    from rewardsmith.cli._render import final_table
    from rewardsmith.config import parse_config
    from rewardsmith.rewards.candidate import Candidate
    from rewardsmith.store import RunStore, TrialResult

    with RunStore.create(tmp_path / "run", parse_config({"name": "seeds"})) as store:
        code = "def a(prompts, completions, **kw):\n    return []\n"
        store.add_candidate(Candidate("a", code, "about a", 1, "offline"))
        for kind, seed, test in (("ensemble", 1, (1, 1, 1, 1)), ("final", 2, (1, 0, 0, 0)),
                                 ("final", 3, (1, 1, 0, 0))):  # fmt: skip
            trial_id = store.enqueue_trial(kind, ["a"], seed=seed)
            store.claim_trial(trial_id)
            store.complete_trial(trial_id, TrialResult({"accuracy": 0.5}, (1, 0)))
            store.add_evaluation(trial_id, "test", {"accuracy": sum(test) / 4, "f1": 0.5}, test)
        caption = final_table(store).caption

    assert "best ensemble over seeds: accuracy 0.583 +- 0.382" in caption  # 1.0, 0.25, 0.5
    assert "without the selected run (biased upward): accuracy 0.375 +- 0.177" in caption
