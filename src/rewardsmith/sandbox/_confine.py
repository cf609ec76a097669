"""The OS layer of the sandbox, applied by a worker to itself before it loads untrusted code.

Layers, in the order a worker applies them; each is applied when the kernel and privileges
allow, and reported either way (applied, or a warning saying what is missing):

* ``seccomp`` is *built* first (libseccomp must be loaded before Landlock hides it) and
  *installed* last; see :mod:`._seccomp`. Stops: exec (memfd included), sockets of every family,
  new processes, threads and namespaces, SysV/POSIX IPC, ptrace and other processes' memory,
  ``prctl`` (so the parent-death signal cannot be cleared), mounts, bpf, perf, io_uring, keyrings.
* namespaces: as root, one call each for ``netns`` (no interface but a down loopback: no
  network, no abstract UNIX sockets of the host), ``ipcns`` (no SysV IPC object or POSIX message
  queue of the host), ``utsns`` (host name ``sandbox``), ``mntns`` (a private copy of the mount
  table, mount events do not propagate either way) and ``pidns`` (children, which the worker
  cannot create, would not see host processes; the worker itself stays in the host namespace,
  so this one is defence in depth only). As non-root they are created inside a new user
  namespace (``userns``), after which every capability is dropped; without one, a warning says
  why. Namespaces do not cover pathname UNIX sockets (they are files) or ``/proc`` reads (Landlock).
* ``landlock`` (Linux >= 5.13): reads only beneath the Python installation and the worker's temp
  dir, writes/creates/deletes only beneath the temp dir, no ``execve`` of files; from ABI 4 no TCP
  bind/connect; from ABI 6 no signals to, or abstract sockets of, processes outside the sandbox.
  It does not govern ``connect`` to pathname UNIX sockets nor exec of a memfd (seccomp does).
* ``nobody``: privilege drop to uid/gid 65534 when started as root (so ``NPROC`` and file modes
  apply, and every capability is gone).
* ``no-new-privs`` (``PR_SET_NO_NEW_PRIVS``) and ``pdeathsig`` (SIGKILL when the parent dies;
  right after setting it the worker checks that its parent is still the expected one and exits
  at once if not, closing the race with a parent that died before the signal was armed).
* ``rlimits``: address space, CPU seconds, file size, open files, no new processes (``NPROC``
  0), no core dumps.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass

from rewardsmith.sandbox import _seccomp

NOBODY_ID = 65534
#: Exit status of a worker whose parent died before its parent-death signal was armed.
ORPHANED_EXIT = 75
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
_CLONE_NEWUSER, _CLONE_NEWPID, _CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_MS_REC, _MS_PRIVATE = 1 << 14, 1 << 18
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
#: Write-like file-system rights by the Landlock ABI that introduced them.
_FS_WRITE_BY_ABI = {1: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)), 2: 1 << 13,
                    3: 1 << 14, 5: 1 << 15}  # fmt: skip
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

#: Namespace layers and their ``unshare`` flag, in the order they are created.
NAMESPACES = {
    "netns": _CLONE_NEWNET,
    "ipcns": _CLONE_NEWIPC,
    "utsns": _CLONE_NEWUTS,
    "mntns": _CLONE_NEWNS,
    "pidns": _CLONE_NEWPID,
}
#: Names of the OS layers, in the order a worker applies them. ``skip`` in :func:`confine` takes
#: these names; it exists so a test can prove what one layer stops on its own.
LAYER_NAMES = ("userns", *NAMESPACES, "landlock", "nobody", "no-new-privs", "pdeathsig",
               "rlimits", "seccomp")  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process."""

    memory_mb: int = 1024
    cpu_s: int = 120
    file_size_mb: int = 1
    open_files: int = 32


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
    return result


