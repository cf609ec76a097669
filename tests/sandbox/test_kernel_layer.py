"""Evil tests for the kernel layer: escaped rewards attacking what the other OS layers leave open.

Every reward here runs with full builtins (``restricted=False``: a simulated language-layer
escape) and reaches the kernel through ``ctypes``. Each attack runs twice:

* with every layer on, where it must be stopped, and by seccomp: the worker is "killed by
  SIGSYS" (only a seccomp filter sends that on a system call);
* with ``skip_layers={"seccomp"}``, where the attacks of issue 9 (memfd exec, pathname UNIX
  sockets, user and network namespaces, netlink, SysV IPC, clearing the parent-death signal)
  must get through: the proof that seccomp is the only layer that stops them. For the other
  attacks the companion run only shows that seccomp answered first (no SIGSYS without it).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rewardsmith.sandbox import Limits
from rewardsmith.sandbox._confine import LAYER_NAMES, ORPHANED_EXIT
from rewardsmith.sandbox._process import WorkerProcess
from rewardsmith.sandbox.pool import SandboxPool

from .conftest import accept_once, leftover_processes

KILLED = "killed by SIGSYS"
MACHINE = platform.machine()
#: Numbers of the system calls glibc has no wrapper for, by architecture.
SYSCALLS = {
    "x86_64": {"execveat": 322, "bpf": 321, "perf_event_open": 298, "keyctl": 250},
    "aarch64": {"execveat": 281, "bpf": 280, "perf_event_open": 241, "keyctl": 219},
}
IO_URING_SETUP = 425  # the same on every architecture
pytestmark = pytest.mark.skipif(MACHINE not in SYSCALLS, reason=f"no syscall table for {MACHINE}")
NR = SYSCALLS.get(MACHINE, {})


def tiny_elf(exit_code: int) -> bytes:
    """A hand-made static x86_64 ELF executable of 132 bytes that calls exit_group(exit_code)."""
    base, header_size, phdr_size = 0x400000, 64, 56
    code = (
        b"\xbf" + struct.pack("<I", exit_code)  # mov edi, exit_code
        + b"\xb8\xe7\x00\x00\x00"  # mov eax, 231 (exit_group)
        + b"\x0f\x05"  # syscall
    )  # fmt: skip
    size = header_size + phdr_size + len(code)
    elf_header = struct.pack(
        "<4s5B7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, little-endian, SysV
        2, 0x3E, 1, base + header_size + phdr_size, header_size, 0,  # EXEC, x86_64, entry
        0, header_size, phdr_size, 1, 0, 0, 0,  # one program header, no sections
    )  # fmt: skip
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # PT_LOAD, R+X
    return elf_header + load + code


def reward(*body: str, prelude: str = "import ctypes, os, struct") -> str:
    """An escaped reward: ``libc`` and a ``fail(what)`` helper in scope, then ``body``."""
    lines = textwrap.indent("\n".join(body), "    ")
    return (
        f"{prelude}\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n\n"
        "def fail(what):\n"
        "    errno = ctypes.get_errno()\n"
        "    raise OSError(errno, what + ' failed: ' + os.strerror(errno))\n\n"
        f"def r(prompts, completions, **kwargs):\n{lines}\n"
    )  # fmt: skip


@dataclass(frozen=True)
class Attack:
    """An escaped reward, and what it achieves once seccomp is skipped.

    ``through``: ``"ok"`` when the reward completes (the attack worked), a text the error must
    contain when the attack works by replacing the worker (exec), or ``None`` when some other
    layer may stop it (then the companion run only checks that no SIGSYS was needed).
    """

    code: str
    through: str | None


ELF_EXIT_CODE = 42
ATTACKS = {
    "memfd_execveat": Attack(
        reward(
            "fd = libc.memfd_create(b'payload', 0)",
            "if fd < 0:",
            "    fail('memfd_create')",
            f"os.write(fd, bytes.fromhex('{tiny_elf(ELF_EXIT_CODE).hex()}'))",
            "argv = (ctypes.c_char_p * 2)(b'payload', None)",
            "envp = (ctypes.c_char_p * 1)(None)",
            f"libc.syscall({NR.get('execveat', -1)}, fd, b'', argv, envp, 0x1000)",  # EMPTY_PATH
            "fail('execveat')",
        ),
        f"exit code {ELF_EXIT_CODE}",
    ),
    "user_namespace": Attack(
        reward(
            "if libc.unshare(0x10000000) != 0:",
            "    fail('unshare(CLONE_NEWUSER)')",
            "return [1.0]",
        ),
        "ok",
    ),
    "network_namespace": Attack(
        reward(
            "if libc.unshare(0x10000000) != 0:",  # a user namespace grants CAP_SYS_ADMIN in it
            "    fail('unshare(CLONE_NEWUSER)')",
            "if libc.unshare(0x40000000) != 0:",
            "    fail('unshare(CLONE_NEWNET)')",
            "return [1.0]",
        ),
        "ok",
    ),
    "network_namespace_directly": Attack(  # without a user namespace: no CAP_SYS_ADMIN
        reward(
            "if libc.unshare(0x40000000) != 0:", "    fail('unshare(CLONE_NEWNET)')", "return [1.0]"
        ),
        None,
    ),
    "netlink_socket": Attack(
        reward(
            "fd = libc.socket(16, 3, 0)",  # AF_NETLINK, SOCK_RAW, NETLINK_ROUTE
            "if fd < 0:",
            "    fail('socket(AF_NETLINK)')",
            "return [1.0]",
        ),
        "ok",
    ),
    "sysv_ipc": Attack(
        reward(
            "queue = libc.msgget(0, 0o1600)",  # IPC_PRIVATE, IPC_CREAT | 0600
            "if queue < 0:",
            "    fail('msgget')",
            "segment = libc.shmget(0, 4096, 0o1600)",
            "if segment < 0:",
            "    fail('shmget')",
            "libc.msgctl(queue, 0, None)",  # IPC_RMID: leave nothing behind
            "libc.shmctl(segment, 0, None)",
            "return [1.0]",
        ),
        "ok",
    ),
    "clear_parent_death_signal": Attack(
        reward(
            "if libc.prctl(1, 0, 0, 0, 0) != 0:",  # PR_SET_PDEATHSIG, 0
            "    fail('prctl')",
            "sig = ctypes.c_int(-1)",
            "libc.prctl(2, ctypes.byref(sig), 0, 0, 0)",  # PR_GET_PDEATHSIG
            "return [float(sig.value)]",
        ),
        "ok",
    ),
    "ptrace_parent": Attack(  # SEIZE, not ATTACH: even if it worked, the parent would not stop
        reward("libc.ptrace(0x4206, os.getppid(), 0, 0)", "fail('ptrace(PTRACE_SEIZE)')"),
        None,
    ),
    "process_vm_readv_parent": Attack(
        reward(
            "buf = ctypes.create_string_buffer(8)",
            "local = struct.pack('=QQ', ctypes.addressof(buf), 8)",
            "remote = struct.pack('=QQ', 0x400000, 8)",
            "if libc.process_vm_readv(os.getppid(), local, 1, remote, 1, 0) < 0:",
            "    fail('process_vm_readv')",
            "return [1.0]",
        ),
        None,
    ),
    "io_uring_setup": Attack(
        reward(
            "params = ctypes.create_string_buffer(120)",
            f"if libc.syscall({IO_URING_SETUP}, 1, params) < 0:",
            "    fail('io_uring_setup')",
            "return [1.0]",
        ),
        None,
    ),
    "bpf": Attack(
        reward(
            "attr = ctypes.create_string_buffer(struct.pack('=IIII', 2, 4, 4, 1), 128)",  # ARRAY
            f"if libc.syscall({NR.get('bpf', -1)}, 0, attr, 128) < 0:",  # BPF_MAP_CREATE
            "    fail('bpf')",
            "return [1.0]",
        ),
        None,
    ),
    "perf_event_open": Attack(
        reward(
            "attr = ctypes.create_string_buffer(struct.pack('=IIQ', 1, 128, 0), 128)",  # SW clock
            f"if libc.syscall({NR.get('perf_event_open', -1)}, attr, 0, -1, -1, 0) < 0:",
            "    fail('perf_event_open')",
            "return [1.0]",
        ),
        None,
    ),
    "keyctl": Attack(
        reward(
            f"if libc.syscall({NR.get('keyctl', -1)}, 1, None) < 0:",  # JOIN_SESSION_KEYRING
            "    fail('keyctl')",
            "return [1.0]",
        ),
        None,
    ),
    "mount_tmpfs": Attack(
        reward(
            "if libc.mount(b'none', b'.', b'tmpfs', 0, None) != 0:",
            "    fail('mount')",
            "return [1.0]",
        ),
        None,
    ),
}


@pytest.fixture(scope="module")
def seccomp_active():
    """Skip when this machine cannot install the filter (no libseccomp, no seccomp)."""
    worker = WorkerProcess(Limits())
    try:
        layers, warnings = worker.layers, worker.warnings
    finally:
        worker.kill()
    if "seccomp" not in layers:
        pytest.skip(f"seccomp is not available here: {warnings}")
    return layers


@pytest.fixture(scope="module")
def bare_pool():
    """Every layer but seccomp."""
    with SandboxPool(max_workers=2, skip_layers={"seccomp"}) as pool:
        yield pool
    assert leftover_processes(pool) == []


def run(pool: SandboxPool, code: str, **kwargs):
    result = pool.call(code, "r", None, ["x"], restricted=False, timeout_s=5.0, **kwargs)
    pool.discard(code, "r", restricted=False)
    return result


@pytest.mark.parametrize("case", sorted(ATTACKS))
def test_seccomp_stops_the_attack(case, pool, seccomp_active):
    if case == "memfd_execveat" and MACHINE != "x86_64":
        pytest.skip("the embedded ELF is x86_64")
    result = run(pool, ATTACKS[case].code)
    assert not result.ok and result.crashed, result
    assert KILLED in result.error, result.error


@pytest.mark.parametrize("case", sorted(ATTACKS))
def test_without_seccomp_the_attack_gets_through(case, bare_pool, seccomp_active):
    if case == "memfd_execveat" and MACHINE != "x86_64":
        pytest.skip("the embedded ELF is x86_64")
    attack = ATTACKS[case]
    result = run(bare_pool, attack.code)
    assert KILLED not in (result.error or ""), result.error
    if attack.through == "ok":
        assert result.ok, result.error
    elif attack.through is not None:
        assert not result.ok and attack.through in result.error, result


def test_cleared_parent_death_signal_reads_back_as_zero(bare_pool, seccomp_active):
    result = run(bare_pool, ATTACKS["clear_parent_death_signal"].code)
    assert result.ok and result.values == (0.0,), result


#: Calls allowed only with some arguments: the other arguments fail with ENOSYS (no kill).
DENIED = {
    "fcntl_setown_parent": reward(  # the kernel would send SIGIO to the parent on input
        "if libc.fcntl(0, 8, os.getppid()) != 0:", "    fail('fcntl(F_SETOWN)')", "return [1.0]"
    ),
    "ioctl_tiocsti": reward(  # inject input into a terminal
        "if libc.ioctl(2, 0x5412, b'x') != 0:", "    fail('ioctl(TIOCSTI)')", "return [1.0]"
    ),
    "prlimit_of_parent": reward(
        "old = ctypes.create_string_buffer(16)",
        "if libc.prlimit(os.getppid(), 7, None, old) != 0:",  # RLIMIT_NOFILE
        "    fail('prlimit')",
        "return [1.0]",
    ),
}


@pytest.mark.parametrize("case", sorted(DENIED))
def test_seccomp_denies_unlisted_arguments(case, pool, seccomp_active):
    result = run(pool, DENIED[case])
    assert not result.ok and not result.crashed, result
    assert "Function not implemented" in result.error and "reward line" in result.error


# -- pathname UNIX sockets (docker.sock, dbus, a local database) --------------------------------


@pytest.fixture
def unix_listener():
    """A world-connectable UNIX socket in a world-searchable directory, as /run/dbus has."""
    directory = tempfile.mkdtemp(prefix="rewardsmith-unix-")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "service.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.settimeout(1.0)
    accepted: list[bool] = []
    thread = threading.Thread(target=lambda: accepted.append(accept_once(server)))
    thread.start()
    yield path, accepted, thread
    thread.join()
    server.close()
    os.unlink(path)
    os.rmdir(directory)


def _unix_connect(path: str) -> str:
    return reward(
        "fd = libc.socket(1, 1, 0)",  # AF_UNIX, SOCK_STREAM
        "if fd < 0:",
        "    fail('socket(AF_UNIX)')",
        f"addr = struct.pack('=H', 1) + {path.encode()!r} + bytes(1)",
        "if libc.connect(fd, addr, len(addr)) != 0:",
        "    fail('connect')",
        "return [1.0]",
    )


@pytest.mark.parametrize("layers", ["all", "without-seccomp"])
def test_pathname_unix_socket(layers, unix_listener, pool, bare_pool, seccomp_active):
    path, accepted, thread = unix_listener
    result = run(pool if layers == "all" else bare_pool, _unix_connect(path))
    thread.join()
    if layers == "all":
        assert KILLED in result.error, result
        assert accepted == [False]
    else:  # Landlock, the namespaces and nobody all let it through
        assert result.ok, result.error
        assert accepted == [True]


# -- SysV IPC objects of the host ------------------------------------------------------------------


@pytest.fixture
def host_queue():
    """A SysV message queue on the host, open to everyone (mode 0666), with a known key."""
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x52570000 + os.getpid() % 0xFFFF
    queue = libc.msgget(key, 0o1666)  # IPC_CREAT | 0666
    assert queue >= 0, os.strerror(ctypes.get_errno())
    yield key
    libc.msgctl(queue, 0, None)  # IPC_RMID


def test_host_sysv_queue(host_queue, pool, bare_pool, seccomp_active):
    code = reward(f"if libc.msgget({host_queue}, 0) < 0:", "    fail('msgget')", "return [1.0]")
    assert KILLED in run(pool, code).error
    without = run(bare_pool, code)
    if "ipcns" in seccomp_active:  # a private IPC namespace hides the host's objects too
        assert not without.ok and "No such file or directory" in without.error, without
    else:
        assert without.ok, without.error


# -- a worker outliving a killed trainer -----------------------------------------------------------

_TRAINER = """
import json, sys, threading, time
from rewardsmith.sandbox.pool import SandboxPool

