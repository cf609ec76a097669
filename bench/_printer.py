"""The benchmarks' search observer: one timestamped line per phase, finished trial and message."""

from __future__ import annotations

import time
from typing import Any


class Printer:
    """Observer for the search: one line per finished trial, with the elapsed time."""

    def __init__(self, label: str, started: float) -> None:
        self.label, self.started = label, started

    def _say(self, text: str) -> None:
        minutes = (time.monotonic() - self.started) / 60
        print(f"[{minutes:5.1f} min] {self.label}: {text}", flush=True)

    def phase(self, text: str) -> None:
        self._say(text)

    def trials(self, trials: Any) -> None:
        pass

    def progress(self, trial_id: int, step: int, max_steps: int) -> None:
        pass

    def trial_done(self, trial: Any, result: Any) -> None:
        acc = "FAILED" if result is None else f"acc {result.metrics.get('accuracy', 0):.3f}"
        rung = trial.attrs.get("rung")
        where = "" if rung is None else f" rung {rung}"
        self._say(f"trial {trial.id} ({trial.kind}{where} {','.join(trial.candidates)}) {acc}")

    def message(self, text: str) -> None:
        self._say(text)
