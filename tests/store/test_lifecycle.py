"""Creating and opening run stores: layout, manifest, and every way opening can be refused."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.errors import RewardsmithError
from rewardsmith.store import RunStore, StoreError, build_manifest
from rewardsmith.tasks import get_task
from tests._postgres import SQLITE_ONLY, fresh_database

POSTGRES_ONLY = pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)


@SQLITE_ONLY
def test_create_lays_out_the_run_directory(tmp_path: Path, config: RunConfig) -> None:
    run_dir = tmp_path / "runs" / "r1"
    with RunStore.create(run_dir, config) as store:
        assert store.adapters_dir.is_dir() and store.evals_dir.is_dir() and store.logs_dir.is_dir()
        assert (run_dir / "store.db").is_file()
        manifest = store.manifest()
    assert manifest.run_id == "r1"
    assert manifest.config_hash == config.config_hash()
    assert manifest.config["name"] == "store-test"
    assert manifest.versions["rewardsmith"] is not None
    assert set(manifest.versions) >= {"torch", "transformers", "trl", "peft"}
    assert manifest.git_commit is None or len(manifest.git_commit) == 40


@SQLITE_ONLY
def test_store_uses_wal_so_readers_do_not_block_writers(store: RunStore) -> None:
    with sqlite3.connect(store.run_dir / "store.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_manifest_records_data_fingerprints_and_overlaps(tmp_path: Path, config: RunConfig) -> None:
    task = get_task("synthetic", n_train=60, n_val=10, n_test=10)
    manifest = build_manifest(config, task=task, run_id="with-data", extra={"note": "x"})
    with RunStore.create(tmp_path / "run", config, manifest=manifest) as store:
        stored = store.manifest()
    assert stored.fingerprints == {s: task.fingerprint(s) for s in ("train", "val", "test")}
    assert stored.split_sizes == {"train": 60, "val": 10, "test": 10}
    assert stored.overlaps == {"train/val": 0, "train/test": 0, "val/test": 0}
    assert stored.splits_disjoint and stored.run_id == "with-data"
    assert stored.extra == {"note": "x"}


def test_reopen_returns_the_same_config(tmp_path: Path, config: RunConfig) -> None:
    RunStore.create(tmp_path / "run", config).close()
    with RunStore.open(tmp_path / "run", expected_config_hash=config.config_hash()) as store:
        assert store.config() == config
        assert store.config_hash == config.config_hash()


def test_create_refuses_an_existing_store(tmp_path: Path, config: RunConfig) -> None:
    RunStore.create(tmp_path / "run", config).close()
    with pytest.raises(StoreError, match="already exists"):
        RunStore.create(tmp_path / "run", config)


def test_manifest_of_another_config_is_refused(tmp_path: Path, config: RunConfig) -> None:
    other = parse_config({"seed": 1})
    with pytest.raises(StoreError, match="another config"):
        RunStore.create(tmp_path / "run", config, manifest=build_manifest(other))


@SQLITE_ONLY
def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RewardsmithError, match=r"^no run store at .*nowhere"):
        RunStore.open(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # opening never creates anything


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (os.urandom(16384), "unreadable: file is not a database"),
        (b"SQLite format 3\x00" + os.urandom(4080), "unreadable"),
        (None, "not a rewardsmith run store"),  # a valid SQLite file of another program
    ],
    ids=["random-bytes", "bad-pages", "foreign-db"],
)
def test_corrupt_or_foreign_store_is_a_clear_error(
    tmp_path: Path, content: bytes | None, fragment: str
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is None:
        with sqlite3.connect(run_dir / "store.db") as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
    else:
        (run_dir / "store.db").write_bytes(content)
    with pytest.raises(StoreError) as info:
        RunStore.open(run_dir)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_store_of_another_config_is_refused(tmp_path: Path, config: RunConfig) -> None:
    RunStore.create(tmp_path / "run", config).close()
    other = parse_config({"name": "store-test", "grpo": {"max_steps": 4}})
    with pytest.raises(StoreError) as info:
        RunStore.open(tmp_path / "run", expected_config_hash=other.config_hash())
    message = str(info.value)
    assert config.config_hash()[:12] in message and other.config_hash()[:12] in message
    assert "refusing" in message


def test_config_change_can_be_allowed_explicitly(
    tmp_path: Path, config: RunConfig, caplog: pytest.LogCaptureFixture
) -> None:
    RunStore.create(tmp_path / "run", config).close()
    other = parse_config({"grpo": {"max_steps": 4}})
    with caplog.at_level(logging.WARNING, logger="rewardsmith.store"):
        store = RunStore.open(
            tmp_path / "run", expected_config_hash=other.config_hash(), allow_config_change=True
        )
    store.close()
    assert "config change is allowed" in caplog.text


@SQLITE_ONLY
def test_a_store_elsewhere_leaves_a_pointer(tmp_path: Path, config: RunConfig) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    RunStore.create(tmp_path / "run", config, url=url).close()
    assert (tmp_path / "run" / "store.url").read_text().strip() == url
    with pytest.raises(StoreError, match="elsewhere.db; set REWARDSMITH_STORE_URL"):
        RunStore.open(tmp_path / "run")
    with RunStore.open(tmp_path / "run", url=url) as store:
        assert store.manifest().config_hash == config.config_hash()


@POSTGRES_ONLY
def test_the_password_stays_out_of_the_run_directory(
    tmp_path: Path, config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-Pa55word"
    url = make_url(os.environ["REWARDSMITH_STORE_URL"]).set(password=secret)
    monkeypatch.setenv("REWARDSMITH_STORE_URL", url.render_as_string(hide_password=False))
    with RunStore.create(tmp_path / "run", config) as store:
        store.enqueue_trial("baseline")
        assert secret not in store.url and secret not in repr(store.url)
    with RunStore.open(tmp_path / "run") as store:
        assert len(store.trials()) == 1
    recorded = (tmp_path / "run" / "store.url").read_text().strip()
    assert recorded == url.render_as_string(hide_password=True) and "***" in recorded
    for file in (tmp_path / "run").rglob("*"):
        assert not file.is_file() or secret.encode() not in file.read_bytes(), file


@POSTGRES_ONLY
def test_resume_without_the_url_names_the_variable(
    tmp_path: Path, config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunStore.create(tmp_path / "run", config).close()
    monkeypatch.delenv("REWARDSMITH_STORE_URL")
    with pytest.raises(StoreError, match="set REWARDSMITH_STORE_URL to its URL"):
        RunStore.open(tmp_path / "run")


@POSTGRES_ONLY
def test_a_url_that_points_elsewhere_is_a_clear_error(
    tmp_path: Path, config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunStore.create(tmp_path / "run", config).close()
    with fresh_database() as other:
        monkeypatch.setenv("REWARDSMITH_STORE_URL", other)
        with pytest.raises(StoreError) as info:
            RunStore.open(tmp_path / "run")
    message = str(info.value)
    assert message.startswith("REWARDSMITH_STORE_URL points at") and "holds no run store" in message
    assert "the run was created in" in message and "\n" not in message


@POSTGRES_ONLY
def test_runs_share_one_database_without_meeting(tmp_path: Path, config: RunConfig) -> None:
    other_config = parse_config({"name": "store-test", "seed": 1})
    with (
        RunStore.create(tmp_path / "a" / "run", config) as first,
        RunStore.create(tmp_path / "b" / "run-2", other_config) as second,
    ):
        assert first.schema != second.schema
        first.enqueue_trial("baseline")
        assert second.trials() == [] and second.config_hash == other_config.config_hash()
        assert second.enqueue_trial("baseline") == 1  # ids count per run
    with pytest.raises(StoreError, match="already exists"):  # same run name, same schema
        RunStore.create(tmp_path / "c" / "run", config)
