"""The parent layer: a compromised worker cannot crash, confuse or stall the trusted process.

Each forged-reply case is a reward loaded with full builtins (``restricted=False``, a simulated
language-layer escape) that writes raw bytes on the worker's reply pipe, as escaped code could.
The parent must count the call as failed, kill that worker and carry on with a fresh one; no
exception may reach the caller. The other tests show that untrusted source is never parsed in
the parent and that error text reaches logs and terminals without control sequences.
"""

from __future__ import annotations

import ast
import builtins
import json

import pytest

from rewardsmith.generators.parsing import parse_reply
from rewardsmith.rewards.validation import validate_reward_code
from rewardsmith.sandbox import SandboxedReward

from .conftest import leftover_processes

# Finds the reply pipe (the worker's only write-only FIFO besides stdout/stderr, which point
# elsewhere), reads the sequence number of the request being served from the worker's own
# frame, and writes FRAME (an expression over ``seq``) on it before returning normally.
FORGER = """
import fcntl, json, os, stat, struct, sys, time

def _reply_fd():
    for fd in range(3, 64):
        try:
            mode = os.fstat(fd).st_mode
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if stat.S_ISFIFO(mode) and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no reply pipe")

def frame(body):
    return struct.pack(">I", len(body)) + body

def forger(prompts, completions, **kwargs):
    seq = sys._getframe(1).f_locals["request"]["seq"]
    payload = FRAME
    if not isinstance(payload, bytes):  # an object to send as one well-framed JSON reply
        payload = frame(json.dumps(payload).encode())
    os.write(_reply_fd(), payload)
    if kwargs.get("linger"):
        time.sleep(0.3)  # let the parent take the forged frame before the real reply follows
    return [1.0] * len(completions)
"""

