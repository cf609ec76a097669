"""The Ray executor (``search.executor: ray``): one Ray task per trial, on a Ray cluster.

Ray is an optional extra (``pip install rewardsmith[ray]``), imported only when this executor
connects. ``search.ray_address`` None starts a local Ray (shut down again by :meth:`close` or at
exit); ``"auto"`` or ``"<host>:<port>"`` joins a running cluster, which is left running.

Each trial is one Ray task asking for ``search.cpus_per_trial`` CPUs, ``1 / trials_per_gpu``
GPUs when the trials use GPUs (fractions pack several small trials on one GPU; Ray pins the
task to its GPU with ``CUDA_VISIBLE_DEVICES``) and the custom resources ``search.ray_resources``
(e.g. ``{"a100": 1}`` to keep trials on the nodes started with ``--resources '{"a100": 8}'``).
The task runs the same trial worker as the local executor
(``python -m rewardsmith.training.worker RUN_DIR TRIAL_ID --token T --parent-pid P``, ``P``
being the Ray worker's pid, so the trial dies with its Ray worker), and the same guarantees hold:

* **The driver claims, the worker records.** The driver claims each trial (a new attempt with
  its fencing token) just before it submits the task, no more trials than the cluster has room
  for; the worker writes its result, COMPLETE or FAILED, to the store itself, fenced by the
  token. The run directory must be on a filesystem every node sees (the store's SQLite file,
  the logs and the adapters live there), or the store a server database whose URL reaches the
  tasks through ``REWARDSMITH_STORE_URL`` (passed on in the task's runtime environment, never
  written to disk).
* **Death is retried within the attempt budget.** A task whose trial ends without an outcome
  (the trial worker was killed, its Ray worker or its node died, the task could not run) has its
  attempt released and retried, up to ``search.max_attempts`` deaths counted in
  ``logs/worker-failures.jsonl`` (as the local executor counts them); then the trial is FAILED
  with the reason. Ray's own retries are off: a retry must be a new attempt with a new token.
* **Ctrl-C leaves the trials resumable.** The running tasks are cancelled (``force``: their Ray
  workers, and so their trial workers, are killed) and their attempts released without being
  counted, so ``--resume`` re-runs exactly those.

Finalist evaluations (:meth:`RayExecutor.evaluate`) run the same way, one task per trial running
``python -m rewardsmith.training.eval_worker``. Each task reports the node it ran on
(:attr:`RayExecutor.placements`, and the trial's log).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardsmith import execution_policy as policy
from rewardsmith.errors import ConfigError, RewardsmithError
from rewardsmith.execution_policy import (
    EVAL_WORKER,
    TRIAL_WORKER,
    DoneFn,
    Launch,
    ProgressFn,
)
from rewardsmith.store import RunStore

if TYPE_CHECKING:
    from rewardsmith.config import RunConfig

log = logging.getLogger(__name__)

#: The store's URL when it is a server database; passed on to the tasks (never to disk).
STORE_URL_ENV = "REWARDSMITH_STORE_URL"
#: Variables a local Ray gets so that it never tries the network on its own.
_QUIET_RAY = {"RAY_USAGE_STATS_ENABLED": "0"}


class RayUnavailableError(RewardsmithError):
    """``search.executor: ray`` without Ray installed."""


@dataclass(frozen=True)
class Placement:
    """Where one task ran: its trial, ``job`` (``"trial"`` or ``"eval:<split>"``), the Ray node
    id and host name it reported, and how it ended (``"ok"``, or why it counts as a death)."""

    trial_id: int
    job: str
    node_id: str | None
    host: str | None
    status: str


@dataclass
class _Task:
    trial_id: int
    ref: Any  # ray.ObjectRef
    token: str | None = None


@dataclass
class _Outcome:
    """What a finished task tells the driver: the worker's exit status and where it ran, or
    (``error``) why the task itself ended without one."""

    returncode: int | None = None
    node_id: str | None = None
    host: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        where = f" on {self.host} (node {self.node_id[:8]})" if self.node_id and self.host else ""
        return f"{policy.describe_exit(self.returncode)}{where}"


@dataclass
class RayExecutor:
    """Trials (and finalist evaluations) as Ray tasks; see the module doc.

    ``num_gpus`` None (``gpus: auto``): ``1 / trials_per_gpu`` when the cluster has GPUs, else
    0. ``init_options`` go to ``ray.init`` when this executor starts a local Ray (e.g.
    ``{"num_cpus": 2}``). ``worker_module``/``eval_module`` are replaceable for tests.
    """

    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float | None = 0.0
    trials_per_gpu: int = 1
    resources: dict[str, float] = field(default_factory=dict)
    max_attempts: int = 2
    poll_s: float = 0.5
    init_options: dict[str, Any] = field(default_factory=dict)
    worker_module: str = TRIAL_WORKER
    eval_module: str = EVAL_WORKER
    placements: list[Placement] = field(default_factory=list, init=False)
    _ray: Any = field(default=None, init=False, repr=False)
    _owns_ray: bool = field(default=False, init=False, repr=False)
    _remote: Any = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(cls, cfg: RunConfig) -> RayExecutor:
        """The executor ``cfg.search`` describes (nothing connects before the first job)."""
        search = cfg.search
        gpus = search.gpus
        if gpus == 0 or gpus == []:
            num_gpus: float | None = 0.0
        elif gpus == "auto":
            num_gpus = None
        else:
            if isinstance(gpus, list):
                log.warning("search.gpus lists device ids; Ray picks each trial's GPU itself")
            num_gpus = 1.0 / search.trials_per_gpu
        return cls(
            address=search.ray_address,
            num_cpus=search.cpus_per_trial,
            num_gpus=num_gpus,
            trials_per_gpu=search.trials_per_gpu,
            resources=dict(search.ray_resources),
            max_attempts=search.max_attempts,
        )

    # ------------------------------------------------------------ connection

    def connect(self) -> Any:
        """Import Ray and join (or start) the cluster once; return the ``ray`` module."""
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise RayUnavailableError(
                "search.executor is 'ray' but Ray is not installed: pip install rewardsmith[ray]"
            ) from None
        if not ray.is_initialized():
            for name, value in _QUIET_RAY.items():
                os.environ.setdefault(name, value)
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,  # the trial logs are in the run directory
                "configure_logging": True,
                "logging_level": logging.WARNING,
            }
            if self.address is None:
                options |= self.init_options
            log.info("connecting to Ray at %s", self.address or "a new local cluster")
            try:
                # "local": a new Ray even when another one runs on this machine
                ray.init(address=self.address or "local", **options)
            except ConnectionError as exc:
                raise ConfigError(f"search.ray_address {self.address!r}: {exc}") from exc
            self._owns_ray = True
        if self.num_gpus is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            self.num_gpus = 1.0 / self.trials_per_gpu if has_gpus else 0.0
        self._remote = ray.remote(_run_worker).options(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            resources=self.resources or None,
            max_retries=0,  # a retry is a new attempt with a new token: the driver's job
            retry_exceptions=False,
            runtime_env=_runtime_env(),
        )
        self._ray = ray
        return ray

    def close(self) -> None:
        """Disconnect from Ray if this executor connected (a local Ray it started stops; a
        cluster it joined keeps running)."""
        if self._ray is not None and self._owns_ray:
            self._ray.shutdown()
        self._ray = self._remote = None
        self._owns_ray = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def capacity(self) -> int:
        """How many tasks of ours the cluster can run at once (at least 1)."""
        total = self.connect().cluster_resources()
        demand = {"CPU": self.num_cpus, "GPU": self.num_gpus or 0.0, **self.resources}
        fits = [math.floor(total.get(k, 0.0) / v + 1e-9) for k, v in demand.items() if v > 0]
        room = min(fits) if fits else 1
        if room < 1:
            missing = [k for k, v in demand.items() if v > 0 and total.get(k, 0.0) < v]
            log.warning("no Ray node offers %s yet: the trials wait for one", missing)
        return max(1, room)

    # ------------------------------------------------------------ trials and evaluations

    def run(
        self, store: RunStore, trial_ids: Sequence[int], on_progress: ProgressFn | None = None
    ) -> None:
        """Run the PENDING trials among ``trial_ids`` to a final state (see the module doc)."""
        submit = partial(self._submit, self.worker_module)

        def settle(task: _Task, outcome: _Outcome) -> bool:
            place = partial(self._place, task, "trial", outcome)
            status = outcome.describe()
            return policy.settle_trial(
                store, task.trial_id, task.token, status, self.max_attempts, on_outcome=place
            )

        self._drive(
            store,
            policy.trials_to_run(store, trial_ids),
            lambda trial_id: policy.start_trial(
                store, trial_id, self.max_attempts, submit, worker="ray"
            ),
            settle,
            policy.progress_ticker(store, on_progress),
        )

    def evaluate(
        self, store: RunStore, trial_ids: Sequence[int], split: str, on_done: DoneFn | None = None
    ) -> None:
        """Evaluate the COMPLETE trials among ``trial_ids`` not yet evaluated on ``split``, one
        task each (see :class:`rewardsmith.execution.Executor`)."""
        submit = partial(self._submit, self.eval_module)

        def settle(task: _Task, outcome: _Outcome) -> bool:
            place = partial(self._place, task, f"eval:{split}", outcome)
            status = outcome.describe()
            return policy.settle_eval(
                store, task.trial_id, split, status, self.max_attempts, on_done, on_outcome=place
            )

        self._drive(
            store,
            policy.evaluations_to_run(store, trial_ids, split),
            lambda trial_id: policy.start_eval(store, trial_id, split, self.max_attempts, submit),
            settle,
        )

    # ------------------------------------------------------------ tasks

    def _drive(
        self,
        store: RunStore,
        queue: list[int],
        start: Callable[[int], _Task | None],
        settle: Callable[[_Task, _Outcome], bool],
        tick: Callable[[int], None] | None = None,
    ) -> None:
        """Submit queued jobs while the cluster has room, settle each finished task; on any
        error or Ctrl-C cancel the running tasks (releasing their attempts) and re-raise."""
        if not queue:
            return
        ray = self.connect()
        running: list[_Task] = []
        try:
            while queue or running:
                room = self.capacity() if queue else 0
                while queue and len(running) < room:
                    task = start(queue.pop(0))
                    if task is not None:
                        running.append(task)
                if not running:
                    continue
                done, _ = ray.wait([t.ref for t in running], num_returns=1, timeout=self.poll_s)
                for task in list(running):
                    if tick is not None:
                        tick(task.trial_id)
                    if task.ref not in done:
                        continue
                    running.remove(task)
                    if not settle(task, self._outcome(task)):
                        queue.insert(0, task.trial_id)
        except BaseException:
            self._abort(store, running)
            raise

    def _submit(self, module: str, launch: Launch) -> _Task:
        """Submit the task running ``python -m module args`` (a
        :data:`~rewardsmith.execution_policy.Submit` once given ``module``)."""
        args, log_path, where = launch.args, str(launch.log_path), launch.where
        ref = self._remote.remote(module, args, log_path, where, self._threads())
        return _Task(launch.trial_id, ref, launch.token)

    def _outcome(self, task: _Task) -> _Outcome:
        """What became of a finished task; Ray's errors (the worker or node died, the task was
        cancelled or could not start) are deaths, reported by their class and first line."""
        ray = self._ray
        try:
            reply = ray.get(task.ref)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return _Outcome(error=f"({type(exc).__name__}: {first[:300]})")
        return _Outcome(reply["returncode"], reply["node_id"], reply["host"])

    def _place(self, task: _Task, job: str, outcome: _Outcome, status: str) -> None:
        self.placements.append(Placement(task.trial_id, job, outcome.node_id, outcome.host, status))
        if outcome.host is not None:
            log.info(
                "trial %d %s ran on %s (node %s)", task.trial_id, job, outcome.host, outcome.node_id
            )

    def _abort(self, store: RunStore, running: list[_Task]) -> None:
        """Cancel the running tasks (their Ray workers are killed, and the trial workers with
        them) and release their trial attempts, uncounted (Ctrl-C, errors)."""
        for task in running:
            try:
                self._ray.cancel(task.ref, force=True)
            except Exception as exc:  # noqa: BLE001 - finished meanwhile, or Ray is going down
                log.debug("cancelling the task of trial %d: %s", task.trial_id, exc)
        for task in running:
            if task.token is not None:
                store.release_attempt(task.trial_id, task.token)

    def _threads(self) -> int:
        return max(1, int(self.num_cpus))


def _runtime_env() -> dict[str, Any] | None:
    """The tasks' runtime environment: the store's URL when it is set in the driver."""
    url = os.environ.get(STORE_URL_ENV)
    return {"env_vars": {STORE_URL_ENV: url}} if url else None


# ---------------------------------------------------------------- inside the Ray task


def _run_worker(
    module: str, args: list[str], log_path: str, where: str, threads: int
) -> dict[str, Any]:
    """The Ray task: run ``python -m module args --parent-pid <this Ray worker>`` to its end,
    logging to ``log_path``; return its exit status and where it ran. For a trial, the worker
    process is recorded with the attempt (``<host>:<pid>``), as the local executor records it."""
    import ray

    from rewardsmith.execution_gpu import worker_env

    node_id = ray.get_runtime_context().get_node_id()
    host = socket.gethostname()
    path = Path(log_path)
    if not path.parent.is_dir():
        raise RewardsmithError(
            f"{path.parent} is not visible on {host}: the Ray executor needs the run directory "
            "on a filesystem that every node shares"
        )
    cmd = [sys.executable, "-m", module, *args, "--parent-pid", str(os.getpid())]
    env = worker_env(None, 1, {**os.environ, "OMP_NUM_THREADS": str(threads)})
    with path.open("ab") as log_file:
        log_file.write(f"==> {where} on {host} (Ray node {node_id})\n".encode())
        log_file.flush()
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        if "--token" in args and not _record_worker(args, process.pid):
            _kill(process)
        code = process.wait()
    except BaseException:  # cancelled: the trial worker goes too
        _kill(process)
        raise
    return {"returncode": code, "node_id": node_id, "host": host, "pid": process.pid}


def _record_worker(args: Sequence[str], pid: int) -> bool:
    """Record the trial worker ``pid`` with its attempt; False when the attempt is stale."""
    from rewardsmith.execution_runs import process_start
    from rewardsmith.store.run_store import StaleAttemptError

    run_dir, trial_id, token = args[0], int(args[1]), args[args.index("--token") + 1]
    store = RunStore.open(Path(run_dir), url=os.environ.get(STORE_URL_ENV) or None)
    try:
        store.record_worker(trial_id, token, pid=pid, start=process_start(pid))
    except StaleAttemptError:
        return False
    finally:
        store.close()
    return True


def _kill(process: subprocess.Popen) -> None:
    from rewardsmith.execution_runs import kill_group

    kill_group(process)
