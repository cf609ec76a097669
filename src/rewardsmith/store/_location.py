"""Which database holds a run: an explicit URL, ``REWARDSMITH_STORE_URL``, or ``store.db``.

Workers write to the store themselves (every write is fenced by the attempt's token, so the
executor stays a thin launcher that local processes and Ray tasks share). A server database's
URL usually carries a password, so it reaches them through the environment, never through a
file: local workers inherit ``REWARDSMITH_STORE_URL``, Ray workers get it in their
``runtime_env``. The run directory keeps only the URL with the password masked
(``store.url``), so that ``--resume`` and ``report`` can say which database they need.

Order when creating: the ``url`` argument, else ``REWARDSMITH_STORE_URL``, else
``<run dir>/store.db``. When opening: the argument; else, for a run whose ``store.url`` names a
server, the environment variable (a clear error without it); else the run's ``store.db``; else
the environment variable (a worker on a machine without the run directory).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rewardsmith.store._engine import DB_FILE, StoreError, default_url, masked

log = logging.getLogger(__name__)

#: The environment variable that carries the store's URL (with its password) to every process.
STORE_URL_ENV = "REWARDSMITH_STORE_URL"
#: Written in the run directory when the database is not the default ``store.db``.
URL_POINTER = "store.url"


def env_url() -> str | None:
    """``REWARDSMITH_STORE_URL``, or None when unset or blank."""
    return os.environ.get(STORE_URL_ENV, "").strip() or None


def recorded_url(run_dir: Path) -> str | None:
    """The masked URL the run directory records, None when its store is ``store.db``."""
    pointer = Path(run_dir) / URL_POINTER
    return pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


def url_for_create(run_dir: Path, url: str | None) -> str:
    """The database of a new run: ``url``, else the environment's, else ``store.db``."""
    return url or env_url() or default_url(run_dir)


def record(run_dir: Path, url: str) -> None:
    """Note a non-default database in the run directory, password masked."""
    if url != default_url(run_dir):
        (Path(run_dir) / URL_POINTER).write_text(masked(url) + "\n", encoding="utf-8")


def url_for_open(run_dir: Path, url: str | None) -> tuple[str, str]:
    """The database of an existing run and where that URL came from (``"argument"``,
    ``"environment"`` or ``"run directory"``); :class:`StoreError` naming
    ``REWARDSMITH_STORE_URL`` when the run's database is a server and the variable is unset."""
    if url:
        return url, "argument"
    recorded, env = recorded_url(run_dir), env_url()
    if recorded is not None:
        if env is None:
            raise StoreError(
                f"the run store of {run_dir} is at {recorded}; set {STORE_URL_ENV} to its URL "
                "(with the password) and try again"
            )
        if masked(env) != recorded:
            log.warning(
                "%s is %s but the run recorded %s; trying it", STORE_URL_ENV, masked(env), recorded
            )
        return env, "environment"
    if (Path(run_dir) / DB_FILE).is_file():
        return default_url(run_dir), "run directory"
    if env is not None:
        return env, "environment"
    raise StoreError(f"no run store at {run_dir} (missing {DB_FILE})")


def not_found(run_dir: Path, url: str, source: str, error: StoreError) -> StoreError:
    """The error for a database that holds no store for this run, naming where the URL came
    from (so a ``REWARDSMITH_STORE_URL`` that points elsewhere is obvious)."""
    if source != "environment":
        return error
    recorded = recorded_url(run_dir)
    where = f" (the run was created in {recorded})" if recorded else ""
    return StoreError(
        f"{STORE_URL_ENV} points at {masked(url)}, which holds no run store for {run_dir}"
        f"{where}: {error}"
    )
