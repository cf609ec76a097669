"""Finalist test evaluations as executor jobs: one worker process each, stored like trials'
results, retried within ``max_attempts`` and then given up without stopping the search."""

from __future__ import annotations

import json
from pathlib import Path

from rewardsmith.config import parse_config
from rewardsmith.execution import FAILURES_FILE, LocalProcessExecutor, make_executor
from rewardsmith.search.loop import Search
from rewardsmith.store import RunStore, TrialResult
from tests.search.test_executor_gpus import _starts, _store, fake_worker_fixture  # noqa: F401
from tests.training.conftest import tiny_config

N_TEST = 4


def _complete(store: RunStore, kind: str, seed: int = 0) -> int:
    """A COMPLETE trial whose recorded policy is the base model (no adapter)."""
    trial_id = store.enqueue_trial(kind, seed=seed)
    token = store.claim_trial(trial_id).attempt_token
    metrics = {"accuracy": 0.5, "f1": 0.5, "split": "validation"}
    store.complete_trial(trial_id, TrialResult(metrics, (1, 0)), token=token)
    return trial_id


def test_a_finalist_is_evaluated_in_a_worker_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tiny_config().model_dump(mode="json")
    data["task"]["options"] = {"n_val": 4, "n_test": N_TEST}
    cfg = parse_config(data)
    store = RunStore.create(tmp_path / "run", cfg)
    trial_id = _complete(store, "baseline")
    done: list[int] = []
    make_executor(cfg).evaluate(store, [trial_id], "test", done.append)

    assert done == [trial_id]
    evaluation = store.evaluation(trial_id, "test")
    assert evaluation is not None and evaluation.metrics["split"] == "test"
    assert evaluation.metrics["n"] == N_TEST and len(evaluation.correctness) == N_TEST
    records = Path(evaluation.records_path)
    assert records.name.startswith(f"trial-{trial_id}-test-")  # this attempt's own file
    assert len(records.read_text().splitlines()) == N_TEST
    log = (store.logs_dir / f"eval-{trial_id}-test.log").read_text()
    assert f"trial {trial_id} evaluation on test on CPU" in log
    # evaluated already: no second job
    LocalProcessExecutor(worker_module="nonexistent", eval_module="nonexistent").evaluate(
        store, [trial_id], "test"
    )
    assert store.evaluation(trial_id, "test") == evaluation
    store.close()


def test_an_eval_worker_that_dies_is_retried(tmp_path: Path, fake_worker: str) -> None:
    store = _store(tmp_path, {"actions": ["die"], "default": "evaluate"})
    trial_id = _complete(store, "baseline")
    done: list[int] = []
    executor = LocalProcessExecutor(max_attempts=2, poll_s=0.05, eval_module=fake_worker)
    executor.evaluate(store, [trial_id], "test", done.append)
    assert done == [trial_id] and len(_starts(store)) == 2
    assert store.evaluation(trial_id, "test").metrics == {"accuracy": 1.0, "split": "test"}
    store.close()


def test_an_eval_job_that_keeps_failing_is_given_up_also_on_resume(
    tmp_path: Path, fake_worker: str
) -> None:
    store = _store(tmp_path, {"default": "die"})
    trial_id = _complete(store, "baseline")
    done: list[int] = []
    executor = LocalProcessExecutor(max_attempts=2, poll_s=0.05, eval_module=fake_worker)
    executor.evaluate(store, [trial_id], "test", done.append)  # no exception: it is data
    assert done == [] and store.evaluation(trial_id, "test") is None
    assert len(_starts(store)) == 2
    failures = (store.logs_dir / FAILURES_FILE).read_text().splitlines()
    assert [json.loads(x)["job"] for x in failures] == [f"eval-{trial_id}-test"] * 2
    executor.evaluate(store, [trial_id], "test")  # a resume: the bound holds
    assert len(_starts(store)) == 2
    store.close()


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase(self, text: str) -> None:
        self.lines.append(text)

    message = phase


def test_evaluate_finalists_runs_executor_jobs(tmp_path: Path, fake_worker: str) -> None:
    """One finalist's evaluation fails on every attempt: the other is still evaluated, and the
    missing one is reported."""
    store = _store(tmp_path, {"actions": ["die", "die"], "default": "evaluate"})
    baseline = _complete(store, "baseline")
    final = _complete(store, "final", seed=5)
    store.enqueue_trial("ensemble")  # not COMPLETE: not a finalist
    executor = LocalProcessExecutor(max_attempts=2, poll_s=0.05, eval_module=fake_worker)
    observer = Messages()
    Search(store, None, executor, None, observer=observer).evaluate_finalists([])

    assert store.evaluation(baseline, "test") is None  # its two workers died
    assert store.evaluation(final, "test") is not None
    assert [s["trial"] for s in _starts(store)] == [baseline, baseline, final]
    assert observer.lines[0] == "test evaluation of 2 finalist(s)"
    assert f"evaluated trial {final} (final) on test" in observer.lines
    assert observer.lines[-1].startswith(f"no test evaluation for trial(s) [{baseline}]")
    store.close()
