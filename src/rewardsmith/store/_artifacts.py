"""The run's files: its directories, each attempt's own, and artifacts under ``artifact_root``.

:class:`ArtifactsMixin` gives :class:`~rewardsmith.store.RunStore` its paths and the two halves
of :mod:`rewardsmith.artifacts`: the store publishes the files a result or an evaluation names
before recording it (so the database holds URIs that other machines can read), and
:meth:`~ArtifactsMixin.local_path` turns a recorded URI back into a local path for report,
export and test evaluation. With no ``search.artifact_root`` nothing moves: the recorded paths
are the run directory's, as they always were.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rewardsmith import artifacts
from rewardsmith.store._engine import StoreError
from rewardsmith.store.records import TrialResult

if TYPE_CHECKING:
    from rewardsmith.store.records import Manifest

log = logging.getLogger(__name__)

#: Where remote artifacts are downloaded to be read, under the run directory.
CACHE_DIR = "artifact-cache"
_UNSET = object()


class ArtifactsMixin:
    """Paths of a run and its artifacts; the host provides ``run_dir`` and ``manifest()``."""

    run_dir: Path
    _root: object = _UNSET

    if TYPE_CHECKING:

        def manifest(self) -> Manifest: ...

    @property
    def adapters_dir(self) -> Path:
        return self.run_dir / "adapters"

    @property
    def evals_dir(self) -> Path:
        return self.run_dir / "evals"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def artifact_root(self) -> str | None:
        """The run's ``search.artifact_root`` (None: the run directory), read once."""
        if self._root is _UNSET:
            search = self.manifest().config.get("search") or {}
            self._root = search.get("artifact_root") or None
        return self._root  # type: ignore[return-value]

    def attempt_dir(self, trial_id: int, attempt: int) -> Path:
        """Where attempt ``attempt`` (1, 2, ...) of a trial writes its files: each attempt has
        its own, so a stale attempt never writes over the one whose paths get recorded. Under
        a local (shared) artifact root the attempt writes there directly."""
        relative = Path("adapters") / f"trial-{trial_id}" / f"attempt-{attempt}"
        root = self.artifact_root
        base = None if root is None else artifacts.local_root(root)
        return (base or self.run_dir) / relative

    def _relative(self, path: Path) -> str:
        """Where ``path`` goes under the artifact root: its place in the run directory (or under
        a local root already), else a name of its own."""
        path = path.resolve()
        root = self.artifact_root
        for base in (self.run_dir.resolve(), artifacts.local_root(root) if root else None):
            if base is not None and path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        return f"files/{digest}/{path.name}"

    def artifact_uri(self, path: str | Path | None) -> str | None:
        """The URI that :meth:`publish` gives ``path`` (no I/O); ``path`` itself without a
        root, or when it is not a local file (already a URI)."""
        root = self.artifact_root
        if path is None or root is None or artifacts.is_url(str(path)):
            return None if path is None else str(path)
        return artifacts.join(root, self._relative(Path(path)))

    def publish(self, path: str | Path | None) -> str | None:
        """Put a local file or directory under the artifact root and return its URI; without a
        root, or for a URI, ``path`` unchanged (as a string)."""
        uri = self.artifact_uri(path)
        if uri is None or uri == str(path):
            return uri
        return artifacts.publish(Path(path), self.artifact_root or "", self._relative(Path(path)))

    def _published(self, result: TrialResult) -> TrialResult:
        """``result`` with its adapter and records published and their URIs in its paths."""
        if self.artifact_root is None:
            return result
        return replace(
            result,
            adapter_path=self.publish(result.adapter_path),
            eval_path=self.publish(result.eval_path),
        )

    def local_path(self, uri: str | None, *, missing_ok: bool = False) -> str | None:
        """A local path for a recorded artifact URI (None for None): local paths and
        ``file://`` as they are, remote URIs downloaded once into ``<run dir>/artifact-cache``.

        A remote artifact that cannot be fetched raises :class:`StoreError`, or gives None with
        ``missing_ok`` (e.g. a report's samples, which are optional).
        """
        if not uri:
            return None
        try:
            return str(artifacts.resolve(uri, self.run_dir / CACHE_DIR))
        except (OSError, RuntimeError) as error:
            if missing_ok:
                log.warning("cannot fetch artifact %s: %s", uri, error)
                return None
            raise StoreError(f"cannot fetch artifact {uri}: {error}") from error
