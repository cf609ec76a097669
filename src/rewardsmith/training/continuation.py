"""Continuing a trial's GRPO run in a later trial (successive halving's rungs).

A halving rung trains ``rung_steps`` of a ``budget``-step run: the trainer is built with the
whole budget as ``max_steps`` (so the learning-rate schedule is the uninterrupted run's) and
:class:`StopAfter` stops it after ``rung_steps`` optimizer steps, saving a Trainer checkpoint
(adapter, optimizer, scheduler, RNG states, trainer state). :func:`keep_checkpoint` moves that
checkpoint into the saved adapter's directory (:data:`RESUME_DIR`), so it travels with the adapter
wherever the run's artifacts are published. The next rung's trial resumes from it with
``trainer.train(resume_from_checkpoint=...)``: its step count, schedule and data order go on
exactly where the previous rung stopped.

A trial says what it continues in its attributes (see :func:`plan`): ``budget`` (the full
screening budget), ``continues`` (the id of the trial whose run it goes on with); its config's
``grpo.max_steps`` is the step it trains up to.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)

#: The directory inside a saved adapter that holds the checkpoint a later rung resumes from.
RESUME_DIR = "trainer_checkpoint"


class StopAfter(TrainerCallback):
    """Stop training after ``steps`` optimizer steps and save a checkpoint there."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.steps:
            control.should_save = True
            control.should_training_stop = True
        return control


def keep_checkpoint(trainer_dir: str | Path, steps: int, adapter_dir: str | Path) -> Path:
    """Move the checkpoint saved at ``steps`` under ``trainer_dir`` into ``adapter_dir``."""
    source = Path(trainer_dir) / f"checkpoint-{steps}"
    if not source.is_dir():
        raise FileNotFoundError(f"no trainer checkpoint at {source}")
    target = Path(adapter_dir) / RESUME_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(source), str(target))
    return target


@dataclass(frozen=True)
class Continuation:
    """How a trial trains: up to ``max_steps`` of the schedule, stopping early at ``stop_at``
    (None: runs to the end), resuming from the checkpoint ``resume_from`` (None: from scratch)."""

    max_steps: int
    stop_at: int | None = None
    resume_from: str | None = None
    #: the continued trial's training curves (its steps come before this trial's)
    curves: dict[str, Any] | None = None

    def whole_curves(self, own: dict[str, Any]) -> dict[str, Any]:
        """``own`` curves preceded by the continued run's, so that a continued trial's curves
        cover the whole run, like an uninterrupted one's. Entries named ``_...`` (records,
        not curves) are not carried over.

        >>> Continuation(4, curves={"loss": [[1, 0.5], [2, 0.4]], "_timings": {}}).whole_curves(
        ...     {"loss": [(3, 0.3), (4, 0.2)]})
        {'loss': [[1, 0.5], [2, 0.4], (3, 0.3), (4, 0.2)]}
        """
        out = dict(own)
        for name, points in (self.curves or {}).items():
            if name.startswith("_") or not isinstance(points, list):
                continue
            first = min((p[0] for p in own.get(name, [])), default=None)
            before = [p for p in points if first is None or p[0] < first]
            out[name] = before + list(own.get(name, []))
        return out


def plan(store: Any, trial: Any, steps: int) -> Continuation:
    """The :class:`Continuation` of ``trial``, whose config trains ``steps`` GRPO steps.

    Without a ``budget`` attribute above ``steps`` and without ``continues``, the plain run:
    ``max_steps = steps``. A continued trial must be COMPLETE with its checkpoint kept (else
    :class:`RuntimeError`: the trial fails with that reason).
    """
    attrs = trial.attrs or {}
    budget = attrs.get("budget")
    budget = budget if isinstance(budget, int) and budget > steps else steps
    stop_at = steps if budget > steps else None
    continues = attrs.get("continues")
    if not isinstance(continues, int):
        return Continuation(budget, stop_at)
    result = store.result(continues)
    if result is None or not result.adapter_path:
        raise RuntimeError(f"trial {trial.id} continues trial {continues}, which has no result")
    adapter = store.local_path(result.adapter_path)
    checkpoint = Path(adapter) / RESUME_DIR
    if not checkpoint.is_dir():
        raise RuntimeError(f"trial {trial.id}: no checkpoint of trial {continues} at {checkpoint}")
    log.info("trial %d continues trial %d from %s", trial.id, continues, checkpoint)
    return Continuation(budget, stop_at, str(checkpoint), dict(result.curves or {}))
