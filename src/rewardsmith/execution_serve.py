"""Served trial workers for the local executor: one process per slot, trial after trial.

With ``search.reuse_workers`` (the default), :class:`~rewardsmith.execution.LocalProcessExecutor`
keeps one ``rewardsmith.training.worker --serve`` process per slot
(:mod:`rewardsmith.training.serve`) and hands it each trial it starts in that slot, instead of a
fresh ``python`` per trial: the imports (about 11 CPU-seconds) are paid once per slot.

A :class:`TrialServer` stands where a one-trial worker's ``Popen`` stood in the executor's job:
``pid``, ``poll()``, ``returncode`` and ``wait()`` describe the *current trial* (its status is the
worker's answer, or the worker's exit status if it died during the trial), so the executor's
attempt and retry policy is the same for both. Kills are the same too: the worker has its own
process group and a parent-death signal, and a killed worker is replaced at the next trial.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from rewardsmith.execution_runs import kill_group

log = logging.getLogger(__name__)


class TrialServer:
    """One served trial worker (see the module docstring)."""

    def __init__(
        self, module: str, env: dict[str, str], first_log: object, parent_pid: int
    ) -> None:
        read, write = os.pipe()
        cmd = [sys.executable, "-m", module, "--serve", "--reply-fd", str(write)]
        try:
            self.process = subprocess.Popen(
                [*cmd, "--parent-pid", str(parent_pid)],
                stdin=subprocess.PIPE,
                stdout=first_log,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=(write,),
                start_new_session=True,
            )
        finally:
            os.close(write)
        os.set_blocking(read, False)
        self._replies = os.fdopen(read, "rb", buffering=0)
        self._buffer = b""
        self.thread = threading.get_ident()  # its parent-death signal follows this thread
        self.trial_id: int | None = None
        self.status: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def idle(self) -> bool:
        """True when it can take a trial: alive, and its last trial answered."""
        return self.process.poll() is None and (self.trial_id is None or self.status is not None)

    def assign(
        self, trial_id: int, args: Sequence[str], log_path: str, kind: str = "trial"
    ) -> bool:
        """Hand it a trial (or an evaluation job, ``kind="eval"``); False when it cannot take
        one (it died meanwhile)."""
        job = {"kind": kind, "args": [str(a) for a in args], "log": log_path}
        line = json.dumps(job) + "\n"
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        self.trial_id, self.status = trial_id, None
        return True

    def _read_answer(self) -> None:
        try:
            chunk = self._replies.read(4096)
        except BlockingIOError:
            return
        self._buffer += chunk or b""
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            answered, _, status = line.decode(errors="replace").partition(" ")
            if answered.strip() == str(self.trial_id) and status.strip().lstrip("-").isdigit():
                self.status = int(status)
            else:  # only a broken worker answers out of turn: treat it as dead
                log.warning("served worker %d: unexpected answer %r", self.pid, line[:80])
                kill_group(self.process)

    def poll(self) -> int | None:
        """The current trial's status: its answer, or the worker's exit status if it died
        first; None while the trial runs."""
        if self.status is None:
            self._read_answer()
        if self.status is not None:
            return self.status
        code = self.process.poll()
        if code is not None:
            self._read_answer()  # an answer written just before exiting still counts
        return self.status if self.status is not None else code

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def wait(self) -> int:
        self.process.wait()
        return self.poll() or 0

    def close(self, timeout: float = 10.0) -> None:
        """End it: end of input (it exits after its trial), then a kill if it lingers."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            kill_group(self.process)
        finally:
            self._replies.close()


def close_all(servers: dict[int, TrialServer]) -> None:
    """Close every server in ``servers`` (slot -> server) and forget them."""
    for server in servers.values():
        server.close()
    servers.clear()
