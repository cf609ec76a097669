"""Artifacts under ``search.artifact_root``: published before the store records them, recorded
as URIs, and resolved back to local files for report, export and test evaluation.

``memory://`` stands in for an object store (fsspec's in-process filesystem: no network) and a
``file://`` URL or a plain directory for a path that every machine mounts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from rewardsmith import artifacts
from rewardsmith.config import parse_config
from rewardsmith.report.from_store import trial_record
from rewardsmith.store import RunStore, StoreError, TrialResult


def _attempt_files(store: RunStore, trial_id: int, attempt: int) -> tuple[Path, Path]:
    """What a worker leaves in its attempt directory: an adapter folder and eval records."""
    out = store.attempt_dir(trial_id, attempt)
    adapter = out / "adapter"
    (adapter / "nested").mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "nested" / "weights.bin").write_bytes(b"\x00\x01weights")
    records = out / "eval_val.jsonl"
    records.write_text(json.dumps({"response": "the answer is 4", "correct": True}) + "\n")
    return adapter, records


def _store(tmp_path: Path, root: str | None) -> RunStore:
    config = parse_config({"name": "artifacts", "search": {"artifact_root": root}})
    return RunStore.create(tmp_path / "run", config)


def _complete(store: RunStore) -> tuple[int, TrialResult]:
    trial_id = store.enqueue_trial("baseline")
    trial = store.claim_trial(trial_id)
    adapter, records = _attempt_files(store, trial_id, trial.attempts)
    local = TrialResult(
        metrics={"f1": 0.5, "split": "val"},
        correctness=(1,),
        adapter_path=str(adapter),
        eval_path=str(records),
    )
    store.complete_trial(trial_id, local, token=trial.attempt_token)
    return trial_id, local


def _same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files == theirs and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"memory://artifacts-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root.removeprefix("memory:/")):
        fs.rm(root.removeprefix("memory:/"), recursive=True)


def test_remote_root_records_uris_that_resolve_to_the_same_files(
    tmp_path: Path, memory_root: str
) -> None:
    with _store(tmp_path, memory_root) as store:
        trial_id, local = _complete(store)
        result = store.result(trial_id)
        assert result.adapter_path == f"{memory_root}/adapters/trial-1/attempt-1/adapter"
        assert result.eval_path == f"{memory_root}/adapters/trial-1/attempt-1/eval_val.jsonl"
        fetched = Path(store.local_path(result.adapter_path))
        assert fetched.is_relative_to(store.run_dir / "artifact-cache")
        assert _same_tree(Path(local.adapter_path), fetched)
        assert Path(store.local_path(result.eval_path)).read_text() == (
            Path(local.eval_path).read_text()
        )
        # fetched once: a second resolve reads the cache even when the remote copy is gone
        fsspec.filesystem("memory").rm(memory_root.removeprefix("memory:/"), recursive=True)
        assert store.local_path(result.adapter_path) == str(fetched)
        with pytest.raises(StoreError, match="cannot fetch artifact"):
            store.local_path(f"{memory_root}/nothing/here")
        assert store.local_path(f"{memory_root}/nothing/here", missing_ok=True) is None


def test_report_reads_samples_through_the_uri(tmp_path: Path, memory_root: str) -> None:
    with _store(tmp_path, memory_root) as store:
        trial_id, local = _complete(store)
        Path(local.eval_path).unlink()  # only the published copy is left
        record = trial_record(store, store.trial(trial_id), "val", None)
        assert record.samples == ["the answer is 4"]


def test_an_evaluation_records_the_uri_of_its_records(tmp_path: Path, memory_root: str) -> None:
    with _store(tmp_path, memory_root) as store:
        trial_id, _ = _complete(store)
        records = store.evals_dir / "trial-1-test-abcd.jsonl"
        records.write_text('{"response": "x"}\n')
        stored = store.add_evaluation(trial_id, "test", {"f1": 0.4}, [0], str(records))
        assert stored.records_path == f"{memory_root}/evals/trial-1-test-abcd.jsonl"
        assert store.artifact_uri(records) == stored.records_path  # how test_eval compares
        assert Path(store.local_path(stored.records_path)).read_text() == '{"response": "x"}\n'


@pytest.mark.parametrize("form", ["file-url", "plain-path"])
def test_a_shared_directory_is_written_directly(tmp_path: Path, form: str) -> None:
    shared = tmp_path / "shared"
    root = shared.as_uri() if form == "file-url" else str(shared)
    with _store(tmp_path, root) as store:
        assert store.attempt_dir(1, 2) == shared / "adapters" / "trial-1" / "attempt-2"
        trial_id, local = _complete(store)
        result = store.result(trial_id)
        assert Path(local.adapter_path).is_relative_to(shared)  # written there, not copied
        assert result.adapter_path == root + "/adapters/trial-1/attempt-1/adapter"
        assert store.local_path(result.adapter_path) == local.adapter_path
        records = store.evals_dir / "trial-1-test-abcd.jsonl"  # in the run dir: copied over
        records.write_text("{}\n")
        stored = store.add_evaluation(trial_id, "test", {"f1": 0.4}, [0], str(records))
        assert Path(store.local_path(stored.records_path)) == shared / "evals" / records.name
        assert (shared / "evals" / records.name).read_text() == "{}\n"
    assert not any((tmp_path / "run" / "adapters").iterdir())


def test_without_a_root_paths_are_stored_as_they_are(tmp_path: Path) -> None:
    with _store(tmp_path, None) as store:
        trial_id, local = _complete(store)
        assert store.result(trial_id) == local
        assert store.local_path(local.adapter_path) == local.adapter_path
        assert store.attempt_dir(3, 1) == store.run_dir / "adapters" / "trial-3" / "attempt-1"


def test_publish_refuses_a_missing_file_and_a_stale_attempt_records_nothing(
    tmp_path: Path, memory_root: str
) -> None:
    with pytest.raises(FileNotFoundError):
        artifacts.publish(tmp_path / "absent", memory_root, "x")
    with _store(tmp_path, memory_root) as store:
        trial_id = store.enqueue_trial("baseline")
        old = store.claim_trial(trial_id)
        adapter, records = _attempt_files(store, trial_id, old.attempts)
        store.recover()
        store.claim_trial(trial_id)
        with pytest.raises(StoreError, match="stale"):
            store.complete_trial(
                trial_id,
                TrialResult(metrics={}, adapter_path=str(adapter), eval_path=str(records)),
                token=old.attempt_token,
            )
        assert store.result(trial_id) is None


def test_uri_helpers() -> None:
    assert artifacts.join("s3://bucket/runs/", "adapters/a") == "s3://bucket/runs/adapters/a"
    assert artifacts.join("file:///shared", "a/b") == "file:///shared/a/b"
    assert artifacts.local_root("s3://bucket") is None
    assert artifacts.local_root("file:///shared") == Path("/shared")
    assert artifacts.resolve("file:///shared/x", Path("/unused")) == Path("/shared/x")
