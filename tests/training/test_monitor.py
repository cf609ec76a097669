"""Reward monitoring in training: scripted sandboxed rewards that behave for a few calls and then
misbehave, driven by direct calls on a GRPO-shaped batch (2 prompts x 4 generations)."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace

import pytest

from rewardsmith.config import MonitorSection, RunConfig, parse_config
from rewardsmith.rewards.base import check_answer
from rewardsmith.sandbox import SandboxedReward, SandboxPool
from rewardsmith.training.audit import AuditBatch, build_audit, corrupt, judge
from rewardsmith.training.monitor import (
    Finding,
    MonitorGuard,
    RewardMonitor,
    group_spreads,
)
from rewardsmith.training.trial import monitor_rewards


def _msg(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


RIGHT = "<thinking>2 * 3 = 6</thinking>\n<solution>6</solution>"
PROMPTS = [[{"role": "user", "content": "2 * 3?"}]] * 4 + [
    [{"role": "user", "content": "3*4?"}]
] * 4
COMPLETIONS = [
    _msg(RIGHT),
    _msg("<thinking>2 * 3 = 5</thinking>\n<solution>5</solution>"),
    _msg("six, I think"),
    _msg("<thinking>2 and 3 make 6</thinking>\n<solution>6</solution>"),
    _msg("<thinking>3 * 4 = 12</thinking>\n<solution>12</solution>"),
    _msg("<thinking>3 * 4 = 7</thinking>\n<solution>7</solution>"),
    _msg("<solution>12</solution>"),
    _msg("twelve"),
]
ANSWERS = ["6"] * 4 + ["12"] * 4
N = 3  # training-sized calls a scripted reward behaves for

# The scripted rewards count the trainer's calls (batches of 8; audits send at most 4 items
# with audit_samples=1) and pay 1.0 for the exact answer in the solution tags until then.
HEADER = """
seen = []

def NAME(prompts, completions, answer, **kwargs):
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    if len(completions) == 8:
        seen.append(1)
    good = [1.0 if "<solution>" + a + "</solution>" in t else 0.0 for t, a in zip(texts, answer)]
    if len(seen) <= N:
        return good
"""
MISBEHAVIOUR = {
    "good": "    return good\n",
    # pays for broken tags: garbage (tags broken) beats the correct answer
    "garbage": "    return [g + 2.0 * ('</solution>' not in t) for g, t in zip(good, texts)]\n",
    "constant": "    return [0.5 for t in texts]\n",
    "hangs": "    while True:\n        pass\n",
    "raises": "    raise ValueError('reward broke')\n",
}


def _code(name: str, behaviour: str) -> str:
    body = HEADER.replace("NAME", name).replace("N:", f"{N}:")
    return body + MISBEHAVIOUR[behaviour]


def _settings(**overrides) -> MonitorSection:
    kinds = ["garbage_above_correct", "failures", "timeouts", "no_signal", "slow"]
    base = {"window": 4, "min_calls": 2, "audit_every": 1, "audit_samples": 1, "fail_after": 2}
    return MonitorSection(**{**base, "fail_on": kinds, **overrides})


@pytest.fixture
def pool():
    """A pool per test: a scripted reward's call count lives in its worker."""
    with SandboxPool(max_workers=2) as fresh:
        yield fresh


def _monitor(pool, behaviour: str, *, timeout_s: float = 5.0, **settings) -> RewardMonitor:
    name = f"{behaviour}_reward"
    reward = SandboxedReward(_code(name, behaviour), name, pool=pool, timeout_s=timeout_s)
    return RewardMonitor(reward, _settings(**settings), checker=check_answer, group_size=4)


def _feed(monitor: RewardMonitor, calls: int, completions=COMPLETIONS) -> list:
    """``calls`` trainer-like calls, continuing the monitor's step count."""
    outputs = []
    for _ in range(calls):
        state = SimpleNamespace(global_step=monitor.calls)
        outputs.append(
            monitor(prompts=PROMPTS, completions=completions, answer=ANSWERS, trainer_state=state)
        )
    return outputs


def _drive(pool, behaviour: str, calls: int, **kwargs) -> tuple[RewardMonitor, list]:
    monitor = _monitor(pool, behaviour, **kwargs)
    return monitor, _feed(monitor, calls)