code = sys.stdin.read()
pool = SandboxPool(max_workers=1, skip_layers=[s for s in sys.argv[1].split(",") if s])
first = pool.call(code, "r", None, ["x"], restricted=False, timeout_s=10)
if first.ok:  # now keep the worker busy in a long call while this process is killed
    threading.Thread(target=pool.call, args=(code, "r", None, ["x"]), daemon=True,
                     kwargs={"restricted": False, "timeout_s": 60, "sleep": [1]}).start()
    time.sleep(0.5)
print(json.dumps({"pids": pool.spawned_pids, "ok": first.ok, "error": first.error}), flush=True)
time.sleep(120)
"""


def _sleeper(clear_parent_death_signal: bool) -> str:
    """A reward that first (maybe) clears its parent-death signal, then sleeps on demand."""
    return reward(
        "libc.prctl(1, 0, 0, 0, 0)" if clear_parent_death_signal else "pass",  # PDEATHSIG = 0
        "if kwargs.get('sleep'):",
        "    time.sleep(30)",
        "return [0.0]",
        prelude="import ctypes, os, struct, time",
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _killed_trainer(skip: str, code: str) -> dict:
    """Run a trainer process that starts a worker running ``code``, then SIGKILL it."""
    trainer = subprocess.Popen(
        [sys.executable, "-c", _TRAINER, skip], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    trainer.stdin.write(code)
    trainer.stdin.close()
    report = json.loads(trainer.stdout.readline())
    trainer.kill()
    trainer.wait()
    trainer.stdout.close()
    return report


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.timeout(60)
def test_worker_dies_with_a_killed_trainer(seccomp_active):
    report = _killed_trainer("", _sleeper(clear_parent_death_signal=False))
    assert report["ok"], report  # the worker was sleeping in a call when its parent died
    assert _gone_within(report["pids"], 5.0)  # the parent-death signal


@pytest.mark.timeout(60)
def test_clearing_the_parent_death_signal_is_fatal(seccomp_active):
    report = _killed_trainer("", _sleeper(clear_parent_death_signal=True))
    assert not report["ok"] and KILLED in report["error"], report
    assert _gone_within(report["pids"], 5.0)


@pytest.mark.timeout(60)
def test_without_seccomp_a_worker_outlives_a_killed_trainer(seccomp_active):
    report = _killed_trainer("seccomp", _sleeper(clear_parent_death_signal=True))
    assert report["ok"], report  # the parent-death signal was cleared
    worker = report["pids"][0]
    try:
        time.sleep(2)
        assert _alive(worker), "the worker died with its parent although pdeathsig was cleared"
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_worker_whose_parent_already_died_exits_at_once(tmp_path):
    """The race: a parent that died before PR_SET_PDEATHSIG was armed is caught by getppid()."""
    others = sorted(set(LAYER_NAMES) - {"pdeathsig"})
    script = (
        "from rewardsmith.sandbox._confine import Limits, confine\n"
        f"confine({str(tmp_path)!r}, [], Limits(), frozenset({others!r}), parent_pid=1)\n"
        "print('still running')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == ORPHANED_EXIT and "still running" not in result.stdout, result


def test_without_libseccomp_the_worker_warns_and_runs(tmp_path):
    others = sorted(set(LAYER_NAMES) - {"seccomp"})
    script = (
        "import ctypes.util, json\n"
        "from rewardsmith.sandbox import _seccomp\n"
        "from rewardsmith.sandbox._confine import Limits, confine\n"
        "_seccomp._SONAMES.clear()\n"
        "ctypes.util.find_library = lambda name: None  # as on a host without libseccomp\n"
        f"print(json.dumps(confine({str(tmp_path)!r}, [], Limits(), frozenset({others!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    applied, warnings = json.loads(done.stdout)
    assert applied == [] and len(warnings) == 1, (applied, warnings)
    assert warnings[0].startswith("no seccomp: ") and "libseccomp" in warnings[0]


# -- a non-root worker: namespaces through a user namespace ----------------------------------------

_NON_ROOT_WORKER = """
import ctypes, json, os, sys
from rewardsmith.sandbox import _seccomp
from rewardsmith.sandbox._confine import Limits, confine

