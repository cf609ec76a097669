"""OREAL's objective (arXiv 2502.06781, REFERENCE.md section 4): the loss on a hand-built batch,
RLOO advantages, one-positive-one-negative masking, and one real OrealTrainer step."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import pytest
import torch

import rewardsmith.training.oreal as oreal
from rewardsmith.training.oreal import (
    OrealTrainer,
    k3_kl,
    one_pos_one_neg_mask,
    oreal_config,
    oreal_loss,
    rloo_advantages,
)

# 2 prompts x 2 samples, 3 completion tokens each; -9.0 sits under the mask.
# outcomes +1, -1 | -1, +1 -> RLOO advantages (G = 2): 1 - (-1) = 2, -1 - 1 = -2, -2, 2
LOGPS = [[-1.0, -2.0, -3.0], [-0.5, -1.5, -9.0], [-2.0, -9.0, -9.0], [-1.0, -1.0, -9.0]]
MASK = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
CORRECT = [True, False, False, True]
ADVANTAGES = [2.0, -2.0, -2.0, 2.0]
# positive tokens: 3 + 2 = 5; sum(-A logp) = -2(-1 - 2 - 3) - 2(-1 - 1) = 12 + 4 = 16 -> 16/5 = 3.2
# negative tokens: 2 + 1 = 3; sum(-A logp) = 2(-0.5 - 1.5) + 2(-2) = -8 -> -8/3
# loss = 3.2 + 0.5 * (-8/3) = 1.866667 (a joint normalisation would give (16 - 0.5 * 8) / 8 = 1.5)
POS_LOSS, NEG_LOSS = 3.2, -8.0 / 3.0
LOSS = POS_LOSS + 0.5 * NEG_LOSS


def batch(requires_grad: bool = False):
    logps = torch.tensor(LOGPS, requires_grad=requires_grad)
    return logps, torch.tensor(ADVANTAGES), torch.tensor(CORRECT), torch.tensor(MASK)


def test_separate_normalisation_hand_computed():
    logps, adv, correct, mask = batch()
    loss, stats = oreal_loss(logps, logps.clone(), adv, correct, mask)  # ref == policy: KL 0
    assert loss.item() == pytest.approx(LOSS)
    assert stats["pos_loss"].item() == pytest.approx(POS_LOSS)
    assert stats["neg_loss"].item() == pytest.approx(NEG_LOSS)
    assert (stats["pos_tokens"].item(), stats["neg_tokens"].item()) == (5.0, 3.0)
    assert stats["kl"].item() == 0.0


def test_eta_weights_the_negative_part():
    logps, adv, correct, mask = batch()
    loss, _ = oreal_loss(logps, None, adv, correct, mask, eta=1.0, beta=0.0)
    assert loss.item() == pytest.approx(POS_LOSS + NEG_LOSS)


def test_gradient_signs_and_values():
    logps, adv, correct, mask = batch(requires_grad=True)
    loss, _ = oreal_loss(logps, logps.detach().clone(), adv, correct, mask)
    loss.backward()
    grad = logps.grad
    # a positive token: d/dlogp = -A / n_pos = -2/5 -> raising its log-prob lowers the loss
    assert grad[0, 0].item() == pytest.approx(-0.4) and grad[3, 1].item() == pytest.approx(-0.4)
    # a negative token: d/dlogp = eta * -A / n_neg = 0.5 * 2/3 -> raising it raises the loss
    assert grad[1, 0].item() == pytest.approx(1 / 3) and grad[2, 0].item() == pytest.approx(1 / 3)
    # masked tokens get no gradient
    assert grad[1, 2].item() == grad[2, 1].item() == grad[3, 2].item() == 0.0


def test_kl_term_hand_computed():
    logps, adv, correct, mask = batch()
    ref = logps.clone()
    ref[0, 0] += math.log(2.0)  # d = ln 2: k3 = e^d - d - 1 = 2 - ln 2 - 1 = 0.306853
    ref[1, 2] += 5.0  # a masked token's reference never counts
    loss, stats = oreal_loss(logps, ref, adv, correct, mask, beta=0.01)
    kl = (1.0 - math.log(2.0)) / 8.0  # averaged over the 8 completion tokens in the loss
    assert stats["kl"].item() == pytest.approx(kl)
    assert loss.item() == pytest.approx(LOSS + 0.01 * kl)
    assert oreal_loss(logps, ref, adv, correct, mask, beta=0.0)[0].item() == pytest.approx(LOSS)


def test_k3_is_zero_only_at_equality_and_pulls_back_to_the_reference():
    logps = torch.tensor([-1.0, -1.0, -1.0], requires_grad=True)
    ref = torch.tensor([-1.0, -0.5, -2.0])
    kl = k3_kl(logps, ref)
    assert kl[0].item() == 0.0 and (kl[1:] > 0).all()
    kl.sum().backward()  # d k3 / d logp = 1 - exp(ref - logp)
    expected = [0.0, 1 - math.exp(0.5), 1 - math.exp(-1.0)]
    assert logps.grad.tolist() == pytest.approx(expected)


def test_missing_reference_with_beta_fails():
    logps, adv, correct, mask = batch()
    with pytest.raises(ValueError, match="ref_logps"):
        oreal_loss(logps, None, adv, correct, mask, beta=0.01)


def test_token_level_advantages_are_accepted():
    logps, adv, correct, mask = batch()
    per_token = adv.unsqueeze(1).expand(-1, 3)
    assert oreal_loss(logps, None, per_token, correct, mask, beta=0.0)[0].item() == pytest.approx(
        LOSS
    )


RLOO = [
    # (rewards, group size, advantages); A_i = r_i - mean of the other rewards in the group
    ([1.0, -1.0, -1.0, 1.0], 4, [4 / 3, -4 / 3, -4 / 3, 4 / 3]),  # 1 - (-1 - 1 + 1)/3
    ([1.0, -1.0, -1.0, 1.0], 2, [2.0, -2.0, -2.0, 2.0]),  # two groups of two
    ([1.0, -1.0, -1.0, -1.0], 4, [2.0, -2 / 3, -2 / 3, -2 / 3]),  # -1 - (1 - 1 - 1)/3
    ([1.0, 1.0, -1.0, -1.0], 2, [0.0, 0.0, 0.0, 0.0]),  # all equal in a group: no signal
    ([1.0, -1.0], 1, [0.0, 0.0]),  # a group of one has no leave-one-out baseline
]


@pytest.mark.parametrize(("rewards", "group", "expected"), RLOO)
def test_rloo_advantages(rewards, group, expected):
    advantages = rloo_advantages(torch.tensor(rewards), group)
    assert advantages.tolist() == pytest.approx(expected)


def test_rloo_is_not_std_scaled():
    # GRPO would divide by the group std; RLOO keeps the reward scale
    assert rloo_advantages(torch.tensor([10.0, 0.0]), 2).tolist() == [10.0, -10.0]


ONE_POS_ONE_NEG = [
    ([True, True, False, False], 4, [True, False, True, False]),  # first of each outcome
    ([False, False, True, True], 2, [False, False, False, False]),  # single-outcome groups leave
    ([False, True, True, False], 2, [True, True, True, True]),  # a pair is kept whole
    ([True, False, True, True, False, True], 3, [True, True, False, True, True, False]),
]


@pytest.mark.parametrize(("correct", "group", "expected"), ONE_POS_ONE_NEG)
def test_one_pos_one_neg_mask(correct, group, expected):
    assert one_pos_one_neg_mask(torch.tensor(correct), group).tolist() == expected


def test_one_pos_one_neg_masks_samples_out_of_the_loss():
    logps, _, _, mask = batch()
    correct = torch.tensor([True, True, False, False])
    adv = rloo_advantages(correct.float() * 2 - 1, 4)
    keep = one_pos_one_neg_mask(correct, 4)  # samples 0 and 2
    loss, stats = oreal_loss(logps, None, adv, correct, mask * keep.unsqueeze(1), beta=0.0)
    # only rows 0 (3 positive tokens) and 2 (1 negative token) count; A = +-4/3
    expected = (4 / 3) * 6 / 3 + 0.5 * (4 / 3) * (-2.0) / 1
    assert loss.item() == pytest.approx(expected)
    assert (stats["pos_tokens"].item(), stats["neg_tokens"].item()) == (3.0, 1.0)
    changed = logps.clone()
    changed[1] -= 3.0  # a masked-out sample's log-probs do not matter
    again, _ = oreal_loss(changed, None, adv, correct, mask * keep.unsqueeze(1), beta=0.0)
    assert again.item() == pytest.approx(expected)


def test_on_policy_settings_are_enforced(tmp_path: Path):
    with pytest.raises(ValueError, match="num_iterations"):
        OrealTrainer(
            model=None, args=oreal_config(output_dir=str(tmp_path), use_cpu=True, num_iterations=2)
        )
    with pytest.raises(ValueError, match="eta"):
        OrealTrainer(model=None, eta=-0.5)


def test_oreal_config_defaults(tmp_path: Path):
    args = oreal_config(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert (args.beta, args.num_iterations) == (0.01, 1)


def test_module_doctests():
    result = doctest.testmod(oreal)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
@pytest.mark.parametrize("one_pos_one_neg", [False, True])
def test_one_real_oreal_step(tiny_model_dir: Path, tmp_path: Path, one_pos_one_neg: bool):
    from peft import LoraConfig
    from transformers import PrinterCallback

    from rewardsmith.models import load_model
    from rewardsmith.rewards import get_reward
    from rewardsmith.tasks import get_task
    from rewardsmith.training.trial import grpo_dataset

    torch.manual_seed(0)
    task = get_task("synthetic", n_train=8, n_val=1, n_test=1)
    loaded = load_model("embedded:tiny")
    args = oreal_config(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4,
        num_generations=2, max_completion_length=8, use_cpu=True, report_to="none",
        save_strategy="no", logging_steps=1, activation_checkpointing=False, disable_tqdm=True,
    )  # fmt: skip
    trainer = OrealTrainer(
        model=loaded.model,
        reward_funcs=[get_reward("oreal_outcome_reward")],
        args=args,
        train_dataset=grpo_dataset(task.train, task.prompt),
        processing_class=loaded.tokenizer,
        peft_config=LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8,
                               target_modules=["q_proj", "v_proj"]),
        one_pos_one_neg=one_pos_one_neg,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    # A fresh LoRA adapter is the identity; move it so the policy differs from the base model.
    # The KL can only be positive if the reference is the base with the adapter disabled.
    with torch.no_grad():
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    trainer.train()
    (logs,) = [entry for entry in trainer.state.log_history if "oreal/pos_loss" in entry]
    for key in (
        "oreal/pos_loss",
        "oreal/neg_loss",
        "oreal/kl",
        "oreal/pos_tokens",
        "oreal/neg_tokens",
        "oreal/accuracy",
        "oreal/truncated",
        "kl",
        "loss",
    ):
        assert key in logs and math.isfinite(logs[key]), key
    # the trainer's truncation (no EOS) agrees with TRL's own clipped-completion count; with
    # 8 tokens every completion is cut, so every sample is wrong and every RLOO advantage is 0
    assert logs["oreal/truncated"] == pytest.approx(logs["completions/clipped_ratio"]) == 1.0
    assert logs["oreal/accuracy"] == 0.0 and logs["oreal/pos_tokens"] == 0.0
    if one_pos_one_neg:  # no group has both outcomes: every sample leaves the loss
        assert logs["oreal/neg_tokens"] == 0.0 and logs["loss"] == 0.0
    else:  # all 4 x 8 tokens are negatives; zero advantages leave only beta * KL
        assert logs["oreal/neg_tokens"] == 32.0 and logs["oreal/kl"] > 1e-4
        assert logs["loss"] == pytest.approx(0.01 * logs["oreal/kl"], rel=1e-3)
        assert logs["kl"] == logs["oreal/kl"]
