"""Training curves and failure guards for a GRPO trial, as ``transformers`` callbacks.

:class:`CurveRecorder` keeps, at every logging step, what the search feeds back to the generator:
the mean and std of each reward component, the total reward, completion length, the format rate
(share of completions whose ``match_format_exactly`` fired, when that reward is present) and the
fraction of groups whose rewards had zero std (no learning signal).

:class:`FailureGuard` stops training when a sandboxed reward fails too often or the loss turns
NaN, and keeps the reason so the trial is recorded FAILED rather than crashing. It judges the
whole run's failure rate; :mod:`rewardsmith.training.monitor` watches each sandboxed reward over a
sliding window (failures, timeouts, latency, learning signal) and audits it on live batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from transformers import TrainerCallback

# TRL log keys -> curve names (reward components are added per reward name)
_KEYS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "completions/mean_length": "completion_length",
    "frac_reward_zero_std": "frac_zero_std",
    "loss": "loss",
    "kl": "kl",
}


class CurveRecorder(TrainerCallback):
    """Collect per-step curves from the trainer's logs into :attr:`curves` (name -> [(step, v)])."""

    def __init__(self, format_reward: str = "match_format_exactly", format_max: float = 3.0):
        self.curves: dict[str, list[tuple[int, float]]] = {}
        self._format_key = f"rewards/{format_reward}/mean"
        self._format_max = format_max

    def _add(self, name: str, step: int, value: Any) -> None:
        if isinstance(value, int | float) and math.isfinite(value):
            self.curves.setdefault(name, []).append((step, float(value)))

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - HF signature
        if not logs:
            return
        step = int(state.global_step)
        for key, value in logs.items():
            if key in _KEYS:
                self._add(_KEYS[key], step, value)
            elif key.startswith("rewards/") and key.endswith(("/mean", "/std")):
                self._add(key.removeprefix("rewards/"), step, value)
        if self._format_key in logs:
            self._add("format_rate", step, logs[self._format_key] / self._format_max)


class FailureGuard(TrainerCallback):
    """Stop training (and keep :attr:`reason`) on NaN losses or too many reward failures."""

    def __init__(self, sandboxed: Sequence[Any], threshold: float, min_calls: int = 3):
        self.sandboxed = list(sandboxed)
        self.threshold = threshold
        self.min_calls = min_calls
        self.reason: str | None = None

    def _check_rewards(self, min_calls: int) -> str | None:
        for reward in self.sandboxed:
            if reward.calls >= min_calls and reward.failure_rate > self.threshold:
                return (
                    f"reward {reward.__name__} failed {reward.failures}/{reward.calls} calls "
                    f"(> {self.threshold:.0%}); last error: {reward.last_error}"
                )
        return None

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - HF signature
        loss = (logs or {}).get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            self.reason = f"loss became {loss} at step {state.global_step}"
            control.should_training_stop = True

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF signature
        reason = self._check_rewards(self.min_calls)
        if reason is not None:
            self.reason = reason
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF signature
        # short runs may end before min_calls: judge the whole run once it is over
        if self.reason is None:
            self.reason = self._check_rewards(1)


class StepProgress(TrainerCallback):
    """Report ``(step, max_steps)`` after each optimizer step to a callback (for progress bars)."""

    def __init__(self, report: Callable[[int, int], None]):
        self.report = report

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - HF signature
        self.report(int(state.global_step), int(state.max_steps))
