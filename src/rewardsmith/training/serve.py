"""A trial worker that serves trial after trial in its executor slot (``search.reuse_workers``).

``python -m rewardsmith.training.worker --serve --reply-fd FD --parent-pid P``

It also runs evaluation jobs (the finalists on test, ``{"kind": "eval", "args": [RUN_DIR,
TRIAL_ID, SPLIT], ...}``) as :mod:`rewardsmith.training.eval_worker` would.

Importing torch, transformers, TRL and PEFT costs a trial worker about 11 CPU-seconds before it
trains anything: on a CPU, or for a halving rung of a few steps, that is a large share of a
trial. A served worker pays it once per slot. The executor writes one JSON line per trial on the
worker's stdin, ``{"args": [RUN_DIR, TRIAL_ID, "--token", T], "log": PATH}``, and the worker
answers ``TRIAL_ID STATUS`` on the reply pipe once the trial is recorded (STATUS as a one-trial
worker's exit status). Everything else is a one-trial worker's contract
(:mod:`rewardsmith.training.worker`): the parent-death signal, the attempt's token on every write,
the attempt's own directory, stopping when superseded.

What does not carry from one trial to the next: the trial's output goes to its own log (stdout
and stderr are pointed at it for the trial's duration); its sandbox workers are closed when it
ends (a reward never meets the sandbox process of an earlier trial); its model, trainer and
optimizer are released and collected, and the CUDA cache emptied. Every trial is seeded by its
own config, so its result does not depend on what the worker ran before. After any trial that
did not end with status 0 (crashed, superseded, failed to record) the worker exits and the
executor starts a fresh one: a worker in a doubtful state never gets another trial.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def output_to(path: str) -> Iterator[None]:
    """Point this process's stdout and stderr (the file descriptors, so that C libraries and
    warnings follow) at ``path`` (appending) until the block ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def _release_trial_state() -> None:
    """What one trial leaves in the process and the next must not see or pay for."""
    from rewardsmith.sandbox import reward

    pool = reward._default_pool
    reward._default_pool = None
    if pool is not None:
        pool.close()  # the trial's sandbox workers end with the trial, as in a one-trial worker
    engine = sys.modules.get("rewardsmith.evaluation_vllm")
    if engine is not None:
        engine.close_engine()  # its GPU memory is the next trial's to train in
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _parse(job: dict[str, Any]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("trial_id", type=int)
    if job.get("kind") == "eval":
        parser.add_argument("split")
    else:
        parser.add_argument("--token")
    return parser.parse_args([str(a) for a in job["args"]])


def _evaluate(store: Any, trial_id: int, split: str) -> int:
    """An evaluation job, as :mod:`rewardsmith.training.eval_worker` runs it: 0 when stored."""
    from rewardsmith.training.eval_worker import evaluate_stored

    try:
        evaluate_stored(store, trial_id, split)
    except Exception:  # noqa: BLE001 - reported to the executor by the status and the log
        log.exception("trial %d: evaluation on %s failed", trial_id, split)
        return 1
    return 0


def serve(reply_fd: int, run: Any) -> int:
    """Run the jobs read from stdin, one at a time: trials with ``run(store, trial_id, token)``
    (the one-trial worker's), evaluation jobs (``"kind": "eval"``, args ``RUN_DIR TRIAL_ID
    SPLIT``) as the evaluation worker runs them; answer each on ``reply_fd``. Returns the exit
    status: 0 at the end of stdin, else the status of the job after which the worker stops."""
    from rewardsmith.store import RunStore

    stores: dict[Path, RunStore] = {}
    try:
        with os.fdopen(reply_fd, "w", buffering=1) as reply:
            for line in sys.stdin:
                if not line.strip():
                    continue
                job = json.loads(line)
                args = _parse(job)
                with output_to(job["log"]):
                    store = stores.get(args.run_dir)
                    if store is None:
                        store = stores[args.run_dir] = RunStore.open(args.run_dir)
                    if job.get("kind") == "eval":
                        status = _evaluate(store, args.trial_id, args.split)
                    else:
                        status = run(store, args.trial_id, args.token)
                    _release_trial_state()
                reply.write(f"{args.trial_id} {status}\n")
                if status != 0:
                    return status
    finally:
        for store in stores.values():
            store.close()
    return 0
