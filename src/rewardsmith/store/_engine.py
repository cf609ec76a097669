"""Engines for the run store: SQLite tuned for several local processes, or any SQLAlchemy URL.

A server database (PostgreSQL) may hold several runs: each run's tables live in a schema of its
own, named after the run directory (:func:`schema_for`), and statements reach it through
SQLAlchemy's ``schema_translate_map``, so the table definitions stay schema-free. On PostgreSQL
every state change is a conditional ``UPDATE`` under READ COMMITTED: a second writer of the same
row waits for the first to commit and re-checks its ``WHERE`` on the new row, so claims and the
attempt fencing hold without a database-wide write lock.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, ``synchronous=FULL``
and foreign keys on. pysqlite's own transaction handling is switched off so that every
transaction starts with an explicit ``BEGIN``, and write transactions with ``BEGIN IMMEDIATE``:
a writer takes the lock up front and waits on the busy timeout, instead of failing when it
upgrades a read snapshot that another process has meanwhile made stale.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, select
from sqlalchemy.engine import make_url

from rewardsmith.errors import RewardsmithError
from rewardsmith.store.schema import SCHEMA_VERSION, RunRow

log = logging.getLogger(__name__)
DB_FILE = "store.db"
#: Seconds a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 60.0
#: Execution option that marks a connection's transactions as writes.
WRITE_OPTION = "rewardsmith_write"


class StoreError(RewardsmithError):
    """The run store is missing, unreadable, from another config, or asked something invalid."""


class StaleAttemptError(StoreError):
    """A write for an attempt that is no longer the trial's current one (the trial was recovered
    and perhaps claimed again): the write did not happen, and that attempt should stop."""


def default_url(run_dir: Path) -> str:
    """``sqlite:///<run_dir>/store.db`` (absolute)."""
    return f"sqlite:///{(Path(run_dir) / DB_FILE).resolve()}"


def normalise_url(url: str) -> str:
    """``url`` with a plain ``postgresql://`` given the psycopg 3 driver (installed by the
    ``postgres`` extra) instead of SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def masked(url: str) -> str:
    """The URL with any password hidden (also in the query string), for messages, logs and the
    run directory.

    >>> masked("postgresql://me:s3cret@db/runs?sslpassword=x")
    'postgresql://me:***@db/runs?sslpassword=%2A%2A%2A'
    """
    parsed = make_url(url)
    hidden = {k: "***" for k in parsed.query if re.search("pass|secret|token", k, re.I)}
    return parsed.update_query_dict(hidden).render_as_string(hide_password=True)


def schema_for(url: str, run_dir: Path) -> str | None:
    """The schema holding the run of ``run_dir`` in the database at ``url``: None for SQLite
    (one database file per run), else ``rs_<run name>_<hash>``, a valid PostgreSQL identifier
    that two run names never share.

    >>> schema_for("postgresql://db/runs", Path("runs/Demo-1"))
    'rs_demo_1_162ac02b'
    """
    if make_url(url).get_backend_name() == "sqlite":
        return None
    name = Path(run_dir).name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"rs_{re.sub(r'[^a-z0-9_]', '_', name.lower())[:48]}_{digest}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL, else None (other backends, in-memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and explicit transactions."""
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(normalise_url(url), pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module doc)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def read_stamp(conn: Connection, label: str, schema: str | None = None) -> str:
    """The stored config hash, after checking that ``conn`` holds a readable rewardsmith store
    (in ``schema``) of this schema version (:class:`StoreError` otherwise)."""
    if not inspect(conn).has_table(RunRow.__tablename__, schema=schema):
        raise StoreError(f"{label} is not a rewardsmith run store (no run table)")
    row = conn.execute(select(RunRow.schema_version, RunRow.config_hash)).first()
    if row is None:
        raise StoreError(f"{label} has no run manifest (was its creation interrupted?)")
    if row.schema_version != SCHEMA_VERSION:
        raise StoreError(
            f"{label}: store schema version {row.schema_version}, "
            f"this rewardsmith reads version {SCHEMA_VERSION}"
        )
    return str(row.config_hash)


def ensure_columns(
    reader: Engine, writer: Engine, table: Table, schema: str | None = None
) -> list[str]:
    """Add the nullable columns of ``table`` that an older store lacks; return their names.

    The check runs on a read connection, so opening an up-to-date store writes nothing; the
    ``ALTER TABLE`` runs in a write transaction that checks again, so two processes opening the
    same old store at once cannot both add a column. A missing column that is not nullable
    raises :class:`StoreError` (that needs a schema version bump, not an in-place upgrade).
    """
    with reader.connect() as conn:
        present = {c["name"] for c in inspect(conn).get_columns(table.name, schema=schema)}
    if all(c.name in present for c in table.columns):
        return []
    added = []
    with writer.begin() as conn:
        present = {c["name"] for c in inspect(conn).get_columns(table.name, schema=schema)}
        quote = conn.dialect.identifier_preparer.quote
        target = quote(table.name) if schema is None else f"{quote(schema)}.{quote(table.name)}"
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreError(f"the store's {table.name} table lacks column {column.name}")
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {target} ADD COLUMN {quote(column.name)} {kind}")
            added.append(column.name)
    if added:
        log.info("added column(s) %s to the %s table of an older run store", added, table.name)
    return added
