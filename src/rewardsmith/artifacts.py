"""Where trial artifacts (adapters, evaluation records) live when several machines share a run.

A run's ``search.artifact_root`` is None (the run directory, today's layout), a path that every
machine mounts (``/shared/artifacts``, or ``file:///shared/artifacts``), or an fsspec URL
(``s3://bucket/runs``, ``gs://...``, ``memory://`` in tests). A worker writes its files locally
(:meth:`~rewardsmith.store.RunStore.attempt_dir`, which is already under a local root), then
:func:`publish` puts each file the result names under the root *before* the store records the
result, so a recorded URI always points at complete files. Readers call :func:`resolve`: a local
path or ``file://`` URI is used in place; a remote one is downloaded once into a cache directory.

The artifact's place under the root mirrors its place under the run directory
(``adapters/trial-3/attempt-1/adapter``), so attempts never overwrite each other.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def is_url(location: str) -> bool:
    """True for ``scheme://...`` (including ``file://``), False for a plain path.

    >>> is_url("s3://bucket/x"), is_url("/shared/x"), is_url("file:///shared/x")
    (True, False, True)
    """
    return "://" in location


def is_remote(location: str) -> bool:
    """True for a URL that is not ``file://``: its files must be copied to be read locally."""
    return is_url(location) and not location.startswith("file://")


def local_root(root: str) -> Path | None:
    """The directory of a local root (plain path or ``file://``), None for a remote one."""
    if is_remote(root):
        return None
    return Path(root.removeprefix("file://")).expanduser().resolve()


def join(root: str, relative: str) -> str:
    """``root`` + ``/`` + ``relative`` (POSIX separators), in the root's own form."""
    if not is_url(root):
        return str(Path(root).expanduser().resolve() / relative)
    return root.rstrip("/") + "/" + relative.lstrip("/")


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as error:  # pragma: no cover - fsspec comes with the remote extra
        raise RuntimeError(
            f"artifact root {url} needs fsspec: pip install 'rewardsmith[remote]'"
        ) from error
    return fsspec.core.url_to_fs(url)


def publish(local: Path, root: str, relative: str) -> str:
    """Put the file or directory ``local`` at ``root``/``relative`` and return its URI.

    A local root gets a copy (nothing when ``local`` is already there); a remote one an upload,
    file by file, so a retried upload overwrites rather than nests. Raises ``FileNotFoundError``
    when ``local`` does not exist.
    """
    local = Path(local)
    if not local.exists():
        raise FileNotFoundError(f"cannot publish {local}: no such file or directory")
    uri = join(root, relative)
    base = local_root(root)
    if base is not None:
        target = base / relative
        if target.resolve() != local.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            if local.is_dir():
                shutil.copytree(local, target, dirs_exist_ok=True)
            else:
                shutil.copy2(local, target)
        return uri
    fs, path = _filesystem(uri)
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for file in files:
        remote = path if file == local else f"{path}/{file.relative_to(local).as_posix()}"
        fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(file), remote)
    log.info("published %s to %s (%d file(s))", local, uri, len(files))
    return uri


def resolve(uri: str, cache_dir: Path) -> Path:
    """A local path holding the artifact at ``uri``.

    Plain paths and ``file://`` URIs are returned as paths (existing or not: the caller
    decides what a missing file means); a remote URI is downloaded into ``cache_dir`` the first
    time (atomically: a half-finished download is never reused) and read from there afterwards.
    """
    if not is_remote(uri):
        return Path(uri.removeprefix("file://"))
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "artifact"
    target = Path(cache_dir) / hashlib.sha256(uri.encode()).hexdigest()[:16] / name
    if target.exists():
        return target
    fs, path = _filesystem(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
    try:
        if fs.isdir(path):
            for remote in fs.find(path):
                local = staging / name / remote[len(path) :].lstrip("/")
                local.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(remote, str(local))
            (staging / name).mkdir(exist_ok=True)
        else:
            fs.get_file(path, str(staging / name))
        (staging / name).rename(target)
    except FileExistsError:  # another process finished the same download first
        pass
    except OSError as error:
        if not target.exists():
            raise
        log.debug("concurrent download of %s: %s", uri, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("downloaded %s to %s", uri, target)
    return target
