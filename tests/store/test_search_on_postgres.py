"""A whole (miniature) search on PostgreSQL with a shared artifact root, as several machines
would run it: the store's URL reaches the trial workers only through
``REWARDSMITH_STORE_URL``, adapters and records go under a ``file://`` root outside the run
directory, and report and export read them back through the URIs the store recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from rewardsmith.store import RunStore, TrialState
from tests.conftest import run_cli
from tests.training.conftest import mini_search, write_yaml

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True),
]
SECRET = "Sh4red-s3cret"


def _recipe(path: Path, artifact_root: str) -> Path:
    return write_yaml(path, mini_search(artifact_root=artifact_root))


def test_a_search_runs_to_the_end_on_postgresql(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(os.environ["REWARDSMITH_STORE_URL"]).set(password=SECRET)
    monkeypatch.setenv("REWARDSMITH_STORE_URL", url.render_as_string(hide_password=False))
    shared = tmp_path / "shared"
    recipe = _recipe(tmp_path / "mini.yaml", shared.as_uri())
    run_dir = tmp_path / "run"
    res = run_cli("search", "--config", str(recipe), "--run-dir", str(run_dir))
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (run_dir / "store.db").exists() and (run_dir / "store.url").is_file()

    with RunStore.open(run_dir) as store:
        assert store.schema is not None
        trials = store.trials()
        assert trials and all(t.state is TrialState.COMPLETE for t in trials), [
            (t.id, t.fail_reason) for t in trials
        ]
        for trial in trials:
            result = store.result(trial.id)
            assert result.adapter_path.startswith(shared.as_uri() + "/adapters/")
            assert Path(store.local_path(result.adapter_path)).is_dir()
        finalists = [t for t in trials if t.kind in ("baseline", "control", "ensemble", "final")]
        for trial in finalists:
            evaluation = store.evaluation(trial.id, "test")
            assert evaluation is not None and len(evaluation.correctness) == 4
    report = json.loads((run_dir / "report" / "report.json").read_text())
    assert len(report["data"]["trials"]) == len(trials)

    res = run_cli("export", str(run_dir), "--top", "1", "-o", str(tmp_path / "rewards.py"))
    assert res.returncode == 0, res.stderr
    for file in run_dir.rglob("*"):  # the password never reached the run directory
        assert not file.is_file() or SECRET.encode() not in file.read_bytes(), file
