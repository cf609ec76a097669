"""A halving round killed with ``kill -9`` in the middle of rung 1 resumes without re-running a
finished rung or trial and without re-deciding a promotion; and a whole search in halving mode
(generation, validation, rungs, ensembles), its trials "trained" instantly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rewardsmith.search.halving import Ladder
from rewardsmith.search.loop import Search
from rewardsmith.search.ranking import trial_rung
from rewardsmith.store import RunStore, TrialState
from tests.search.test_ensembles import _by_name, _run
from tests.search.test_halving import SCORES, Instant, baseline, make_store

# The search process: rung 0 and its decision, then rung 1 hangs in its second trial.
SEARCH = """
import sys, time
from pathlib import Path
from rewardsmith.search.halving import Ladder
from rewardsmith.search.loop import Search
from rewardsmith.store import RunStore
from tests.search.test_halving import SCORES, Instant

store = RunStore.open(Path(sys.argv[1]))
finish = Instant(store, lambda name, rung, seed: SCORES.get(name, 0.25))
started = []

def run(ids):
    for trial_id in ids:
        trial = store.trial(trial_id)
        if trial.attrs.get("rung") == 1:
            started.append(trial_id)
            if len(started) == 2:  # in flight when killed
                store.claim_trial(trial_id)
                Path(sys.argv[2]).write_text(str(trial_id))
                time.sleep(600)
        finish([trial_id])

Ladder(store, store.config(), run, print).climb(list(SCORES))
"""


def test_kill_mid_rung_then_resume(tmp_path: Path) -> None:
    with make_store(tmp_path, SCORES) as store:
        baseline(store, Instant(store, lambda name, rung, seed: 0.25))
    marker = tmp_path / "in-flight"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SEARCH, str(tmp_path / "run"), str(marker)], cwd=root, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the search process ended before rung 1"
            assert time.monotonic() < deadline, "rung 1 never started"
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    in_flight = int(marker.read_text())

    with RunStore.open(tmp_path / "run") as store:
        before = {t.id: (t.state, t.attrs.get("promoted")) for t in store.trials(kind="screen")}
        assert store.trial(in_flight).state == TrialState.RUNNING
        assert store.recover() == [in_flight]
        # resumed with different scores: a re-made decision would pick other candidates
        rerun = Instant(store, lambda name, rung, seed: 1.0 - SCORES.get(name, 0.5))
        top = Ladder(store, store.config(), rerun, lambda text: None).climb(list(SCORES))
        ran = {(name, rung) for name, rung, _ in rerun.ran}
        assert all(rung >= 1 for _, rung in ran)  # rung 0 is not re-run
        in_flight_name = store.trial(in_flight).candidates[0]
        assert (in_flight_name, 1) in ran
        for trial in store.trials(kind="screen"):
            state, promoted = before.get(trial.id, (None, None))
            if state == TrialState.COMPLETE:  # finished before the kill: kept as it was
                assert (name := trial.candidates[0], trial_rung(trial)) not in ran, name
                assert trial.attrs.get("promoted") == promoted or promoted is None
        rung1 = {t.candidates[0] for t in store.trials(kind="screen") if trial_rung(t) == 1}
        assert rung1 == {"d", "b", "c"}  # the decision stored before the kill
        # d's rung-1 run finished before the kill (0.60, kept); b (in flight) and c were run
        # after it, on the reversed scores (0.50, 0.55)
        assert [n for n, rung in sorted(ran) if rung == 1] == ["b", "c"]
        assert top == ["d"]


def test_a_search_in_halving_mode(tmp_path: Path) -> None:
    # 3 candidates a round, 5 steps, eta 3: rungs of 1 and 5 steps. r1_2 crashes at rung 0 and
    # is replaced (r1_4): ceil(4/3) = 2 of round 1 go on; one of round 2, r2_6, which crashes
    # at rung 1 and is not replaced (replace_failed looks at rung 0).
    scores = {"r1_1": 0.3, "r1_2": None, "r1_3": 0.5, "r1_4": 0.6, "r2_5": 0.2, "r2_6": 0.7}
    accuracy = _by_name(scores)

    def by_rung(trial):
        if trial.attrs.get("rung") == 1 and trial.candidates == ("r2_6",):
            return None
        return accuracy(trial)

    search = {"screening": {"mode": "halving"}, "replace_failed": True, "ensemble_sizes": [1]}
    store, _, _ = _run(tmp_path, search, by_rung)
    trials = store.trials(kind="screen")
    rungs = {(t.candidates[0], trial_rung(t)): t for t in trials}
    assert sorted(rungs) == sorted(
        [(n, 0) for n in ("r1_1", "r1_2", "r1_3", "r1_4", "r2_5", "r2_6", "r2_7")]
        + [("r1_3", 1), ("r1_4", 1), ("r2_6", 1)]
    )
    assert rungs["r1_4", 1].attrs["continues"] == rungs["r1_4", 0].id
    assert [rungs["r1_4", r].config["grpo"]["max_steps"] for r in (0, 1)] == [1, 5]
    assert rungs["r2_6", 1].state == TrialState.FAILED
    # the top-1 ensemble is the best at the highest rung reached
    (ensemble,) = store.trials(kind="ensemble")
    assert ensemble.candidates == ("r1_4",)
    # only a top single's full-budget runs are evaluated on test, not its partial rungs
    asked: list[int] = []

    class Evaluates:
        def evaluate(self, store, trial_ids, split, done) -> None:
            asked.extend(trial_ids)

    Search(store, None, Evaluates(), None).evaluate_finalists(["r1_4"])
    assert rungs["r1_4", 1].id in asked and rungs["r1_4", 0].id not in asked
