"""The run store: one run's candidates, trials, results and evaluations in one database.

A run lives in a directory (``runs/<run-id>/``) holding ``store.db`` (or ``store.url``, the
masked URL of a server database such as PostgreSQL that several machines share: the URL itself
comes from ``REWARDSMITH_STORE_URL``, see :mod:`rewardsmith.store._location`; one database may
hold many runs, a schema each), ``adapters/``, ``evals/`` and ``logs/``. Adapters and records
may live under ``search.artifact_root`` instead (see :mod:`rewardsmith.artifacts`). The API
follows optuna's split between a candidate (what to try), a trial (one run of a candidate set
with a config and a seed, and its state) and the trial's immutable result.

Crash safety: every write is one transaction, so a process killed at any instant (``kill -9``)
leaves the store as it was before or after that write. A trial's result and its COMPLETE state
are written together; a trial left RUNNING by a dead process is put back to PENDING by
:meth:`RunStore.recover`, and enqueueing the same trial again returns the existing one, so a
resumed search re-runs what was in flight and never trains a COMPLETE trial twice.

Fencing: each claim is an attempt with its own token. A worker passes its token to
:meth:`~RunStore.complete_trial` / :meth:`~RunStore.fail_trial` and checks
:meth:`~RunStore.attempt_is_current` as it trains, so an attempt that was recovered (its run
killed and resumed) can neither write an outcome nor overwrite the next attempt's; its files go to
its own :meth:`~RunStore.attempt_dir`, and the COMPLETE transaction records which one counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, exc, inspect, select
from sqlalchemy.orm import Session

from rewardsmith.config import RunConfig, parse_config
from rewardsmith.errors import ConfigError
from rewardsmith.store import _evaluations, _location, _monitors, _trials
from rewardsmith.store._artifacts import ArtifactsMixin
from rewardsmith.store._candidate_methods import CandidatesMixin
from rewardsmith.store._engine import (
    WRITE_OPTION,
    StaleAttemptError,
    StoreError,
    ensure_columns,
    make_engine,
    masked,
    read_stamp,
    schema_for,
)
from rewardsmith.store._trials import default_worker
from rewardsmith.store.manifest import build_manifest
from rewardsmith.store.records import Manifest, RewardMonitorRecord, Trial, TrialResult
from rewardsmith.store.schema import SCHEMA_VERSION, Base, RunRow, TrialRow, TrialState

log = logging.getLogger(__name__)

SUBDIRS = ("adapters", "evals", "logs")
URL_POINTER = _location.URL_POINTER


class RunStore(
    CandidatesMixin,
    _trials.AttemptsMixin,
    _evaluations.EvaluationsMixin,
    _monitors.MonitorsMixin,
    ArtifactsMixin,
):
    """A run directory and its database. Build one with :meth:`create` or :meth:`open`.

    The candidate methods (``add_candidate``, ``set_verdict``, ``get_candidate``,
    ``candidates``, ``verdicts``) come from
    :class:`~rewardsmith.store._candidate_methods.CandidatesMixin`; the attempt methods
    (``claim_trial``, ``next_pending``, ``record_worker``, ``attempt_is_current``,
    ``release_attempt``, ``recover``) from
    :class:`~rewardsmith.store._trials.AttemptsMixin`; the evaluation methods
    (``add_evaluation``, ``evaluation``, ``evaluations``) from
    :class:`~rewardsmith.store._evaluations.EvaluationsMixin`; ``reward_monitors`` from
    :class:`~rewardsmith.store._monitors.MonitorsMixin`; the paths and artifact methods
    (``attempt_dir``, ``publish``, ``local_path``) from
    :class:`~rewardsmith.store._artifacts.ArtifactsMixin`.
    """

    def __init__(self, run_dir: Path, engine: Engine, url: str) -> None:
        self.run_dir = run_dir
        self.url = masked(url)
        #: The run's schema in a shared server database (None: SQLite, one file per run).
        self.schema = schema_for(url, run_dir)
        self._base = engine
        if self.schema is not None:
            engine = engine.execution_options(schema_translate_map={None: self.schema})
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def create(
        cls,
        run_dir: str | Path,
        config: RunConfig,
        *,
        url: str | None = None,
        manifest: Manifest | None = None,
    ) -> RunStore:
        """Create the run directory and a new store for ``config``.

        ``manifest`` defaults to :func:`~rewardsmith.store.manifest.build_manifest` without data
        fingerprints; its config hash must be ``config``'s. The database is ``url``, else
        ``REWARDSMITH_STORE_URL``, else ``<run_dir>/store.db``. Raises :class:`StoreError` when
        a store of this run already exists there.
        """
        run_dir = Path(run_dir)
        manifest = manifest or build_manifest(config, run_id=run_dir.name)
        if manifest.config_hash != config.config_hash():
            raise StoreError("the manifest was built for another config (config hashes differ)")
        run_dir.mkdir(parents=True, exist_ok=True)
        for sub in SUBDIRS:
            (run_dir / sub).mkdir(exist_ok=True)
        db_url = _location.url_for_create(run_dir, url)
        store = cls(run_dir, make_engine(db_url), db_url)
        try:
            store._initialise(manifest)
        except BaseException:
            store.close()
            raise
        _location.record(run_dir, db_url)
        log.info("created run store %s (%s)", run_dir, store.url)
        return store

    def _initialise(self, manifest: Manifest) -> None:
        with self._guard(), self._writer.begin() as conn:
            if self.schema is not None:
                quoted = conn.dialect.identifier_preparer.quote(self.schema)
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            if inspect(conn).has_table(RunRow.__tablename__, schema=self.schema):
                raise StoreError(f"a run store already exists at {self.run_dir} ({self.url})")
            Base.metadata.create_all(conn)
            with Session(bind=conn) as session:
                session.add(manifest.to_row(SCHEMA_VERSION))
                session.flush()

    @classmethod
    def open(
        cls,
        run_dir: str | Path,
        *,
        url: str | None = None,
        expected_config_hash: str | None = None,
        allow_config_change: bool = False,
    ) -> RunStore:
        """Open an existing store.

        Raises :class:`StoreError` (a :class:`~rewardsmith.errors.RewardsmithError`) with one
        line when there is no store, the database is unreadable or not a rewardsmith store, its
        schema version differs, or ``expected_config_hash`` differs from the stored hash (unless
        ``allow_config_change``, which only logs a warning). A store made before the
        ``evaluations`` or ``reward_monitors`` table, or the trials' attempt columns, existed gets
        them added. The database is ``url``, else the one the run directory names (a server's
        URL then comes from ``REWARDSMITH_STORE_URL``, a clear error without it), see
        :mod:`rewardsmith.store._location`.
        """
        run_dir = Path(run_dir)
        db_url, source = _location.url_for_open(run_dir, url)
        store = cls(run_dir, make_engine(db_url), db_url)
        try:
            with store._guard(), store._engine.connect() as conn:
                stored = read_stamp(conn, store.url, store.schema)
        except StoreError as error:
            store.close()
            raise _location.not_found(run_dir, db_url, source, error) from error
        try:
            store._check(stored, expected_config_hash, allow_config_change)
        except BaseException:
            store.close()
            raise
        return store

    def _check(self, stored: str, expected_hash: str | None, allow_change: bool) -> None:
        if expected_hash is not None and expected_hash != stored:
            message = (
                f"run store {self.run_dir} was made with config {stored[:12]}, "
                f"not {expected_hash[:12]}"
            )
            if not allow_change:
                raise StoreError(message + "; refusing to mix runs (start a new run directory)")
            log.warning("%s; continuing because the config change is allowed", message)
        with self._guard():
            _evaluations.ensure_table(self._engine, self._writer, schema=self.schema)
            _monitors.ensure_table(self._engine, self._writer, self.schema)
            ensure_columns(self._engine, self._writer, TrialRow.__table__, self.schema)

    def close(self) -> None:
        """Release the database connections (the store can be reopened later)."""
        self._base.dispose()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- sessions

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn database failures (corrupt file, lost server) into one-line StoreErrors."""
        try:
            yield
        except exc.IntegrityError:
            raise
        except exc.DataError as error:  # a server refusing a value, e.g. too long for its column
            detail = str(getattr(error, "orig", error)).splitlines()[0]
            raise StoreError(f"run store {self.url} refused a value: {detail}") from error
        except exc.DatabaseError as error:
            detail = str(getattr(error, "orig", error)).splitlines()[0]
            raise StoreError(f"run store {self.url} is unreadable: {detail}") from error

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._guard(), Session(self._engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session whose work commits as one transaction, or not at all."""
        with self._guard(), Session(self._writer) as session, session.begin():
            yield session

    # ---------------------------------------------------------------- manifest

    def manifest(self) -> Manifest:
        """The run's manifest."""
        with self._read() as session:
            return Manifest.from_row(session.scalars(select(RunRow)).one())

    def config(self) -> RunConfig:
        """The run's config, re-validated."""
        data = self.manifest().config
        try:
            return parse_config(data, source=f"{self.run_dir} (stored config)")
        except ConfigError as error:
            raise StoreError(str(error)) from None

    @property
    def config_hash(self) -> str:
        """The stored config hash."""
        return self.manifest().config_hash

    # ---------------------------------------------------------------- trials

    def enqueue_trial(
        self,
        kind: str,
        candidate_names: Sequence[str] = (),
        weights: Mapping[str, float] | None = None,
        seed: int | None = None,
        config: RunConfig | Mapping[str, Any] | None = None,
        *,
        attrs: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a PENDING trial and return its id; an identical trial returns the existing id.

        Identity is (kind, candidate set with weights, seed, config hash), whatever the trial's
        state, so a resumed search never trains a trial twice. ``config`` defaults to the run's
        config and ``seed`` to the config's seed; every candidate must be stored already.
        """
        cfg = self.config() if config is None else _trials.as_config(config)
        spec = _trials.TrialSpec.build(kind, candidate_names, weights, seed, cfg, attrs)
        try:
            with self._write() as session:
                return _trials.insert_or_get(session, spec, time.time())
        except exc.IntegrityError:  # another process inserted the same trial concurrently
            with self._read() as session:
                return _trials.find(session, spec.key)

    def trial(self, trial_id: int) -> Trial:
        """A snapshot of one trial; :class:`StoreError` when there is none."""
        with self._read() as session:
            return Trial.from_row(_trials.get(session, trial_id))

    def trials(self, state: TrialState | str | None = None, kind: str | None = None) -> list[Trial]:
        """Trials in id order, optionally filtered by state and kind."""
        query = select(TrialRow).order_by(TrialRow.id)
        if state is not None:
            query = query.where(TrialRow.state == TrialState(state))
        if kind is not None:
            query = query.where(TrialRow.kind == kind)
        with self._read() as session:
            return [Trial.from_row(row) for row in session.scalars(query)]

    def complete_trial(
        self,
        trial_id: int,
        result: TrialResult,
        *,
        monitors: Sequence[RewardMonitorRecord] = (),
        token: str | None = None,
    ) -> None:
        """Write ``result`` (and the trial's reward ``monitors``) and mark the RUNNING trial
        COMPLETE, in one transaction; the result's paths say which files count. Under an
        artifact root those files are published first and their URIs recorded.

        Raises :class:`StoreError` when the trial is not RUNNING (a COMPLETE trial's result is
        immutable; a trial recovered to PENDING belongs to whoever claims it next), and
        :class:`StaleAttemptError` when ``token`` is given and is not the current attempt's.
        """
        now = time.time()
        result.to_row(trial_id, now)  # encodes before any upload: bad data fails early
        monitor_rows = _monitors.encode(trial_id, monitors, now)
        row = self._published(result).to_row(trial_id, now)
        with self._write() as session:
            _trials.transition(
                session, trial_id, TrialState.COMPLETE, now, from_states=("RUNNING",), token=token
            )
            session.add(row)
            session.add_all(monitor_rows)

    def fail_trial(
        self,
        trial_id: int,
        reason: str,
        *,
        monitors: Sequence[RewardMonitorRecord] = (),
        token: str | None = None,
    ) -> None:
        """Mark a PENDING or RUNNING trial FAILED with ``reason`` (a failure is data), with what
        its reward ``monitors`` found, in one transaction. With ``token``, only that current
        RUNNING attempt can fail it (:class:`StaleAttemptError` otherwise)."""
        now = time.time()
        monitor_rows = _monitors.encode(trial_id, monitors, now)
        with self._write() as session:
            _trials.transition(
                session,
                trial_id,
                TrialState.FAILED,
                now,
                from_states=("PENDING", "RUNNING"),
                reason=reason,
                token=token,
            )
            session.add_all(monitor_rows)

    def requeue_trial(self, trial_id: int) -> None:
        """Put a FAILED trial back to PENDING (a deliberate retry); its reason and its reward
        monitor records are cleared."""
        with self._write() as session:
            _trials.transition(session, trial_id, TrialState.PENDING, None, from_states=("FAILED",))
            _monitors.delete(session, trial_id)

    # ---------------------------------------------------------------- results

    def result(self, trial_id: int) -> TrialResult | None:
        """The result of a COMPLETE trial, None for any other state."""
        with self._read() as session:
            row = _trials.result_row(session, trial_id)
            return None if row is None else TrialResult.from_row(row)

    def leaderboard(
        self, metric: str = "f1", *, kinds: Sequence[str] | None = ("screen",)
    ) -> list[tuple[Trial, TrialResult]]:
        """COMPLETE trials (of ``kinds``; None for all) best first by ``metrics[metric]``.

        Ties break on accuracy (the paper ranks by F1 then accuracy), then on trial id; trials
        without the metric come last.
        """
        with self._read() as session:
            pairs = _trials.completed(session, kinds)
            ranked = [(Trial.from_row(t), TrialResult.from_row(r)) for t, r in pairs]
        return sorted(ranked, key=lambda pair: _trials.rank_key(pair, metric))


__all__ = ["RunStore", "StaleAttemptError", "StoreError", "default_worker"]
