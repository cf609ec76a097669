"""The kernel layer of the sandbox: a seccomp-bpf system-call filter a worker installs on itself.

Every other OS layer answers a question about *what* a call touches (a path, a port, a uid);
this one decides which system calls a confined worker may make at all, in the kernel, whatever
the caller: Python, ``ctypes``, or machine code written into memory. It is built with libseccomp
(through ``pyseccomp``, never hand-assembled BPF) and installed as the last confinement step, so
the set-up calls before it (``unshare``, ``prctl``, ``setuid``, Landlock) need no exception.

Policy (see :data:`ALLOWED` and :data:`KILLED` for the lists and the reason for each class):

* **allowed**: what a reward needs after start-up, found by ``strace -f`` on workers running the
  sandbox and validation test suites: reads and writes on its pipes, the file calls Landlock
  governs (``openat``, ``newfstatat``, ``getdents64``, ``readlink``, ``unlinkat``...), memory
  management, futexes, clocks and sleeps, ``getrusage``, identity queries, ``getrandom``,
  handling of its own signals and exit. Four are allowed only in part (:data:`PARTIAL`):
  ``kill``/``tkill``/``tgkill`` to the worker itself (so ``raise()`` works), ``prlimit64`` to
  read its own limits, ``ioctl`` with the terminal query and fd-flag requests Python issues
  (``TCGETS``, ``FIONBIO``), ``fcntl`` without ``F_SETOWN``/``F_SETSIG`` (no SIGIO to others).
* **killed** (``SECCOMP_RET_KILL_PROCESS``: the parent sees the worker "killed by SIGSYS"): the
  named dangerous classes, which no reward has a reason to use, so a call to one is an escape in
  progress: exec of any kind, ``memfd_create``, sockets of every family (UNIX, netlink, packet,
  inet), new processes and threads (``clone``, ``clone3``, ``fork``, ``vfork``: the worker is
  single-threaded), namespaces, System V and POSIX IPC, ``ptrace`` and other processes' memory,
  ``prctl`` (no-new-privs and the parent-death signal are already set, and must stay so),
  mounts, ``bpf``, ``perf_event_open``, io_uring, keyrings, ``userfaultfd``, signals to other
  processes, credential changes and the administration calls (modules, kexec, clock, reboot).
* **everything else fails** with ``ENOSYS`` ("Function not implemented", an ``OSError`` in
  Python), not ``EPERM``: an unforeseen call from a legitimate reward fails cleanly, and the C
  library falls back from a newer call it does not know is filtered (``faccessat2``,
  ``statx``, ``close_range``) to the older one, as it does on an old kernel. ``ENOSYS`` also
  tells a reader that seccomp answered, not Landlock (``EACCES``) or file modes (``EPERM``).
* a foreign architecture (32-bit ``int 0x80`` calls from a 64-bit worker) kills the process.

What it does not stop: anything done with the allowed calls (reading what Landlock lets it read,
burning CPU and memory up to the rlimits), and kernel bugs reachable through them. Syscalls newer
than the installed libseccomp are not named in the filter and so fall under the default
(``ENOSYS``). The filter is inherited by nothing (the worker cannot start processes) and cannot
be removed; installing it needs ``no_new_privs`` (libseccomp sets it) or ``CAP_SYS_ADMIN``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import importlib
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: The errno every system call outside both lists fails with.
DENY_ERRNO = errno.ENOSYS
_TCGETS, _TIOCGWINSZ, _FIONREAD, _FIONBIO, _FIOCLEX, _FIONCLEX = (
    0x5401, 0x5413, 0x541B, 0x5421, 0x5451, 0x5450
)  # fmt: skip
#: fcntl commands on its own fds: F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC.
#: Not F_SETOWN/F_SETSIG, which would have the kernel signal another process (SIGIO).
_FCNTL_COMMANDS = (0, 1, 2, 3, 4, 1030)
#: Libraries pyseccomp looks up with ``ctypes.util.find_library``, which runs ``ldconfig -p`` in
#: a subprocess (~25 ms per worker); dlopen finds these standard sonames by itself.
_SONAMES = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}


@dataclass(frozen=True)
class SyscallClass:
    """A group of system calls with one action and the reason for it."""

    name: str
    syscalls: tuple[str, ...]
    why: str


ALLOWED: tuple[SyscallClass, ...] = (
    SyscallClass("files", (
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
        "preadv2", "pwritev2", "open", "openat", "openat2", "close", "close_range", "lseek",
        "fstat", "stat", "lstat", "newfstatat", "statx", "getdents", "getdents64", "readlink",
        "readlinkat", "getcwd", "access", "faccessat", "faccessat2", "dup", "dup2",
        "dup3", "ftruncate", "truncate", "fsync", "fdatasync", "mkdir", "mkdirat", "rmdir",
        "unlink", "unlinkat", "rename", "renameat", "renameat2",
    ), "the protocol pipes and the file calls whose paths Landlock governs"),
    SyscallClass("memory", ("brk", "mmap", "munmap", "mremap", "mprotect", "madvise"),
                 "the allocator (capped by RLIMIT_AS)"),
    SyscallClass("time", (
        "futex", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres",
        "gettimeofday", "time", "sched_yield", "select", "pselect6", "poll", "ppoll",
    ), "locks, clocks, sleeps and waiting on its own fds"),
    SyscallClass("identity", (
        "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
        "getresgid", "getgroups", "getpgrp", "getpgid", "getsid", "getrusage", "times", "uname",
        "sysinfo", "sched_getaffinity", "getcpu", "getrandom",
    ), "read-only queries about itself, and randomness"),
    SyscallClass("signals", (
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
        "exit", "exit_group",
    ), "handling its own signals, and exiting"),
)  # fmt: skip

KILLED: tuple[SyscallClass, ...] = (
    SyscallClass("exec", ("execve", "execveat"),
                 "running any other program, from a file or a memfd"),
    SyscallClass("memfd", ("memfd_create", "memfd_secret"),
                 "anonymous files: executable code outside every Landlock path"),
    SyscallClass("sockets", ("socket", "socketpair"),
                 "every socket family: UNIX (docker.sock, dbus, databases), netlink/netfilter, "
                 "packet, inet"),
    SyscallClass("processes", ("clone", "clone3", "fork", "vfork"),
                 "new processes and threads (the worker is single-threaded)"),
    SyscallClass("namespaces", ("unshare", "setns"),
                 "new user/network/mount namespaces: root inside them reaches kernel code "
                 "(netfilter, mounts) an unprivileged process cannot"),
    SyscallClass("ipc", (
        "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
        "semop", "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend",
        "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ), "System V and POSIX IPC objects shared with other processes"),
    SyscallClass("other-processes", (
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
        "pidfd_send_signal", "process_madvise", "process_mrelease", "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
    ), "reading, writing or signalling other processes (the parent trainer above all)"),
    SyscallClass("prctl", ("prctl", "personality"),
                 "clearing the parent-death signal (outliving a killed trainer), re-enabling "
                 "privileges, changing the execution domain"),
    SyscallClass("mounts", (
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
        "fsconfig", "fsmount", "fspick", "mount_setattr", "name_to_handle_at",
        "open_by_handle_at",
    ), "changing or escaping the file-system view"),
    SyscallClass("kernel-surface", (
        "bpf", "perf_event_open", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "userfaultfd", "keyctl", "add_key", "request_key", "fanotify_init",
    ), "kernel interfaces with a long record of privilege-escalation bugs"),
    SyscallClass("credentials", (
        "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
        "setfsgid", "setgroups", "capset",
    ), "changing identity or capabilities"),
    SyscallClass("administration", (
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
        "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "syslog", "quotactl",
        "quotactl_fd", "iopl", "ioperm", "vhangup",
    ), "system administration (needs privileges the worker does not have)"),
)  # fmt: skip

#: Calls allowed only with some arguments; the others are killed (signals) or denied.
PARTIAL = {
    "kill/tkill/tgkill": "only to the worker itself (raise()); to any other process: killed",
    "prlimit64": "only to read its own limits; setting one, or another process's: denied",
    "ioctl": "only TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX: denied otherwise",
    "fcntl": "only dup and fd/file flags; F_SETOWN/F_SETSIG (signals by SIGIO): denied",
}


def _load_pyseccomp() -> Any:
    """Import pyseccomp, resolving its two libraries by soname instead of running ldconfig."""
    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        soname = _SONAMES.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return original(name)

    ctypes.util.find_library = find_library
    try:
        return importlib.import_module("pyseccomp")
    finally:
        ctypes.util.find_library = original


class SeccompFilter:
    """A filter built for one process (:func:`build`), installed by :meth:`install`."""

    def __init__(self, lib: Any, handle: Any, unknown: list[str]) -> None:
        self._lib = lib
        self._handle = handle
        #: Names the installed libseccomp does not know for this architecture (not in the filter).
        self.unknown = unknown

    def install(self) -> None:
        """Load the filter into the kernel for this process; raises ``OSError`` when it cannot."""
        self._handle.load()

    def pseudo_code(self) -> str:
        """libseccomp's readable rendering of the filter (for debugging and tests)."""
        import tempfile

        with tempfile.TemporaryFile("w+") as out:
            self._handle.export_pfc(out)
            out.seek(0)
            return out.read()


