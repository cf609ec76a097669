"""One sandbox worker process, seen from the parent: spawn, request with a deadline, kill."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardsmith.sandbox import _protocol
from rewardsmith.sandbox._confine import NOBODY_ID, Limits

logger = logging.getLogger(__name__)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOTSTRAP = (
    f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
    "from rewardsmith.sandbox._worker import main; main()"
)
_WARNED: set[str] = set()


def _scrubbed_env(workdir: str) -> dict[str, str]:
    """A minimal environment: nothing from the parent's (no API keys, no PYTHONPATH)."""
    return {
        "PATH": os.defpath,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _pending_bytes(fd: int) -> int:
    """Bytes waiting to be read on a pipe."""
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return struct.unpack("i", raw)[0]


class WorkerProcess:
    """A started worker. Not thread-safe by itself: hold :attr:`lock` around :meth:`request`.

    With ``wait=False`` the constructor only spawns the process; it starts and confines itself
    meanwhile, and :meth:`wait_ready` must read its ready message before the first
    :meth:`request` (the pool does, where it can turn a failed start into a failed call)."""

    def __init__(
        self,
        limits: Limits,
        startup_timeout_s: float = 30.0,
        skip_layers: frozenset[str] = frozenset(),
        *,
        wait: bool = True,
    ) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.entry: str | None = None  # the reward function's name, once loaded
        self.workdir = tempfile.mkdtemp(prefix="rewardsmith-sandbox-")
        if os.geteuid() == 0:
            os.chown(self.workdir, NOBODY_ID, NOBODY_ID)
        self._stderr = tempfile.TemporaryFile()
        config = {
            "workdir": self.workdir,
            "limits": asdict(limits),
            "skip_layers": sorted(skip_layers),
            "parent_pid": os.getpid(),  # the worker exits at once if its parent is already gone
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-P", "-c", _BOOTSTRAP, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_scrubbed_env(self.workdir),
            cwd=self.workdir,
            start_new_session=True,
            close_fds=True,
        )
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._in, False)
        self._seq = 0
        self._startup_timeout_s = startup_timeout_s
        self.ready = False
        self.layers: tuple[str, ...] = ()
        self.warnings: tuple[str, ...] = ()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Read the worker's ready message (once); OSError, with the worker killed, when it
        does not come within the start-up timeout."""
        if self.ready:
            return
        try:
            ready = _protocol.read_reply(self._out, time.monotonic() + self._startup_timeout_s)
            _protocol.check_reply(ready, "ready", 0)
        except _protocol.ProtocolError as exc:
            reason = self.describe_exit()
            self.kill()
            raise OSError(f"sandbox worker failed to start ({exc}): {reason}") from exc
        self.ready = True
        self.layers = tuple(ready.get("layers", ()))
        self.warnings = tuple(ready.get("warnings", ()))
        for warning in self.warnings:
            if warning not in _WARNED:
                _WARNED.add(warning)
                logger.warning("sandbox layer unavailable: %s", warning)
        logger.debug("sandbox worker %d ready with %s", self.proc.pid, ", ".join(self.layers))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, message: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``message`` (a dict with ``op``) and wait for its schema-checked reply.

        The message gets the next sequence number; the reply must echo it and its ``op``, be
        the only frame in the pipe and fit the op's schema (:func:`~._protocol.check_reply`).
        Raises :class:`~._protocol.Unencodable` (nothing sent) for a message JSON cannot hold,
        :class:`~._protocol.DeadlineExceeded` on timeout,
        :class:`~._protocol.ForgedReply` for a reply that breaks those rules and
        :class:`~._protocol.ProtocolError` when the worker died; after any of them the worker
        must be killed.
        """
        deadline = time.monotonic() + timeout_s
        self._seq += 1
        seq, op = self._seq, message["op"]
        try:
            frame = _protocol.encode({**message, "seq": seq})
        except (TypeError, ValueError) as exc:
            raise _protocol.Unencodable(str(exc)) from exc
        _protocol.write_frame(self._in, frame, deadline)
        try:
            reply = _protocol.read_reply(self._out, deadline)
        except (_protocol.DeadlineExceeded, _protocol.ForgedReply):
            raise
        except _protocol.ProtocolError as exc:
            if self._unread_request_bytes() > 0:  # it died before reading all of the request
                raise _protocol.SendFailed(
                    f"worker died before reading the request: {exc}"
                ) from exc
            raise
        _protocol.check_reply(reply, op, seq)
        if _pending_bytes(self._out):
            raise _protocol.ForgedReply("the worker wrote more than one reply to a request")
        return reply

    def _unread_request_bytes(self) -> int:
        """Bytes of our last request still in the pipe (FIONREAD works on the write end)."""
        return _pending_bytes(self._in)

    def describe_exit(self) -> str:
        """Why the worker ended (signal or exit code) and the tail of its stderr."""
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "worker still running"
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - 2000))
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f"{how}: {lines[-1]}" if lines else how

    def kill(self) -> None:
        """SIGKILL the worker's whole process group, reap it and delete its temp dir."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:  # the group leader already exited and the id was reused
            self.proc.kill()
        try:
            self.proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            logger.error("sandbox worker %d did not die after SIGKILL", self.proc.pid)
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
