"""A search survives a generator whose every candidate is rejected, and a round of failed trials."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardsmith.config import parse_config
from rewardsmith.execution import LocalProcessExecutor
from rewardsmith.generators.base import RoundContext
from rewardsmith.rewards.candidate import Candidate
from rewardsmith.sandbox.pool import SandboxPool
from rewardsmith.search.loop import Search
from rewardsmith.store import RunStore, TrialState
from rewardsmith.tasks import get_task
from tests.training.conftest import mini_search

pytestmark = pytest.mark.slow


class ScriptedGenerator:
    """Proposes the given programs in turn (an LLM that writes broken or hostile code)."""

    name = "scripted"

    def __init__(self, programs: list[str]) -> None:
        self.programs = programs
        self.rejections: list = []
        self.calls = 0

    def propose(self, round: int, n: int, context: RoundContext) -> list[Candidate]:
        out = []
        for _ in range(n):
            code = self.programs[self.calls % len(self.programs)]
            self.calls += 1
            name = f"cand_{round}_{self.calls}"
            out.append(
                Candidate(
                    name=name,
                    code=code.replace("NAME", name),
                    description="x",
                    round=round,
                    generator=self.name,
                )
            )
        return out


class Recorder:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def phase(self, text):
        pass

    def trials(self, trials):
        pass

    def progress(self, trial_id, step, max_steps):
        pass

    def trial_done(self, trial, result):
        pass

    def message(self, text):
        self.messages.append(text)


def _cfg(**search):
    data = mini_search(
        questions=8,
        grpo={"max_steps": 2},
        candidates_per_round=2,
        max_rejections_per_round=3,
        ensemble_steps=2,
        **search,
    )
    data["rewards"].update(timeout_s=0.5)
    return parse_config(data)


def _search(tmp_path: Path, programs: list[str]) -> tuple[RunStore, Recorder]:
    cfg = _cfg()
    store = RunStore.create(tmp_path / "run", cfg)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    recorder = Recorder()
    with SandboxPool() as pool:
        Search(
            store,
            ScriptedGenerator(programs),
            LocalProcessExecutor(1),
            task,
            observer=recorder,
            pool=pool,
        ).run()
    return store, recorder


def test_generator_that_fails_every_candidate(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = [
        "def NAME(prompts, completions, answer, **kw):\n"
        "    return [float('nan')] * len(completions)\n",
        "import os\ndef NAME(prompts, completions, answer, **kw):\n    return [0.0]\n",
        "def NAME(prompts, completions:\n",
    ]
    store, recorder = _search(tmp_path, broken)
    verdicts = store.verdicts()
    assert verdicts and not any(v["accepted"] for v in verdicts.values())
    assert any("only 0/2 candidates accepted" in m for m in recorder.messages)
    trials = store.trials()
    assert [t.kind for t in trials] == ["baseline"]  # the search went on to its baseline
    assert trials[0].state == TrialState.COMPLETE
    assert store.evaluation(trials[0].id, "test") is not None


def test_round_where_every_trial_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    # passes validation (probes use batches of 1, 4 and 16) but hangs on the trainer's batch of 8
    hangs = (
        "def NAME(prompts, completions, answer, **kw):\n"
        "    if len(completions) == 8:\n        while True:\n            pass\n"
        "    return [0.0 for _ in completions]\n"
    )
    store, recorder = _search(tmp_path, [hangs])
    screens = store.trials(kind="screen")
    assert len(screens) == 2 and all(t.state == TrialState.FAILED for t in screens)
    assert all("timed out" in t.fail_reason.lower() for t in screens)
    baseline = store.trials(kind="baseline")
    assert baseline and baseline[0].state == TrialState.COMPLETE
    from rewardsmith.search.feedback import build_summary

    summary = build_summary(store)
    assert {e.name for e in summary} == {t.candidates[0] for t in screens}
    assert all("FAILED" in e.reflection for e in summary)