def test_a_good_reward_produces_no_findings(pool) -> None:
    monitor, outputs = _drive(pool, "good", 8)
    assert monitor.findings == [] and monitor.failure_reason() is None
    assert outputs[-1] == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    # every call was audited, and audits reach neither the reward's counters nor its values
    assert monitor.audits == 8 and monitor.audits_failed == 0
    assert monitor.reward.calls == 8 and monitor.reward.failures == 0
    summary = monitor.summary()
    assert summary["calls"] == 8 and summary["signal_calls"] == 8 and summary["findings"] == 0


def test_a_reward_that_starts_scoring_garbage_above_correct(pool) -> None:
    monitor, outputs = _drive(pool, "garbage", 6)
    assert outputs[0][0] == 1.0  # the live values are the reward's own, untouched
    kinds = [f.kind for f in monitor.findings]
    assert set(kinds) == {"garbage_above_correct"}
    first = monitor.findings[0]
    assert first.reward == "garbage_reward" and first.step == N + 1  # the first bad call
    assert "corrupted copies" in first.detail and 0 < first.value <= 1
    assert monitor.audits == 6 and monitor.audits_failed == 3
    reason = monitor.failure_reason()
    assert reason and "garbage_reward" in reason and "garbage_above_correct x3" in reason


def test_a_reward_that_goes_constant(pool) -> None:
    monitor, _ = _drive(pool, "constant", N + 8)
    (finding, *more) = monitor.findings
    assert finding.kind == "no_signal" and "had some until call 3" in finding.detail
    assert finding.step == N + 4  # a whole window (4 calls) without signal
    assert [(f.kind, f.step) for f in more] == [("no_signal", N + 8)]  # once per window
    assert monitor.failure_reason() is not None
    # no_signal does not fail a trial by default (sparse rewards are silent for a while)
    assert "no_signal" not in MonitorSection().fail_on


def test_a_reward_that_hangs(pool) -> None:
    monitor, outputs = _drive(pool, "hangs", N + 1, timeout_s=0.5)
    assert outputs[-1] == [None] * 8
    (finding,) = monitor.findings
    assert finding.kind == "timeouts" and "timed out on 1/4" in finding.detail
    assert monitor.reward.timeouts == 1
    # the worker restarted after the timeout (its call count too), so the reward behaves again;
    # a monitor with fail_after=1 fails the trial at the first finding
    strict = _settings(fail_after=1)
    monitor.settings = strict
    assert "timeouts x1" in monitor.failure_reason()


def test_a_reward_that_raises(pool) -> None:
    monitor, outputs = _drive(pool, "raises", N + 2)
    assert outputs[-1] == [None] * 8
    (finding,) = monitor.findings
    assert finding.kind == "failures" and "reward broke" in finding.detail
    assert finding.value == pytest.approx(2 / 4)
    assert monitor.audits == N  # a failed live call is not audited


def test_the_guard_stops_training_past_the_threshold(pool) -> None:
    monitor, _ = _drive(pool, "garbage", N + 1)
    guard = MonitorGuard([monitor])
    control = SimpleNamespace(should_training_stop=False)
    guard.on_step_end(None, SimpleNamespace(global_step=N + 1), control)
    assert not control.should_training_stop and guard.reason is None  # one finding of two
    _feed(monitor, 1)
    guard.on_step_end(None, SimpleNamespace(global_step=N + 2), control)
    assert control.should_training_stop and "misbehaved in training" in guard.reason


def test_fail_after_zero_only_records(pool) -> None:
    monitor, _ = _drive(pool, "garbage", N + 3, fail_after=0)
    assert len(monitor.findings) == 3 and monitor.failure_reason() is None


def test_audits_rebuild_correct_originals_when_none_is_correct(pool) -> None:
    wrong = [_msg("<thinking>hmm</thinking><solution>1</solution>")] * 8
    monitor = _monitor(pool, "garbage")
    _feed(monitor, N + 1, wrong)
    assert monitor.audits == N + 1
    assert "rebuilt with the gold answer" in monitor.findings[-1].detail


