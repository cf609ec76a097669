"""The report renders a synthetic run (and a partial one) with every section it promises."""

from __future__ import annotations

import doctest
import json
import re

import pytest

from rewardsmith.report import ReportData, TrialRecord, write_report
from rewardsmith.report import analysis as an
from rewardsmith.report import data as data_module

from .conftest import build_run, metrics_for, with_test


def _section(html: str, start: str, end: str) -> str:
    return html[html.index(f"<h2>{start}</h2>") : html.index(f"<h2>{end}</h2>")]


@pytest.fixture(scope="module")
def written(run_data, tmp_path_factory):
    paths = write_report(run_data, tmp_path_factory.mktemp("report"))
    return paths, paths["html"].read_text(encoding="utf-8")


def test_files_exist_and_html_is_self_contained(written):
    paths, html = written
    assert {k: p.name for k, p in paths.items()} == {
        "html": "report.html",
        "markdown": "report.md",
        "json": "report.json",
    }
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html  # the LLM-written description is escaped, not executed
    assert "&lt;script src=&quot;https://evil.example/x.js&quot;&gt;" in html
    assert "<style>" in html and "<link" not in html


def test_leaderboard_order(run_data, written):
    names = [row.name for row in an.leaderboard(run_data)]
    # ranked by selection accuracy (= F1 order); the FAILED trial has no metrics, comes last
    assert names == ["better_reward", "good_reward", "hack_reward", "loop_reward", "crash_reward"]
    assert [row.rank for row in an.leaderboard(run_data)][-1] is None
    board = _section(written[1], "Leaderboard", "Accuracy per round")
    positions = [board.index(f"<td>{n}</td>") for n in names]
    assert positions == sorted(positions)


def test_rounds_include_empty_round(run_data):
    rows = {r.round: r for r in an.round_summary(run_data)}
    assert sorted(rows) == [1, 2, 3]
    assert rows[1].best_name == "good_reward" and rows[1].n_scored == 2
    assert rows[2].n_scored == 2 and rows[2].best_name == "better_reward"  # crash failed
    assert rows[3].mean_f1 is None and rows[3].n_candidates == 1


def test_hacking_panel_names_the_hacking_candidates(run_data, written):
    suspects = {s.name: s.reasons for s in an.hacking_suspects(run_data)}
    assert "hack_reward" in suspects and "training reward rose" in suspects["hack_reward"][0]
    assert "loop_reward" in suspects  # extraction 0.1 and degenerate samples
    assert any("degenerate" in r for r in suspects["loop_reward"])
    assert "good_reward" not in suspects and "better_reward" not in suspects
    panel = _section(written[1], "Reward-hacking panel", "Training curves")
    assert "hack_reward" in panel and "loop_reward" in panel and "good_reward" not in panel


def test_statistics_sections(run_data, written):
    html = written[1]
    mcnemar = _section(html, "McNemar tests on the test split", "Reward-hacking panel")
    assert "1 comparison(s); family-wise alpha 0.05" in mcnemar  # 2 ensembles: 1 pair
    assert "ensemble k=2" in mcnemar and "baseline" in mcnemar and "control" in mcnemar
    head = an.headline(run_data)
    # the best ensemble itself plus its 3 re-trained seeds
    assert head.best_ensemble.id == 9 and len(head.finals) == 4 and head.finals[0].id == 9
    assert head.vs_baseline is not None and head.vs_baseline.n == 80
    mean = sum(t.test["f1"] for t in head.finals) / 4
    assert head.seed_f1[0] == pytest.approx(mean)
    headline = _section(
        html, "Baseline vs control vs best ensemble", "McNemar tests on the test split"
    )
    assert f"{mean:.3f} ± " in headline and "McNemar best ensemble vs baseline" in headline
    # the finalists family: baseline, control, 2 ensembles -> 6 pairs at 0.05 / 6
    assert "6 comparison(s)" in mcnemar and "Bonferroni tests each pair at 8.33e-03" in mcnemar


def test_failures_and_code_are_listed(written):
    html = written[1]
    failures = _section(html, "Failures", "Candidates: code and verdicts")
    assert "crash_reward failed on 40% of calls" in failures
    assert "broken_reward" in failures and "ZeroDivisionError" in failures
    code = html[html.index("<h2>Candidates: code and verdicts</h2>") :]
    assert code.count("<details>") == 7 and "def hack_reward(prompts" in code


def test_markdown_mirrors_the_sections(written):
    paths, _ = written
    md = paths["markdown"].read_text(encoding="utf-8")
    for heading in ("## Leaderboard", "## Ensembles", "## Reward-hacking panel", "## Failures"):
        assert heading in md
    links = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert links and all((paths["markdown"].parent / link).is_file() for link in links)


def test_json_round_trips(run_data, written):
    paths, _ = written
    assert ReportData.load(paths["json"]) == run_data
    raw = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert raw["summary"]["leaderboard"][0]["name"] == "better_reward"
    assert {h["name"] for h in raw["summary"]["hacking"]} == {"hack_reward", "loop_reward"}
    assert ReportData.from_dict(json.loads(json.dumps(run_data.to_dict()))) == run_data


def test_partial_runs_render(tmp_path):
    empty = ReportData(run_id="fresh", candidates=build_run().candidates[:2])
    html = write_report(empty, tmp_path / "empty")["html"].read_text(encoding="utf-8")
    assert "no candidate screened yet" in html and "no ensemble trained yet" in html
    assert "no training curves recorded yet" in html
    only_failed = ReportData(
        run_id="failed",
        trials=[
            TrialRecord(
                id=1, kind="screen", rewards=["x_reward"], state="FAILED", fail_reason="oom"
            )
        ],
    )
    paths = write_report(only_failed, tmp_path / "failed")
    assert "oom" in paths["html"].read_text(encoding="utf-8")
    assert ReportData.load(paths["json"]) == only_failed


