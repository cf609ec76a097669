"""The OS layer of the sandbox, applied by a worker to itself before it loads untrusted code.

Layers, each applied when the kernel and privileges allow and reported either way:

* resource limits: address space, CPU seconds, file size, open files, no new processes (``NPROC``
  0), no core dumps;
* a private network namespace (root only): no interface but a down loopback;
* Landlock (Linux >= 5.13): reads only beneath the Python installation and the worker's temp
  dir, writes/creates/deletes only beneath the temp dir, no ``execve``; from ABI 4 no TCP
  bind/connect; from ABI 6 no signals to, or abstract sockets of, processes outside the sandbox;
* privilege drop to ``nobody`` when started as root (so ``NPROC`` and file modes apply);
* ``PR_SET_NO_NEW_PRIVS`` and a parent-death signal (SIGKILL when the parent dies).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import struct
from dataclasses import dataclass

NOBODY_ID = 65534
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
#: Write-like file-system rights by the Landlock ABI that introduced them.
_FS_WRITE_BY_ABI = {1: sum(1 << b for b in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12)), 2: 1 << 13,
                    3: 1 << 14, 5: 1 << 15}  # fmt: skip
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


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


def unshare_network() -> None:
    """Move into a fresh network namespace (needs root / CAP_SYS_ADMIN)."""
    _check(_libc().unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")


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
    """Become ``nobody`` (uid/gid 65534, no supplementary groups)."""
    os.setgroups([])
    os.setgid(NOBODY_ID)
    os.setuid(NOBODY_ID)


#: Names of the OS layers, in the order a worker applies them. ``skip`` in :func:`confine` takes
#: these names; it exists so a test can prove what one layer stops on its own.
LAYER_NAMES = ("netns", "landlock", "nobody", "no-new-privs", "pdeathsig", "rlimits")


def confine(
    workdir: str, read_paths: list[str], limits: Limits, skip: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """Apply every layer that works here; return (applied layers, warnings for missing ones).

    ``skip`` names layers (see :data:`LAYER_NAMES`) not to apply: only for tests.
    """
    applied: list[str] = []
    warnings: list[str] = []
    is_root = os.geteuid() == 0
    os.chdir(workdir)
    if is_root and "netns" not in skip:
        try:
            unshare_network()
            applied.append("netns")
        except OSError as exc:
            warnings.append(f"no network namespace: {exc}")
    try:
        if "landlock" not in skip:
            applied.append(f"landlock-abi{landlock(read_paths, workdir)}")
    except OSError as exc:
        warnings.append(f"no Landlock: {exc}")
    if is_root and "nobody" not in skip:
        try:
            drop_privileges()
            applied.append("nobody")
        except OSError as exc:
            warnings.append(f"could not drop privileges: {exc}")
    libc = _libc()
    if "no-new-privs" not in skip and libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0:
        applied.append("no-new-privs")
    # Set after the uid change: the kernel clears the parent-death signal on credential changes.
    if "pdeathsig" not in skip and libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        applied.append("pdeathsig")
    if "rlimits" not in skip:
        set_limits(limits)
        applied.append("rlimits")
    return applied, warnings