_seccomp._load_pyseccomp()  # the interpreter's own files are unreadable once not root
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, as for a process never root
applied, warnings = confine(sys.argv[1], [], Limits(), frozenset(sys.argv[2:]))
capable = None  # with seccomp, sethostname would be fatal; without, it needs CAP_SYS_ADMIN
if "seccomp" not in applied:
    capable = ctypes.CDLL(None).sethostname(b"x", 1) == 0
print(json.dumps({"applied": applied, "warnings": warnings, "uid": os.getuid(),
                  "host": os.uname().nodename, "capable": capable}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="simulates a non-root worker by dropping root")
@pytest.mark.parametrize("skip", [(), ("seccomp",)], ids=["all-layers", "without-seccomp"])
def test_non_root_worker_gets_namespaces_through_a_user_namespace(skip):
    workdir = tempfile.mkdtemp(prefix="rewardsmith-nonroot-")
    os.chown(workdir, 65534, 65534)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _NON_ROOT_WORKER, workdir, *skip],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.rmdir(workdir)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    if "userns" not in report["applied"]:
        pytest.skip(f"no unprivileged user namespaces here: {report['warnings']}")
    assert {"netns", "ipcns", "utsns", "mntns", "pidns"} <= set(report["applied"]), report
    assert ("seccomp" in report["applied"]) == (not skip), report
    assert report["uid"] == 65534 and report["host"] == "sandbox", report
    assert report["capable"] is (None if not skip else False), "capabilities were not dropped"
    assert any("not root" in warning for warning in report["warnings"]), report


