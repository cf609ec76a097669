"""Real processes against one store: ``kill -9`` mid-trial and mid-transaction, racing workers.

The children are fresh interpreters running the public store API; the parent kills them with
SIGKILL (no cleanup handlers run) and checks what a resumed search would see.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rewardsmith.config import RunConfig
from rewardsmith.store import RunStore, TrialResult, TrialState

# Completes one trial, claims the next, then stalls: either between claim and complete, or
# inside complete_trial's transaction (after the UPDATE to COMPLETE, while inserting the result).
CHILD = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import event
    from rewardsmith.store import RunStore, TrialResult
    from rewardsmith.store.schema import ResultRow

    run_dir, mode = sys.argv[1], sys.argv[2]
    store = RunStore.open(run_dir)
    first = store.next_pending(worker="child")
    store.complete_trial(first.id, TrialResult(metrics={"f1": 0.5}, correctness=[1, 0]))
    second = store.next_pending(worker="child")
    if mode == "between":
        print("STALLED", second.id, flush=True)
        time.sleep(600)

    def stall(*args):
        print("STALLED", second.id, flush=True)
        time.sleep(600)

    event.listen(ResultRow, "before_insert", stall)
    store.complete_trial(second.id, TrialResult(metrics={"f1": 0.9}, correctness=[1, 1]))
    """
)

# Waits for the start signal, then claims trials until none is left, completing each after a
# short "training"; prints the ids it ran as JSON.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from rewardsmith.store import RunStore, TrialResult

    store = RunStore.open(sys.argv[1])
    print("READY", flush=True)
    while not Path(sys.argv[2]).exists():
        time.sleep(0.005)
    ran = []
    while (trial := store.next_pending(worker=f"w{os.getpid()}")) is not None:
        time.sleep(0.01)
        store.complete_trial(trial.id, TrialResult(metrics={"f1": trial.seed / 100}))
        ran.append(trial.id)
    print(json.dumps(ran), flush=True)
    """
)


def _wait_for_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The child's next stdout line, failing the test if it does not come in time."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"child printed nothing in {timeout}s: {proc.stderr.read()}")
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("mode", ["between", "in_transaction"])
def test_kill_9_mid_trial_leaves_a_consistent_store(
    tmp_path: Path, config: RunConfig, mode: str
) -> None:
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, config) as store:
        ids = [store.enqueue_trial("baseline", seed=s) for s in (1, 2, 3)]
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run_dir), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _wait_for_line(proc)
        assert line == f"STALLED {ids[1]}", line
        with RunStore.open(run_dir) as observer:  # WAL: readers see the last commit meanwhile
            assert observer.trial(ids[1]).state is TrialState.RUNNING
            assert observer.result(ids[1]) is None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(run_dir / "store.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with RunStore.open(run_dir, expected_config_hash=config.config_hash()) as store:
        done, interrupted, untouched = (store.trial(i) for i in ids)
        assert done.state is TrialState.COMPLETE
        assert store.result(done.id) == TrialResult(metrics={"f1": 0.5}, correctness=(1, 0))
        assert interrupted.state is TrialState.RUNNING and store.result(interrupted.id) is None
        assert untouched.state is TrialState.PENDING

        assert store.recover() == [interrupted.id]  # what a resumed search does first
        assert store.enqueue_trial("baseline", seed=1) == done.id  # re-enqueued: not duplicated
        rerun = [store.next_pending(worker="resume") for _ in range(2)]
        assert [t.id for t in rerun] == [interrupted.id, untouched.id]
        assert rerun[0].attempts == 2 and rerun[1].attempts == 1
        for trial in rerun:
            store.complete_trial(trial.id, TrialResult(metrics={"f1": 0.7}))
        assert store.next_pending() is None  # the COMPLETE trial is never handed out again
        assert store.result(done.id).metrics == {"f1": 0.5}
        assert {t.state for t in store.trials()} == {TrialState.COMPLETE}


def test_racing_workers_claim_each_trial_exactly_once(tmp_path: Path, config: RunConfig) -> None:
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, config) as store:
        ids = {store.enqueue_trial("baseline", seed=s) for s in range(24)}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(run_dir), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        assert _wait_for_line(proc, timeout=60) == "READY"
    go.touch()  # all four start claiming at once
    per_worker: list[list[int]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        per_worker.append(json.loads(out))
    ran = [i for ids_run in per_worker for i in ids_run]
    assert sorted(ran) == sorted(ids)  # every trial ran, none twice
    assert sum(1 for ids_run in per_worker if ids_run) >= 2  # they really raced
    with RunStore.open(run_dir) as store:
        trials = store.trials()
        assert all(t.state is TrialState.COMPLETE and t.attempts == 1 for t in trials)
        assert all(store.result(t.id).metrics["f1"] == t.seed / 100 for t in trials)