def test_failed_ensemble_and_metrics_without_cis_render(tmp_path):
    no_ci = {"f1": 0.5, "accuracy": 0.4, "extraction_rate": 0.9, "ci": None}
    run = ReportData(
        run_id="odd",
        trials=[
            TrialRecord(
                id=1,
                kind="baseline",
                rewards=["check_answer"],
                selection=no_ci,
                curves={"reward": [[0, 1.0]]},
            ),
            TrialRecord(
                id=2,
                kind="ensemble",
                rewards=["check_answer", "a_reward"],
                state="FAILED",
                fail_reason="NaN loss",
            ),
            TrialRecord(
                id=3,
                kind="ensemble",
                rewards=["check_answer", "a_reward", "b_reward"],
                selection=no_ci,
                test=no_ci,
                test_correct=[True, False],
            ),
        ],
    )
    html = write_report(run, tmp_path)["html"].read_text(encoding="utf-8")
    ensembles = _section(html, "Ensembles", "Baseline vs control vs best ensemble")
    assert "<td>0.500</td>" in ensembles and "FAILED" in ensembles
    assert "no paired test vectors (best ensemble vs baseline)" in html
    assert "fewer than two finalists with test results" in html


def test_store_shaped_input_is_accepted():
    raw = {
        "run_id": "r",
        "created": 0.0,
        "trials": [{"id": 1, "kind": "final", "rewards": ["a"], "test_correct": "1011"}],
    }
    data = ReportData.from_dict(raw)
    assert data.created.startswith("1970-01-01")
    assert data.trials[0].test_correct == [True, False, True, True]
    with pytest.raises(ValueError, match="kind"):
        TrialRecord(id=2, kind="bogus", rewards=[])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),  # nothing generated
        ("   \n", "empty"),  # white space only
        ("the answer is " * 10, "repetitive"),  # a loop
        ("<thinking>3 + 4 = 7 so the total is seven apples</thinking><solution>7</solution>", None),
        ("go go go", None),  # too short to judge repetition
    ],
)
def test_degenerate_reason(text, reason):
    got = an.degenerate_reason(text)
    assert (got or "").split(" (")[0] == (reason or "")


def test_doctests():
    for module in (data_module, an):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def _headers(html: str, start: str, end: str) -> list[str]:
    """The header cells of the first table of a section."""
    section = _section(html, start, end)
    table = section[section.index("<table") :]
    return re.findall(r"<th>(.*?)</th>", table[: table.index("</tr>")])


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("Leaderboard", "Accuracy per round"),
        ("Accuracy per round", "Ensembles"),
        ("Ensembles", "Baseline vs control vs best ensemble"),
        ("Baseline vs control vs best ensemble", "McNemar tests on the test split"),
    ],
)
def test_accuracy_comes_first_in_every_table(written, start: str, end: str) -> None:
    headers = _headers(written[1], start, end)
    acc = next(i for i, h in enumerate(headers) if "accuracy" in h)
    f1 = next(i for i, h in enumerate(headers) if "F1" in h)
    assert acc < f1, headers


def _named_run() -> ReportData:
    base = ["match_format_exactly", "match_format_approximately", "check_answer"]

    def trial(tid, kind, rewards, acc, steps, name=None):
        return with_test(
            TrialRecord(
                id=tid,
                kind=kind,
                rewards=base + rewards,
                selection=metrics_for(acc, 1.0, seed=tid),
                steps=steps,
                name=name,
            ),
            acc,
            tid,
        )

    return ReportData(
        run_id="named",
        trials=[
            trial(1, "baseline", [], 0.40, 500),  # trained before round 1: screening budget
            trial(2, "baseline", [], 0.50, 300),  # the finalists' baseline
            trial(3, "ensemble", ["a", "b", "c"], 0.55, 300, "top-3"),
            trial(4, "ensemble", ["a", "b"], 0.70, 500, "top-5 (500 steps)"),
            trial(5, "ensemble", ["a", "d"], 0.60, 300, "diverse-rounds = correctness"),
        ],
    )


def test_named_ensembles_are_labelled_and_compared_with_their_budget(tmp_path) -> None:
    run = _named_run()
    assert [an.label(t) for t in an.ensembles(run)] == [
        "top-3",
        "top-5 (500 steps)",
        "diverse-rounds = correctness",
    ]
    head = an.headline(run)
    assert head.best_ensemble.id == 4 and head.baseline.id == 1  # both 500 steps
    html = write_report(run, tmp_path)["html"].read_text(encoding="utf-8")
    ensembles = _section(html, "Ensembles", "Baseline vs control vs best ensemble")
    assert "<td>top-5 (500 steps)</td>" in ensembles and "<td>500</td>" in ensembles
    assert "diverse-rounds = correctness" in _section(
        html, "McNemar tests on the test split", "Reward-hacking panel"
    )


def test_assumptions_are_shown_with_the_config(tmp_path) -> None:
    run = ReportData(run_id="a", config={"assumptions": {"grpo.beta": "TRL's default of 2025"}})
    html = write_report(run, tmp_path)["html"].read_text(encoding="utf-8")
    assert "Assumptions of this recipe (1)" in html and "grpo.beta: TRL" in html