FORGED = {  # case: the FRAME expression (an object is sent as JSON; bytes are sent raw)
    "non_numeric_field": '{"op": "call", "seq": seq, "ok": True, "values": [1.0], "cpu_s": "x"}',
    "deeply_nested": 'frame(b\'{"op": "call", "seq": \' + str(seq).encode()'
    " + b', \"values\": ' + b'[' * 100000 + b']' * 100000 + b'}')",
    "nested_value": '{"op": "call", "seq": seq, "ok": True, "values": [[1.0]]}',
    "oversized": "struct.pack('>I', 1 << 30)",
    "not_json": "frame(b'\\xff\\xfe not json')",
    "not_an_object": "[1.0, 2.0]",
    "stale_sequence": '{"op": "call", "seq": seq - 1, "ok": True, "values": [1.0]}',
    "future_sequence": '{"op": "call", "seq": seq + 1, "ok": True, "values": [1.0]}',
    "wrong_op": '{"op": "load", "seq": seq, "ok": True}',
    "unknown_field": '{"op": "call", "seq": seq, "ok": True, "values": [1.0], "pickle": "x"}',
    "bool_value": '{"op": "call", "seq": seq, "ok": True, "values": [True]}',
    "huge_error": '{"op": "call", "seq": seq, "ok": False, "error": "x" * 100000}',
    "two_replies": '{"op": "call", "seq": seq, "ok": True, "values": [5.0]}',
    "two_frames_at_once": "frame(json.dumps({'op': 'call', 'seq': seq, 'ok': True,"
    " 'values': [5.0]}).encode()) * 2",
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_reply_fails_the_call_and_replaces_the_worker(case, pool):
    code = FORGER.replace("FRAME", FORGED[case])
    reward = SandboxedReward(code, "forger", pool=pool, timeout_s=3.0)
    reward.restricted = False  # simulate the escape (see SandboxedReward.restricted)
    first_pids = set(pool.worker_pids())
    linger = case == "two_replies"
    values = reward(prompts=None, completions=["a"], answer=["1"], linger=[linger])
    if linger:
        # The forged frame looks like a valid reply and is taken for this call; the worker's
        # own reply then sits in the pipe and is caught as out of sequence on the next call.
        assert values == [5.0]
        values = reward(prompts=None, completions=["a"], answer=["1"])
    assert values == [None], (case, reward.last_error)
    assert reward.failures == 1 and reward.last_result.crashed
    assert "protocol" in reward.last_error or "crashed" in reward.last_error, reward.last_error
    assert leftover_processes(pool) == []
    assert set(pool.worker_pids()) <= first_pids | set(pool.spawned_pids)
    good = "def good(completions, **kw):\n    return [2.0] * len(completions)\n"
    assert pool.call(good, "good", None, ["a"]).values == (2.0,)  # the pool still serves
    pool.discard(code, "forger", restricted=False)


def test_garbage_header_from_a_dead_worker_is_a_crash_not_an_exception(pool):
    code = FORGER.replace("FRAME", "b'x'") + "\nimport os as _os\n"
    result = pool.call(code, "forger", None, ["a"], restricted=False, timeout_s=2.0)
    assert not result.ok and result.crashed


def test_validation_never_parses_or_compiles_in_the_parent(pool, monkeypatch):
    """Spies on every parser and compiler entry point of this process see no untrusted text."""
    import RestrictedPython

    marker = "UNTRUSTED_MARKER"
    seen: list[str] = []

    def spy(real):
        def wrapper(source, *args, **kwargs):
            text = source.decode(errors="replace") if isinstance(source, bytes) else source
            if isinstance(text, str) and marker in text:
                seen.append(real.__name__)
            return real(source, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(ast, "parse", spy(ast.parse))
    monkeypatch.setattr(builtins, "compile", spy(builtins.compile))
    monkeypatch.setattr(
        RestrictedPython, "compile_restricted_exec", spy(RestrictedPython.compile_restricted_exec)
    )
    good = (
        f"# {marker}\ndef r(prompts, completions, answer, **kw):\n    return [1.0] * len(answer)\n"
    )
    accepted = validate_reward_code(good, pool=pool)
    bad = validate_reward_code(f"# {marker}\ndef r(:\n", pool=pool)
    reply = (
        f"```python\n# {marker}\ndef units_reward(prompts, completions, **kw):\n    return []\n```"
    )
    names = [c.name for c in parse_reply(reply, round=1, generator="t").candidates]
    monkeypatch.undo()
    assert seen == []
    assert accepted.accepted, accepted
    assert (bad.accepted, bad.stage) == (False, "parse") and "line 2" in bad.reason, bad
    assert names == ["units_reward"]


def test_source_that_breaks_the_compiler_is_a_rejection(pool):
    """300 additions overflow RestrictedPython's recursive transformer: a rejection, no crash."""
    code = "def r(completions, **kw):\n    x = " + "+".join(["1"] * 300) + "\n    return [x]\n"
    verdict = validate_reward_code(code, pool=pool, timeout_s=5.0)
    assert verdict.stage in ("restrict", "accepted", "probe"), verdict
    deep = "def r(completions, **kw):\n    return [" + "(" * 5000 + "1" + ")" * 5000 + "]\n"
    verdict = validate_reward_code(deep, pool=pool)
    assert (verdict.accepted, verdict.stage) == (False, "parse"), verdict


def test_validate_cli_survives_compiler_recursion(tmp_path):
    from tests.conftest import run_cli

    path = tmp_path / "sum.py"
    path.write_text(
        "def r(completions, **kw):\n    x = " + "+".join(["1"] * 3000) + "\n    return [x]\n"
    )
    out = run_cli("validate", str(path), "--json", timeout=120)
    assert out.returncode in (0, 1), out.stderr
    verdict = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Traceback" not in out.stderr and verdict["stage"] in ("restrict", "parse", "accepted")


def test_error_text_is_stripped_of_control_sequences(pool, caplog):
    code = (
        "def r(completions, **kw):\n"
        "    raise ValueError('\\x1b[2J\\x1b[31mred\\x1b]0;title\\x07\\nWARNING forged\\u202e')\n"
    )
    reward = SandboxedReward(code, "r", pool=pool)
    with caplog.at_level("WARNING"):
        assert reward(prompts=None, completions=["a"]) == [None]
    for text in (reward.last_error, caplog.text):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert reward.last_error.startswith("WARNING forged")  # the exception's last line, cleaned
    verdict = validate_reward_code(code.replace("def r(", "def rr("), pool=pool)
    assert "\x1b" not in verdict.reason and not verdict.accepted


def test_too_slow_reward_is_rejected_with_its_cost(pool):
    code = (
        "def slow_reward(prompts, completions, **kw):\n"
        "    for _ in completions:\n"
        "        i = 0\n"
        "        while i < 1_000_000:\n"
        "            i = i + 1\n"
        "    return [float(len(c[0]['content']) % 5) for c in completions]\n"
    )
    verdict = validate_reward_code(code, pool=pool, timeout_s=10.0)
    assert (verdict.accepted, verdict.stage) == (False, "probe"), verdict
    assert "too slow" in verdict.reason and "s of CPU per call" in verdict.reason


def test_repeated_timeouts_disable_the_reward(pool):
    """Counters live with the reward: a fresh worker after each timeout does not reset them."""
    code = (
        "_calls = [0]\n"
        "def hang_later(completions, **kw):\n"
        "    _calls[0] = _calls[0] + 1\n"
        "    while _calls[0] > 1:\n"
        "        pass\n"
        "    return [1.0] * len(completions)\n"
    )
    reward = SandboxedReward(code, "hang_later", pool=pool, timeout_s=0.3, max_timeouts=2)
    results = [reward(prompts=None, completions=["a"]) for _ in range(6)]
    assert results[0] == [1.0]
    # ok, timeout, ok (a fresh worker forgot the count), timeout -> disabled, disabled x2
    assert [r == [1.0] for r in results] == [True, False, True, False, False, False]
    assert reward.timeouts == 2 and reward.failures == 4
    assert "disabled after 2 timeouts" in reward.last_error
    assert reward.last_result.duration_s < 0.1  # no worker is started once disabled
