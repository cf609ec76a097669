"""The sandbox pool: results, failures, worker replacement, input copies, the reward wrapper."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import pytest

from rewardsmith.sandbox import CallResult, SandboxedReward, SandboxPool

from .conftest import leftover_processes

LENGTH_REWARD = """
def length_reward(prompts, completions, answer, **kwargs):
    return [min(1.0, len(c) / 100) for c in completions]
"""
HANG_ON_DEMAND = """
def hang_reward(prompts, completions, **kwargs):
    if completions[0] == "hang":
        while True:
            pass
    return [1.0] * len(completions)
"""
EXIT_ON_DEMAND = """
import os
def exit_reward(prompts, completions, **kwargs):
    if completions[0] == "exit":
        os._exit(3)
    return [1.0] * len(completions)
"""


def test_call_returns_values_and_timing(pool):
    result = pool.call(LENGTH_REWARD, "length_reward", None, ["a" * 50, ""], answer=["1", "2"])
    assert result == CallResult(ok=True, values=(0.5, 0.0), duration_s=result.duration_s)
    assert 0 < result.duration_s < 5


def test_exception_keeps_last_traceback_line(pool):
    code = "def r(completions, **kw):\n    return [1 / 0]"
    result = pool.call(code, "r", None, ["x"])
    assert not result.ok and not result.timed_out and not result.crashed
    assert result.error == "ZeroDivisionError: division by zero (reward line 2)"


def test_hang_times_out_kills_the_group_and_is_replaced(pool):
    assert pool.call(HANG_ON_DEMAND, "hang_reward", None, ["ok"]).ok
    start = time.monotonic()
    hung = pool.call(HANG_ON_DEMAND, "hang_reward", None, ["hang"], timeout_s=0.5)
    assert hung.timed_out and not hung.ok and "timed out after 0.5s" in hung.error
    assert time.monotonic() - start < 3
    assert leftover_processes(pool) == []
    again = pool.call(HANG_ON_DEMAND, "hang_reward", None, ["ok", "ok"])
    assert again.ok and again.values == (1.0, 1.0)


def test_worker_death_during_a_call_is_a_crash_then_replaced(pool):
    died = pool.call(EXIT_ON_DEMAND, "exit_reward", None, ["exit"], restricted=False)
    assert died.crashed and not died.ok and "exit code 3" in died.error
    assert pool.call(EXIT_ON_DEMAND, "exit_reward", None, ["fine"], restricted=False).ok
    pool.discard(EXIT_ON_DEMAND, "exit_reward", restricted=False)


def _wait_until_dead(pid: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} still running")


def test_worker_killed_while_idle_is_replaced_transparently(pool):
    code = LENGTH_REWARD + "\n# a reward no other test loads: its worker starts now\n"
    assert pool.call(code, "length_reward", None, ["x"], answer=["1"]).ok
    pid = pool.spawned_pids[-1]
    assert pid in pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    result = pool.call(code, "length_reward", None, ["x"], answer=["1"])
    assert result.ok, result.error
    assert pid not in pool.worker_pids()


def test_worker_of_an_exited_thread_is_replaced_transparently():
    """The parent-death signal kills a worker when the thread that started it exits."""
    with SandboxPool(max_workers=1) as fresh:
        args = (LENGTH_REWARD, "length_reward", None, ["x"])
        thread = threading.Thread(target=fresh.call, args=args, kwargs={"answer": ["1"]})
        thread.start()
        thread.join()
        first = fresh.spawned_pids[0]
        _wait_until_dead(first)
        result = fresh.call(LENGTH_REWARD, "length_reward", None, ["x"], answer=["1"])
        assert result.ok, result.error
        assert fresh.worker_pids() != [first]


def test_inputs_are_copied(pool):
    code = (
        "def r(prompts, completions, answer, **kwargs):\n"
        "    completions[0][0]['content'] = 'changed'\n"
        "    answer.append('extra')\n"
        "    return [0.0] * len(prompts)"
    )
    completions = [[{"role": "assistant", "content": "original"}]]
    answer = ["72"]
    result = pool.call(code, "r", ["p"], completions, answer=answer)
    assert result.ok, result.error
    assert completions == [[{"role": "assistant", "content": "original"}]] and answer == ["72"]


def test_unserialisable_kwargs_are_dropped(pool):
    code = "def r(completions, **kw):\n    return [float(len(kw))] * len(completions)"
    result = pool.call(code, "r", None, ["x"], answer=["1"], trainer_state=object())
    # prompts, answer and the worker's stand-ins for log_extra/log_metric; trainer_state dropped
    assert result.values == (4.0,)


def test_nan_arrives_as_none_and_a_huge_int_column_is_dropped(pool):
    code = (
        "def r(completions, score, **kw):\n"
        "    return [-1.0 if s is None else s for s in score] + [float('huge' in kw)]"
    )
    result = pool.call(code, "r", None, ["a", "b", "c"], score=[float("nan"), 0.5], huge=2**70)
    assert result.ok, result.error
    assert result.values == (-1.0, 0.5, 0.0)  # NaN arrived as None; the 70-bit int was dropped


def test_bad_outputs_are_failures(pool):
    for body, message in [
        ("return [1.0]", "returned 1 values for 2 completions"),
        ("return (x for x in [1.0, 2.0])", "returned generator"),
        ("return [float('inf'), 1.0]", "value 0 is inf"),
        ("return [1, None]", None),  # ints are coerced, None is "no opinion"
    ]:
        result = pool.call(f"def r(completions, **kw):\n    {body}", "r", None, ["a", "b"])
        if message is None:
            assert result.ok and result.values == (1.0, None)
        else:
            assert not result.ok and message in result.error, (body, result)


def test_lru_eviction_keeps_at_most_max_workers():
    with SandboxPool(max_workers=2) as small:
        codes = [
            f"def r(completions, **kw):\n    return [{i}.0] * len(completions)" for i in range(3)
        ]
        for i, code in enumerate(codes):
            assert small.call(code, "r", None, ["x"]).values == (float(i),)
        assert len(small.worker_pids()) == 2
        assert small.call(codes[0], "r", None, ["x"]).values == (0.0,)  # reloaded on demand
    assert small.worker_pids() == []
    assert leftover_processes(small) == []
    with pytest.raises(RuntimeError, match="closed"):
        small.call(codes[0], "r", None, ["x"])


def test_a_prestarted_worker_serves_the_first_call():
    with SandboxPool() as pool:
        reward = SandboxedReward(LENGTH_REWARD, "length_reward", pool=pool)
        reward.prestart()
        (pid,) = pool.worker_pids()
        assert reward(prompts=None, completions=["a" * 50], answer=["1"]) == [0.5]
        assert pool.spawned_pids == [pid]  # the call found the worker started ahead
        reward.prestart()  # a live worker is kept, not replaced
        assert pool.spawned_pids == [pid]
    assert leftover_processes(pool) == []


def test_a_prestarted_worker_that_never_gets_ready_fails_the_first_call_only():
    with SandboxPool(startup_timeout_s=0.001) as pool:
        reward = SandboxedReward(LENGTH_REWARD, "length_reward", pool=pool)
        reward.prestart()  # returns at once, whatever the worker does next
        assert reward(prompts=None, completions=["a"], answer=["1"]) == [None]
        assert "failed to start" in reward.last_error
        assert leftover_processes(pool) == []
        pool.startup_timeout_s = 30.0
        assert reward(prompts=None, completions=["a" * 50], answer=["1"]) == [0.5]


def test_sandboxed_reward_contract_failures_and_pickling(pool):
    reward = SandboxedReward(HANG_ON_DEMAND, "hang_reward", pool=pool, timeout_s=0.5)
    assert reward.__name__ == "hang_reward"
    assert reward(prompts=None, completions=["a", "b"], answer=["1", "2"]) == [1.0, 1.0]
    assert reward(prompts=None, completions=["hang", "b"]) == [None, None]
    assert (reward.calls, reward.failures, reward.failure_rate) == (2, 1, 0.5)
    assert "timed out" in reward.last_error
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "hang_reward" and clone.pool is None and clone.calls == 2


def test_worker_runs_confined(pool):
    code = (
        "import os, resource\ndef r(completions, **kw):\n"
        "    return [float(os.getuid()), float(resource.getrlimit(resource.RLIMIT_NPROC)[0]),"
        " float(len(os.listdir('.')))]"
    )
    result = pool.call(code, "r", None, ["a", "b", "c"], restricted=False)
    assert result.ok, result.error
    uid, nproc, files = result.values
    assert nproc == 0.0 and files == 0.0  # no new processes; a fresh, empty working directory
    assert uid == (65534.0 if os.geteuid() == 0 else float(os.geteuid()))
    pool.discard(code, "r", restricted=False)


def test_trainer_state_and_log_callbacks_reach_the_reward_as_trl_passes_them(pool):
    """A dataclass ``trainer_state`` arrives as an attribute object; the log callbacks work."""
    from transformers import TrainerState

    code = (
        "def r(completions, trainer_state, log_metric, **kw):\n"
        "    log_metric('x', 1.0)\n"
        "    return [float(trainer_state.global_step)] * len(completions)\n"
    )
    state = TrainerState(global_step=7, max_steps=10)
    result = pool.call(code, "r", None, ["x"], trainer_state=state, log_metric=print)
    assert result.ok and result.values == (7.0,), result.error
