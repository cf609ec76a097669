"""Hostile reward programs: each must be contained (rejected or failed) with no side effect.

Two layers are attacked. ``HOSTILE`` goes through the full validation pipeline, as an LLM's
candidate would. ``ESCAPED`` simulates a successful language-level escape by loading code with
full builtins (``restricted=False``) inside the same confined worker, to show that the OS layer
alone still contains file access, secrets, network, processes and signals; each escape runs
again without the seccomp filter, to show which layer below it still holds (the attacks only
seccomp stops are in ``test_kernel_layer.py``).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from rewardsmith.rewards.validation import validate_reward_code
from rewardsmith.sandbox._process import WorkerProcess
from rewardsmith.sandbox.pool import SandboxPool

from .conftest import accept_once, leftover_processes

RET = "return [0.0] * len(completions)"


def _prog(prelude: str, *body: str) -> str:
    """A reward module: ``prelude`` at the top, then ``r`` with ``body`` lines."""
    lines = "".join(f"    {line}\n" for line in body)
    return f"{prelude}\ndef r(prompts, completions, answer, **kwargs):\n{lines}"


HOSTILE = {
    "open_secret_file": _prog("", "return [float(len(open('SECRET_FILE').read()))]"),
    "write_file_outside_tmp": _prog("", "open('MARKER', 'w').write('x')", RET),
    "import_os_environ": _prog("import os", "raise ValueError(os.environ['SECRET_ENV'])"),
    "dunder_import": _prog("", "__import__('os').system('touch MARKER')", RET),
    "builtins_dict_import": _prog("", "b = __builtins__", RET),
    "subclasses_escape": _prog("", "s = ().__class__.__base__.__subclasses__()", RET),
    "globals_escape": _prog("", "g = r.__globals__", RET),
    "getattr_dunder": _prog("", "g = getattr(r, '__glob' + 'als__')", RET),
    "format_string_attribute": _prog("", "s = '{0.__class__.__base__}'.format(1)", RET),
    "format_map_attribute": _prog("", "s = '{x.__class__}'.format_map({'x': 1})", RET),
    "string_formatter": _prog(
        "import string", "s = string.Formatter().format('{0.__class__}', 1)", RET
    ),
    "exec_builtin": _prog("", "exec('import os')", RET),
    "eval_builtin": _prog("", "return [eval('1.0')] * len(completions)"),
    "compile_builtin": _prog("", "c = compile('1', 'x', 'eval')", RET),
    "socket_connect": _prog("import socket", "socket.create_connection(('127.0.0.1', 9))", RET),
    "signal_parent": _prog("import signal", "signal.raise_signal(9)", RET),
    "os_fork": _prog("import os", "os.fork()", RET),
    "subprocess_run": _prog("import subprocess", "subprocess.run(['touch', 'MARKER'])", RET),
    "sys_modules": _prog("import sys", "os = sys.modules['os']", RET),
    "module_view_sys": _prog("import fractions", "m = fractions.sys.modules", RET),
    "operator_attrgetter": _prog("import operator", "f = operator.attrgetter('__class__')", RET),
    "typing_string_eval": _prog("import typing", "h = typing.get_type_hints(r)", RET),
    "type_builtin": _prog("", "t = type(completions)", RET),
    "generator_frame": _prog("", "g = (x for x in [1])", "f = g.gi_frame.f_back", RET),
    "traceback_frame": _prog(
        "", "try:", "    1 / 0", "except ZeroDivisionError as e:", "    f = e.__traceback__", RET
    ),
    "globals_builtin": _prog("", "g = globals()", RET),
    "infinite_loop_in_call": _prog("", "while True:", "    pass"),
    "infinite_loop_at_import": _prog("while True:\n    pass", RET),
    "catastrophic_regex": _prog("import re", "re.match(r'(a+)+$', 'a' * 64 + 'b')", RET),
    "memory_bomb_list": _prog("", "x = [0] * (10 ** 10)", RET),
    "memory_bomb_doubling": _prog("", "s = 'x'", "while True:", "    s = s + s"),
    "deep_recursion": _prog("def f(n):\n    return f(n + 1)", "return [f(0)] * len(completions)"),
    "huge_output": _prog("", "return [0.0] * 10_000_000"),
    "huge_string_output": _prog("", "return 'x' * 50_000_000"),
    "mutate_inputs": _prog("", "completions.clear()", "answer[0] = 'hacked'", RET),
    "decimal_context_write": _prog("import decimal", "decimal.getcontext().prec = 1", RET),
    "nan_values": _prog("", "return [float('nan')] * len(completions)"),
    "bool_values": _prog("", "return [True] * len(completions)"),
}


def _fill(code: str, ctx: dict[str, str]) -> str:
    return (
        code.replace("SECRET_FILE", ctx["secret_file"])
        .replace("SECRET_ENV", "REWARDSMITH_TEST_API_KEY")
        .replace("MARKER", ctx["marker"])
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_program_is_rejected_without_side_effects(case, pool, no_side_effects):
    start = time.monotonic()
    verdict = validate_reward_code(_fill(HOSTILE[case], no_side_effects), pool=pool, timeout_s=1.0)
    assert not verdict.accepted, verdict
    assert verdict.stage in ("restrict", "load", "probe"), verdict
    assert no_side_effects["secret"] not in verdict.reason
    assert time.monotonic() - start < 30


KILLED = "killed by SIGSYS"  # seccomp (tests/sandbox/test_kernel_layer.py) answered
#: name: (program, the error with every layer, the error with every layer but seccomp)
ESCAPED = {
    "read_world_readable_secret": (
        _prog("", "return [float(len(open('SECRET_FILE').read()))]"),
        "PermissionError",  # Landlock
        "PermissionError",
    ),
    "read_parent_environ": (
        _prog("", "return [float(len(open('/proc/PARENT/environ').read()))]"),
        "PermissionError",  # Landlock
        "PermissionError",
    ),
    "write_tmp_file": (
        _prog("", "open('MARKER', 'w').write('x')", RET),
        "PermissionError",  # Landlock
        "PermissionError",
    ),
    "fork": (_prog("import os", "os.fork()", RET), KILLED, "BlockingIOError"),  # RLIMIT_NPROC
    "posix_spawn": (
        _prog("import os", "os.posix_spawn('/bin/touch', ['touch', 'MARKER'], {})", RET),
        KILLED,
        "Error",  # RLIMIT_NPROC
    ),
    "exec_binary": (
        _prog("import os", "os.execv('/bin/sh', ['sh', '-c', 'touch MARKER'])"),
        KILLED,
        "PermissionError",  # Landlock: no execute right anywhere
    ),
    "signal_parent": (
        _prog("import os, signal", "os.kill(PARENT, signal.SIGUSR1)", RET),
        KILLED,
        "PermissionError",  # Landlock's signal scope, file modes as nobody
    ),
    "thread": (
        _prog("import _thread", "_thread.start_new_thread(print, ())", RET),
        KILLED,
        "RuntimeError",  # RLIMIT_NPROC: can't start new thread
    ),
    "chmod_unlisted_syscall": (
        _prog("import os", "os.chmod('.', 0o777)", RET),
        "Function not implemented",  # not on seccomp's allow-list: ENOSYS, the worker lives on
        None,  # nothing else forbids changing the mode of its own directory
    ),
}


@pytest.fixture(scope="module")
def pool_without_seccomp():
    """Every OS layer but the kernel one, to show what the others still stop alone."""
    with SandboxPool(max_workers=2, skip_layers={"seccomp"}) as pool:
        yield pool
    assert leftover_processes(pool) == []


@pytest.fixture
def sigusr1_spy():
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append(True))
    yield received
    signal.signal(signal.SIGUSR1, previous)


_LAYERS: dict[int, tuple[str, ...]] = {}


def _layers(pool: SandboxPool) -> tuple[str, ...]:
    """The layers a worker of ``pool`` applies on this machine (asked once per pool)."""
    if id(pool) not in _LAYERS:
        worker = WorkerProcess(pool.limits, skip_layers=pool.skip_layers)
        _LAYERS[id(pool)] = worker.layers
        worker.kill()
    return _LAYERS[id(pool)]


def _check_contained(result, error: str | None, secret: str) -> None:
    if error is None:
        assert result.ok, result.error
        return
    assert not result.ok and not result.timed_out, result
    assert error in result.error, result.error
    if error == KILLED:
        assert result.crashed
    else:  # the call failed inside the reward, and the worker survived it
        assert "reward line" in result.error, result.error
    assert secret not in result.error


@pytest.mark.parametrize("case", sorted(ESCAPED))
def test_os_layer_contains_an_escape(case, pool, no_side_effects, sigusr1_spy):
    program, error, _ = ESCAPED[case]
    code = _fill(program, no_side_effects).replace("PARENT", str(os.getpid()))
    result = pool.call(code, "r", None, ["x"], answer=["1"], timeout_s=2.0, restricted=False)
    pool.discard(code, "r", restricted=False)
    if "seccomp" not in _layers(pool):
        error = ESCAPED[case][2]  # no seccomp on this machine: the layers below must hold
    _check_contained(result, error, no_side_effects["secret"])
    assert sigusr1_spy == []


@pytest.mark.parametrize("case", sorted(ESCAPED))
def test_layers_below_seccomp_still_contain_an_escape(
    case, pool_without_seccomp, no_side_effects, sigusr1_spy
):
    program, _, error = ESCAPED[case]
    code = _fill(program, no_side_effects).replace("PARENT", str(os.getpid()))
    pool = pool_without_seccomp
    result = pool.call(code, "r", None, ["x"], answer=["1"], timeout_s=2.0, restricted=False)
    pool.discard(code, "r", restricted=False)
    _check_contained(result, error, no_side_effects["secret"])
    assert sigusr1_spy == []


def test_os_layer_scrubs_the_environment(pool, no_side_effects):
    code = (
        "import os\ndef r(completions, **kw):\n"
        "    leaked = any('sk-test' in v for v in os.environ.values())\n"
        "    return [float(leaked), float(len(os.environ))]"
    )
    result = pool.call(code, "r", None, ["a", "b"], answer=["1", "2"], restricted=False)
    assert result.ok, result.error
    assert result.values[0] == 0.0  # no secret
    assert result.values[1] <= 8  # only the handful of variables the pool sets
    pool.discard(code, "r", restricted=False)


@pytest.mark.parametrize("seccomp", [True, False], ids=["all-layers", "without-seccomp"])
def test_os_layer_blocks_network(seccomp, pool, pool_without_seccomp, no_side_effects):
    """Even with raw libc calls (no ``socket`` module needed), a connection never arrives.

    With every layer the ``socket`` call itself is fatal (seccomp); without seccomp, Landlock's
    TCP rules (ABI >= 4) and the network namespace (root) still refuse the connection.
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(accept_once(server)))
    thread.start()
    code = _prog(
        "import ctypes, struct",
        "libc = ctypes.CDLL(None, use_errno=True)",
        "fd = libc.socket(2, 1, 0)",  # AF_INET, SOCK_STREAM
        f"addr = struct.pack('=H', 2) + struct.pack('!H', {port})",
        "addr = addr + bytes([127, 0, 0, 1]) + bytes(8)",
        "rc = libc.connect(fd, addr, len(addr))",
        "if rc != 0:",
        "    raise OSError(ctypes.get_errno(), 'connect failed')",
        "return [1.0] * len(completions)",
    )
    used = pool if seccomp else pool_without_seccomp
    result = used.call(code, "r", None, ["a"], answer=["1"], restricted=False, timeout_s=3.0)
    thread.join()
    server.close()
    used.discard(code, "r", restricted=False)
    expected = KILLED if seccomp and "seccomp" in _layers(pool) else "connect failed"
    assert not result.ok and expected in result.error, result
    assert accepted == [False]