def build(own_pid: int) -> SeccompFilter:
    """Build (not install) the filter for the process ``own_pid``.

    Raises ``OSError`` when libseccomp or pyseccomp is missing or rejects the filter.
    """
    try:
        lib = _load_pyseccomp()
    except (ImportError, RuntimeError) as exc:  # pyseccomp raises RuntimeError without the .so
        raise OSError(errno.ENOENT, f"libseccomp unavailable ({exc})") from None
    kill = _kill_action(lib)
    handle = lib.SyscallFilter(lib.ERRNO(DENY_ERRNO))
    handle.set_attr(lib.Attr.ACT_BADARCH, kill)
    unknown: list[str] = []

    def add(action: int, name: str, *args: Any) -> None:
        if lib.resolve_syscall(lib.Arch.NATIVE, name) < 0:
            unknown.append(name)  # not on this architecture, or newer than libseccomp
            return
        handle.add_rule(action, name, *args)

    for group in ALLOWED:
        for name in group.syscalls:
            add(lib.ALLOW, name)
    for group in KILLED:
        for name in group.syscalls:
            add(kill, name)
    for name in ("kill", "tkill", "tgkill"):  # the target is argument 0 of all three
        add(lib.ALLOW, name, lib.Arg(0, lib.EQ, own_pid))
        add(kill, name, lib.Arg(0, lib.NE, own_pid))
    for target in (0, own_pid):  # itself, and new_limit == NULL: a read
        add(lib.ALLOW, "prlimit64", lib.Arg(0, lib.EQ, target), lib.Arg(2, lib.EQ, 0))
    for request in (_TCGETS, _TIOCGWINSZ, _FIONREAD, _FIONBIO, _FIOCLEX, _FIONCLEX):
        add(lib.ALLOW, "ioctl", lib.Arg(1, lib.EQ, request))
    for command in _FCNTL_COMMANDS:
        add(lib.ALLOW, "fcntl", lib.Arg(1, lib.EQ, command))
    if unknown:
        logger.debug("seccomp: not in this libseccomp/architecture: %s", ", ".join(unknown))
    return SeccompFilter(lib, handle, unknown)


def _kill_action(lib: Any) -> int:
    """KILL_PROCESS where libseccomp and the kernel support it (Linux >= 4.14), else KILL.

    The worker is single-threaded, so killing its only thread ends the process just the same.
    """
    try:
        api = lib.get_api()
    except NotImplementedError:
        return lib.KILL
    return lib.KILL_PROCESS if api >= 3 else lib.KILL
