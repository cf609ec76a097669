"""Two Ray nodes on this machine, each its own ``ray start`` process: a head offering the custom
resource ``head_node`` and a worker node offering ``worker_node``. A whole (miniature) search
whose trials ask for ``worker_node`` runs to the end: every trial and test evaluation ran on the
worker node, and their results, adapters and evaluations reached the driver's store and run
directory. Each ``ray start --block`` is ended by its pid (it takes its
Ray processes with it), never by a machine-wide ``ray stop``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.store import RunStore, TrialState
from tests.training.conftest import mini_search

pytest.importorskip("ray")
from rewardsmith.execution_ray import RayExecutor  # noqa: E402 - after the importorskip

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


#: A throwaway cluster on this machine: no usage reports, no auth token to hand around.
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _start_node(tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, **QUIET}
    with (tmp_path / f"{name}.log").open("w") as out:
        return subprocess.Popen(
            [RAY, "start", "--block", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(node: subprocess.Popen) -> None:
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)  # shuts its Ray processes down
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


@pytest.fixture
def cluster(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The address of a head node (``head_node``) joined by a worker node (``worker_node``)."""
    for name, value in QUIET.items():
        monkeypatch.setenv(name, value)  # the driver's side
    import ray

    address = f"{ray.util.get_node_ip_address()}:{_free_port()}"
    nodes = [
        _start_node(
            tmp_path,
            "head",
            "--head",
            f"--port={address.split(':')[1]}",
            "--num-cpus=1",
            '--resources={"head_node": 1}',
            "--include-dashboard=false",
            "--disable-usage-stats",
        )
    ]
    try:
        nodes.append(
            _start_node(
                tmp_path,
                "worker",
                f"--address={address}",
                "--num-cpus=2",
                '--resources={"worker_node": 2}',
            )
        )
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)


def _cfg(address: str) -> RunConfig:
    data = mini_search(
        grpo={"per_device_train_batch_size": 4},
        executor="ray",
        ray_address=address,
        ray_resources={"worker_node": 1},
        gpus=0,
        cpus_per_trial=1,
    )
    return parse_config(data, source="ray cluster test recipe")


def _node_id(ray: object, resource: str, timeout_s: float = 120) -> str:
    """The id of the live node offering ``resource`` (waiting for it to join)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in ray.nodes():  # type: ignore[attr-defined]
            if node["Alive"] and resource in node["Resources"]:
                return node["NodeID"]
        time.sleep(0.5)
    raise AssertionError(f"no node offering {resource} joined the cluster")


def test_a_search_runs_to_the_end_on_the_worker_node(cluster: str, tmp_path: Path) -> None:
    from rewardsmith.generators import OfflineGenerator
    from rewardsmith.sandbox.pool import SandboxPool
    from rewardsmith.search.loop import Search
    from rewardsmith.tasks import get_task

    cfg = _cfg(cluster)
    store = RunStore.create(tmp_path / "run", cfg)
    task = get_task(cfg.task.name, **cfg.task.task_kwargs())
    with RayExecutor.from_config(cfg) as executor, SandboxPool() as pool:
        ray = executor.connect()
        worker_node, head_node = _node_id(ray, "worker_node"), _node_id(ray, "head_node")
        assert worker_node != head_node
        Search(store, OfflineGenerator(seed=0), executor, task, pool=pool).run()
        placements = list(executor.placements)

    trials = store.trials()
    kinds = sorted(t.kind for t in trials)
    assert {"baseline", "screen", "control", "ensemble"} <= set(kinds), kinds
    assert all(t.state == TrialState.COMPLETE for t in trials), [
        (t.id, t.fail_reason) for t in trials
    ]
    assert {p.node_id for p in placements} == {worker_node}  # trials and evaluations alike
    assert {p.status for p in placements} == {"ok"}
    assert {p.trial_id for p in placements} >= {t.id for t in trials}
    for trial in trials:
        result = store.result(trial.id)
        adapter = Path(result.adapter_path)
        assert adapter.is_dir() and adapter.is_relative_to(store.run_dir)
        assert any(adapter.iterdir())
        assert result.metrics["split"] == cfg.eval.selection
        log = (store.logs_dir / f"trial-{trial.id}.log").read_text()
        assert f"Ray node {worker_node}" in log
    for trial in trials:
        if trial.kind in ("baseline", "control", "ensemble", "final"):
            evaluation = store.evaluation(trial.id, "test")
            assert evaluation is not None and len(evaluation.correctness) == 4
    store.close()