# -- legitimate rewards are never killed ---------------------------------------------------------

LEGITIMATE_RESTRICTED = """
import bisect, cmath, collections, decimal, difflib, fractions, functools, heapq, itertools
import json, math, operator, random, re, statistics, string, typing, unicodedata

def everyday_reward(prompts, completions, answer, **kwargs):
    scores = []
    for completion, gold in zip(completions, answer):
        text = unicodedata.normalize("NFKC", completion)
        numbers = [decimal.Decimal(n) for n in re.findall(r"-?\\d+(?:\\.\\d+)?", text)]
        guess = float(numbers[-1]) if numbers else None
        score = 1.0 if guess is not None and math.isclose(guess, float(gold)) else 0.0
        score += difflib.SequenceMatcher(None, text, str(gold)).ratio() / 10
        score += float(fractions.Fraction(1, 4)) * (len(json.loads(json.dumps(text))) > 0)
        counts = collections.Counter(text.split())
        score += statistics.mean([1, 2, 3]) / 100 + abs(cmath.sqrt(-1)) / 100
        score += len(heapq.nlargest(2, [3, 1, 2])) / 100 + bisect.bisect([1, 2], 1) / 100
        score += len(list(itertools.islice(counts, 3))) / 1000 + random.Random(0).random() / 1000
        try:
            int("not a number")
        except ValueError:
            score += 0.001
        big = [0] * 2_000_000
        scores.append(score + len(big) * 0)
    return scores
"""
LEGITIMATE_ESCAPED = reward(
    "got = []",
    "signal.signal(signal.SIGUSR1, lambda *args: got.append(1))",
    "signal.raise_signal(signal.SIGUSR1)",  # a signal to itself is fine
    "time.sleep(0.01)",
    "random.SystemRandom().random()",  # getrandom
    "resource.getrlimit(resource.RLIMIT_AS)",  # prlimit64, reading
    "os.urandom(8)",
    "try:",
    "    bytearray(4 * 1024 ** 3)",  # over RLIMIT_AS: a MemoryError, not a kill
    "except MemoryError:",
    "    got.append(2)",
    "return [float(sum(got))]",
    prelude="import ctypes, os, random, resource, signal, struct, time",
)


def test_legitimate_rewards_run_under_every_layer(pool, seccomp_active):
    result = pool.call(LEGITIMATE_RESTRICTED, "everyday_reward", None, ["x 42", "y 7.5"],
                       answer=["42", "3"])  # fmt: skip
    assert result.ok, result.error
    assert result.values[0] > 1.0 > result.values[1] > 0.0
    assert run(pool, LEGITIMATE_ESCAPED).values == (3.0,)
