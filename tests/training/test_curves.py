"""Curve recording and failure guards, on hand-made trainer logs."""

from types import SimpleNamespace

from rewardsmith.training.curves import CurveRecorder, FailureGuard


def _state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step)


def test_curve_recorder_keeps_components_and_format_rate() -> None:
    rec = CurveRecorder()
    control = SimpleNamespace(should_training_stop=False)
    logs = {
        "reward": 2.5,
        "rewards/match_format_exactly/mean": 1.5,
        "rewards/my_reward/std": 0.25,
        "completions/mean_length": 40.0,
        "frac_reward_zero_std": 0.5,
        "learning_rate": 1e-3,
        "loss": float("nan"),
    }
    rec.on_log(None, _state(3), control, logs=logs)
    assert rec.curves["reward"] == [(3, 2.5)]
    assert rec.curves["match_format_exactly/mean"] == [(3, 1.5)]
    assert rec.curves["my_reward/std"] == [(3, 0.25)]
    assert rec.curves["format_rate"] == [(3, 0.5)]  # 1.5 of a maximum 3.0
    assert rec.curves["completion_length"] == [(3, 40.0)] and rec.curves["frac_zero_std"]
    assert "loss" not in rec.curves and "learning_rate" not in rec.curves  # NaN dropped


def test_failure_guard_stops_on_nan_loss() -> None:
    guard = FailureGuard([], threshold=0.2)
    control = SimpleNamespace(should_training_stop=False)
    guard.on_log(None, _state(7), control, logs={"loss": float("nan")})
    assert control.should_training_stop and "nan at step 7" in guard.reason


def test_failure_guard_stops_past_the_failure_threshold() -> None:
    reward = SimpleNamespace(
        __name__="flaky", calls=10, failures=3, last_error="boom", failure_rate=0.3
    )
    guard = FailureGuard([reward], threshold=0.2)
    control = SimpleNamespace(should_training_stop=False)
    guard.on_step_end(None, _state(10), control)
    assert control.should_training_stop and "flaky failed 3/10" in guard.reason
    ok = FailureGuard(
        [SimpleNamespace(__name__="ok", calls=10, failures=1, last_error=None, failure_rate=0.1)],
        threshold=0.2,
    )
    control = SimpleNamespace(should_training_stop=False)
    ok.on_step_end(None, _state(10), control)
    assert not control.should_training_stop and ok.reason is None
