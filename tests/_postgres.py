"""A throwaway PostgreSQL server for the store tests, started once per test process.

The server comes from ``pgserver`` (the ``postgres`` extra), which ships PostgreSQL's binaries
in its wheel and runs them as an unprivileged user when the tests run as root (PostgreSQL
refuses root). Each test gets a database of its own (:func:`fresh_database`), so runs that
happen to share a directory name never meet. When no server can be started, the tests that
need one are skipped with the reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: Mark a test of a store-backend-parametrized module as one about SQLite itself.
SQLITE_ONLY = pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)


@functools.cache
def server_url() -> str:
    """The admin URL (psycopg 3 driver) of this process's server; ``pytest.skip`` when none
    can be started. The server and its data directory go away when the process exits."""
    if not os.environ.get("XDG_RUNTIME_DIR"):  # pgserver keeps its lock files there
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="rewardsmith-xdg-")
    try:
        import pgserver
    except ImportError:
        pytest.skip("PostgreSQL tests need pgserver: pip install 'rewardsmith[postgres]'")
    data = tempfile.mkdtemp(prefix="rewardsmith-pg-")
    try:
        server = pgserver.get_server(data, cleanup_mode="delete")
    except Exception as error:  # noqa: BLE001 - any failure to start means "no server here"
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server: {type(error).__name__}: {error}")
    server_url.server = server  # keep a handle: the server stops when the last one goes
    return server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the server (dropped afterwards); yields its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin_url = server_url()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


def run_sql(store: object, statement: str) -> None:
    """Run raw SQL on ``store``'s database, ``{t}`` standing for the run's table prefix (its
    schema on PostgreSQL), e.g. to make a store look like an older one."""
    schema = getattr(store, "schema", None)
    prefix = f'"{schema}".' if schema else ""
    with store._base.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(statement.format(t=prefix))
