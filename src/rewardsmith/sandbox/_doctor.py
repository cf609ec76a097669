"""What the sandbox achieves on this machine: the layers a worker applies and what each stops.

:func:`diagnose` starts one sandbox worker (no reward is loaded), reads the layers it reports as
applied and the warnings for the ones it could not apply, and returns them with what each layer
stops and where it falls short. It backs ``rewardsmith doctor``; :func:`active_layers` backs the
``layers`` field of ``rewardsmith validate --json``.

>>> [layer.name for layer in LAYERS][:3]
['language', 'seccomp', 'userns']
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import asdict, dataclass

from rewardsmith.sandbox import _seccomp
from rewardsmith.sandbox._confine import Limits


@dataclass(frozen=True)
class LayerInfo:
    """One sandbox layer: its name (as in ``_confine.LAYER_NAMES``) and what it stops."""

    name: str
    stops: str
    root_only: bool = False
    non_root_only: bool = False


LAYERS: tuple[LayerInfo, ...] = (
    LayerInfo("language", "escapes written in Python: dunder attributes, frames, exec/eval, "
              "open, imports beyond the allow-list (RestrictedPython; always on)"),
    LayerInfo("seccomp", "exec (memfd too), sockets of every family (UNIX, netlink, inet), new "
              "processes/threads/namespaces, SysV IPC, ptrace, prctl, mount, bpf, perf, "
              "io_uring, keyrings; other unlisted calls fail with ENOSYS"),
    LayerInfo("userns", "lets a non-root worker create the namespaces below; every capability "
              "is dropped inside it", non_root_only=True),
    LayerInfo("netns", "the network: no interface but a down loopback, no abstract UNIX sockets "
              "of the host"),
    LayerInfo("ipcns", "SysV IPC objects and POSIX message queues of the host"),
    LayerInfo("utsns", "the host name (the worker sees 'sandbox')"),
    LayerInfo("mntns", "mount propagation between the host and the worker (private mounts)"),
    LayerInfo("pidns", "host processes for any child (the worker cannot create one); "
              "defence in depth"),
    LayerInfo("landlock", "reads outside the Python installation and the worker's temp dir, "
              "writes outside the temp dir, exec of files; TCP (ABI >= 4); signals and "
              "abstract sockets outside the sandbox (ABI >= 6)"),
    LayerInfo("nobody", "the invoking user's files and capabilities (uid/gid 65534)",
              root_only=True),
    LayerInfo("no-new-privs", "gaining privileges through setuid/file-capability programs"),
    LayerInfo("pdeathsig", "outliving the trainer: the worker is SIGKILLed when its parent "
              "dies, and exits at once if it already has"),
    LayerInfo("rlimits", "memory (address space), CPU seconds, file size, open files, new "
              "processes, core dumps"),
)  # fmt: skip


@dataclass(frozen=True)
class LayerStatus:
    """A layer on this machine: ``status`` is ``active``, ``missing`` or ``not needed``."""

    name: str
    status: str
    detail: str
    stops: str


@dataclass(frozen=True)
class Diagnosis:
    """The layers of one freshly started worker, and the warnings for those it lacks."""

    layers: tuple[LayerStatus, ...]
    warnings: tuple[str, ...]
    reported: tuple[str, ...]
    start_ms: float
    is_root: bool

    @property
    def active(self) -> list[str]:
        """Names of the active layers (``landlock`` without its ABI)."""
        return [layer.name for layer in self.layers if layer.status == "active"]

    def to_dict(self) -> dict:
        """Everything, JSON-ready; ``seccomp_policy`` summarises the filter's lists."""
        return {
            "active": self.active,
            "layers": [asdict(layer) for layer in self.layers],
            "warnings": list(self.warnings),
            "worker_start_ms": round(self.start_ms, 1),
            "root": self.is_root,
            "seccomp_policy": seccomp_policy(),
        }


def seccomp_policy() -> dict:
    """The kernel layer's policy in brief: the default errno and the classes killed/allowed."""
    return {
        "default": f"ERRNO({errno.errorcode[_seccomp.DENY_ERRNO]})",
        "killed": {group.name: list(group.syscalls) for group in _seccomp.KILLED},
        "allowed": {group.name: list(group.syscalls) for group in _seccomp.ALLOWED},
        "partial": dict(_seccomp.PARTIAL),
    }


def worker_layers(limits: Limits | None = None) -> tuple[tuple[str, ...], tuple[str, ...], float]:
    """Start one worker; return (layers it applied, warnings, start-up time in ms)."""
    from rewardsmith.sandbox._process import WorkerProcess

    start = time.perf_counter()
    worker = WorkerProcess(limits or Limits())
    elapsed_ms = (time.perf_counter() - start) * 1000
    try:
        return worker.layers, worker.warnings, elapsed_ms
    finally:
        worker.kill()


def active_layers(limits: Limits | None = None) -> list[str]:
    """The language layer and the OS layers one worker applies here, as the worker names them
    (``landlock-abi7``...): the order is the order they were applied, ``language`` first."""
    return ["language", *worker_layers(limits)[0]]


def diagnose(limits: Limits | None = None) -> Diagnosis:
    """Start a worker and compare what it applied with every layer the sandbox knows.

    ``warnings`` holds the worker's own warnings, plus one for a missing layer it gave none for.
    """
    reported, warnings, start_ms = worker_layers(limits)
    is_root = os.geteuid() == 0
    by_name = {name.split("-abi")[0]: name for name in reported}
    statuses = []
    for info in LAYERS:
        detail = ""
        if info.name == "language" or info.name in by_name:
            status = "active"
            if info.name == "landlock":
                detail = "ABI " + by_name["landlock"].split("-abi")[1]
        elif (info.root_only and not is_root) or (info.non_root_only and is_root):
            status = "not needed" if info.non_root_only else "missing"
            detail = "root" if info.non_root_only else "not root"
        else:
            status = "missing"
        if status == "missing":
            why = _why_missing(info.name, warnings)
            if why is None:
                why = f"no {info.name}: not applied by the worker"
                warnings = (*warnings, why)
            detail = detail or why
        statuses.append(LayerStatus(info.name, status, detail, info.stops))
    return Diagnosis(tuple(statuses), tuple(warnings), tuple(reported), start_ms, is_root)


#: How the worker's warnings name a layer, where that differs from the layer's name.
_WARNING_WORDS = {"pdeathsig": "parent-death", "no-new-privs": "no_new_privs"}


def _why_missing(name: str, warnings: tuple[str, ...]) -> str | None:
    word = _WARNING_WORDS.get(name, name)
    return next((w for w in warnings if word in w.lower()), None)