def test_label_free_batches_are_not_audited(pool) -> None:
    name = "plain_reward"
    code = f"def {name}(prompts, completions, **kwargs):\n    return [0.0] * len(completions)\n"
    monitor = RewardMonitor(
        SandboxedReward(code, name, pool=pool), _settings(), checker=check_answer
    )
    monitor(prompts=PROMPTS, completions=COMPLETIONS)
    assert monitor.audits == 0


def test_monitor_rewards_wraps_only_sandboxed_rewards_and_keeps_names(pool) -> None:
    sandboxed = SandboxedReward(_code("good_reward", "good"), "good_reward", pool=pool)
    funcs, monitors = monitor_rewards([check_answer, sandboxed], [sandboxed], MonitorSection())
    assert funcs[0] is check_answer and isinstance(funcs[1], RewardMonitor)
    assert [f.__name__ for f in funcs] == ["check_answer", "good_reward"] and monitors == [funcs[1]]
    off = MonitorSection(enabled=False)
    assert monitor_rewards([sandboxed], [sandboxed], off) == ([sandboxed], [])


@pytest.mark.parametrize(
    ("values", "prompts", "size", "expected"),
    [
        ([1.0, 1.0, 0.0, 2.0], None, 2, [0.0, 1.0]),  # TRL's layout: blocks of num_generations
        ([1.0, None, 1.0, 3.0], None, 2, [1.0]),  # a group with one score is not judged
        ([1.0, 3.0, 5.0], ["a", "a", "b"], 2, [1.0]),  # size does not divide: runs of prompts
        ([float("nan"), 2.0, 2.0], None, None, [0.0]),  # non-finite scores are left out
    ],
)
def test_group_spreads(values, prompts, size, expected) -> None:
    assert group_spreads(values, prompts, size) == expected


def test_corrupted_copies_are_not_correct_answers() -> None:
    text = "<thinking>3 * 4 = 12, so 12</thinking>\n<solution>12</solution>"
    copies = corrupt(text, rng=random.Random(1))
    scores = check_answer(None, list(copies.values()), ["12"] * 3)
    assert all(score < 3.0 for score in scores), copies


def test_build_audit_keeps_only_copies_below_correct() -> None:
    batch = build_audit(COMPLETIONS, ANSWERS, check_answer, samples=2)
    assert batch is not None and not batch.rebuilt
    assert batch.rows[0] == 0 and batch.texts[0] == RIGHT  # the first correct live completion
    originals = {o for o, _, _ in batch.pairs}
    assert all(batch.texts[o] in (RIGHT, COMPLETIONS[3][0]["content"]) for o in originals)
    assert len(batch.pairs) <= 6 and len(batch.texts) == len(batch.pairs) + len(originals)


def test_judge_counts_copies_above_their_original() -> None:
    batch = AuditBatch([0, 0, 0], ["ok", "a", "b"], [(0, 1, "shuffled"), (0, 2, "tags_broken")])
    assert judge(batch, [1.0, 1.0, 0.5]) == (2, {})  # ties are not above
    compared, above = judge(batch, [1.0, 1.5, None])
    assert compared == 1 and above == {"shuffled": 1}


def test_finding_round_trips_through_a_dict() -> None:
    finding = Finding("r", "no_signal", 7, "zero spread", 0.0)
    assert Finding.from_dict(finding.to_dict()) == finding


def test_monitor_settings_enter_the_config_hash_only_when_changed() -> None:
    default = parse_config({})
    assert "monitor" not in default.hash_payload()["rewards"]  # stored runs keep their hash
    assert default.rewards.monitor == MonitorSection()  # ... and still get the default monitor
    changed = parse_config({"rewards": {"monitor": {"audit_every": 2}}})
    assert changed.config_hash() != default.config_hash()
    assert changed.hash_payload()["rewards"]["monitor"]["audit_every"] == 2
    assert RunConfig.model_validate(changed.model_dump()).config_hash() == changed.config_hash()


@pytest.mark.parametrize(
    ("monitor", "message"),
    [
        ({"window": 3, "min_calls": 5}, "rewards.monitor.min_calls: must be <= window (3)"),
        ({"fail_on": ["nope"]}, "rewards.monitor.fail_on.0: must be one of"),
        ({"audit_evry": 2}, "did you mean 'audit_every'"),
    ],
)
def test_bad_monitor_settings_fail_naming_the_field(monitor, message) -> None:
    from rewardsmith.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"rewards": {"monitor": monitor}})