def set_limits(limits: Limits) -> None:
    """Apply the resource limits (soft = hard, so the code cannot raise them back)."""
    mib = 1024 * 1024
    for res, value in (
        (resource.RLIMIT_AS, limits.memory_mb * mib),
        (resource.RLIMIT_CPU, limits.cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mib),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(res, (value, value))


def unshare(flag: int, what: str) -> None:
    """Move into a new namespace of one kind (needs CAP_SYS_ADMIN in the current user ns)."""
    _check(_libc().unshare(flag), f"unshare({what})")


def _finish_namespace(name: str) -> None:
    """What a fresh namespace needs before it isolates anything."""
    libc = _libc()
    if name == "mntns":  # else mounts made on the host would still propagate in (and back)
        _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    elif name == "utsns":
        _check(libc.sethostname(b"sandbox", 7), "sethostname")


def drop_capabilities() -> None:
    """Clear the effective, permitted and inheritable capability sets of this process."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct
    _check(_libc().capset(header, data), "capset")


def _map_own_ids(uid: int, gid: int) -> None:
    """Map ``uid``/``gid`` to themselves in a fresh user namespace (else they read as 65534)."""
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def enter_namespaces(skip: frozenset[str], applied: list[str], warnings: list[str]) -> None:
    """Create every namespace layer not in ``skip``; non-root goes through a user namespace."""
    wanted = [name for name in NAMESPACES if name not in skip]
    if not wanted:
        return
    in_userns = False
    if os.geteuid() != 0:
        if "userns" in skip:
            warnings.append(f"no namespaces ({', '.join(wanted)}): not root, userns skipped")
            return
        uid, gid = os.geteuid(), os.getegid()
        try:
            unshare(_CLONE_NEWUSER, "CLONE_NEWUSER")
        except OSError as exc:
            warnings.append(
                f"no namespaces ({', '.join(wanted)}): not root and no user namespace ({exc}); "
                "allow unprivileged user namespaces (sysctl user.max_user_namespaces, AppArmor's "
                "kernel.apparmor_restrict_unprivileged_userns) or run as root"
            )
            return
        in_userns = True
        applied.append("userns")
        try:
            _map_own_ids(uid, gid)
        except OSError as exc:
            warnings.append(f"userns: own uid/gid not mapped, they read as 65534 ({exc})")
    for name in wanted:
        try:
            unshare(NAMESPACES[name], name)
            _finish_namespace(name)
            applied.append(name)
        except OSError as exc:
            warnings.append(f"no {name}: {exc}")
    if in_userns:  # full capabilities inside the new user namespace: give them all up now
        drop_capabilities()


def landlock(read_paths: list[str], write_path: str) -> int:
    """Restrict this process with Landlock; return the ABI version used."""
    libc = _libc()
    abi = _check(libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, 1), "landlock ABI")
    write = sum(bits for level, bits in _FS_WRITE_BY_ABI.items() if abi >= level)
    read = _FS_READ_FILE | _FS_READ_DIR
    handled_fs = write | read | _FS_EXECUTE
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, _NET_BIND_TCP | _NET_CONNECT_TCP,
                           _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL)  # fmt: skip
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, _NET_BIND_TCP | _NET_CONNECT_TCP)
    else:
        attr = struct.pack("=Q", handled_fs)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(
        libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), 0),
        "landlock_create_ruleset",
    )
    try:
        rules = [(p, read) for p in read_paths] + [(write_path, read | write)]
        for path, access in rules:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
                _check(
                    libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH,
                                 rule, 0),
                    f"landlock_add_rule({path})",
                )  # fmt: skip
            finally:
                os.close(fd)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
        _check(libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return abi


def drop_privileges() -> None:
    """Become ``nobody`` (uid/gid 65534, no supplementary groups, hence no capabilities)."""
    os.setgroups([])
    os.setgid(NOBODY_ID)
    os.setuid(NOBODY_ID)


def set_no_new_privs() -> None:
    """``PR_SET_NO_NEW_PRIVS``: no exec can grant privileges (setuid bits, file capabilities)."""
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def arm_parent_death_signal(expected_parent: int) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone.

    A parent that died before the signal was armed would go unnoticed (the worker is
    re-parented and the signal never comes), hence the check of ``getppid()`` afterwards.
    """
    _check(_libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
    if os.getppid() != expected_parent:
        os._exit(ORPHANED_EXIT)


def _apply(layer: str, step: Callable[[], object], applied: list[str], warnings: list[str],
           missing: str) -> None:  # fmt: skip
    """Run one layer's ``step``: record ``layer`` as applied, or warn ``missing: <error>``."""
    try:
        step()
    except OSError as exc:
        warnings.append(f"{missing}: {exc}")
    else:
        applied.append(layer)


def confine(
    workdir: str,
    read_paths: list[str],
    limits: Limits,
    skip: frozenset[str] = frozenset(),
    parent_pid: int | None = None,
) -> tuple[list[str], list[str]]:
    """Apply every layer that works here; return (applied layers, warnings for missing ones).

    ``skip`` names layers (see :data:`LAYER_NAMES`) not to apply: only for tests.
    ``parent_pid`` is the pid the worker's parent had when it started it; by default the
    parent at the time of this call (which misses a parent that died before it).
    """
    expected_parent = os.getppid() if parent_pid is None else parent_pid
    applied: list[str] = []
    warnings: list[str] = []
    kernel_filter = None
    if "seccomp" not in skip:  # built now: Landlock will hide libseccomp from this process
        try:
            kernel_filter = _seccomp.build(os.getpid())
        except OSError as exc:
            warnings.append(f"no seccomp: {exc}")
    is_root = os.geteuid() == 0
    os.chdir(workdir)
    enter_namespaces(skip, applied, warnings)
    if "landlock" not in skip:
        try:
            applied.append(f"landlock-abi{landlock(read_paths, workdir)}")
        except OSError as exc:
            warnings.append(f"no Landlock: {exc}")
    if "nobody" not in skip and not is_root:
        warnings.append(f"no drop to nobody: not root (runs as uid {os.getuid()})")
    elif "nobody" not in skip:
        _apply("nobody", drop_privileges, applied, warnings, "no drop to nobody")
    if "no-new-privs" not in skip:
        _apply("no-new-privs", set_no_new_privs, applied, warnings, "no no_new_privs")
    # Armed after the uid change: the kernel clears the parent-death signal on credential changes.
    if "pdeathsig" not in skip:
        arm = functools.partial(arm_parent_death_signal, expected_parent)
        _apply("pdeathsig", arm, applied, warnings, "no parent-death signal")
    if "rlimits" not in skip:
        set_limits(limits)
        applied.append("rlimits")
    if kernel_filter is not None:  # last: every call above is one the filter forbids
        _apply("seccomp", kernel_filter.install, applied, warnings, "no seccomp")
    return applied, warnings
