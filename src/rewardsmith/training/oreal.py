"""OREAL's outcome-reward objective as a small subclass of TRL's ``GRPOTrainer`` (arXiv 2502.06781).

The minimum faithful objective of REFERENCE.md section 4:

* **binary outcome**: a completion is *correct* when its weighted reward sum is positive and it
  was not truncated (no EOS, the definition TRL uses for ``mask_truncated_completions``). With
  :func:`oreal_outcome_reward` (+1 correct, -1 wrong) as the only reward this is exactly its
  value; the trainer re-derives +1/-1 from it so truncated samples are always wrong.
* **RLOO advantages** within each prompt's group: ``A_i = r_i - mean_{j != i} r_j``, not divided
  by the std (:func:`rloo_advantages`).
* **loss** (:func:`oreal_loss`): ``-A * log p`` per token, i.e. an advantage-weighted NLL on
  correct samples (behaviour cloning of positives) and REINFORCE on wrong ones, whose term is
  weighted by ``eta`` (0.5); positive and negative tokens are normalised separately
  ``L = sum_pos / n_pos + eta * sum_neg / n_neg``; plus ``beta`` (0.01) times the k3 KL to the
  frozen initial policy, averaged over the completion tokens in the loss.
* **strictly on-policy**: one optimisation pass per generation (``num_iterations = 1``, each
  generation batch consumed within one optimizer step), hence no importance ratio and no clipping.
* optional ``one_pos_one_neg``: per prompt, only the first correct and the first wrong sample
  stay in the loss; groups without both outcomes leave it (their RLOO advantages are all zero).

What is reused from TRL unchanged: generation, reward computation and logging, the reference
log-probs (with a PEFT model and ``beta > 0``, TRL disables the adapters to get the base model's
log-probs, so no second copy of the model is kept), batching and gradient accumulation. What is
overridden: ``_calculate_rewards`` (to remember the rewards and truncation of the batch),
``_generate_and_score_completions`` (to replace the advantages) and ``_compute_loss``.
With gradient accumulation each micro-batch is normalised on its own and divided by the number of
accumulation steps, as TRL's ``grpo`` loss does. Text-only: vLLM and multimodal inputs are not
supported.

Out of scope: OREAL's optional token-level reward model (a policy copy with a scalar head trained
with BCE on the outcome, whose running-mean sigmoid weights tokens); every token weighs 1 here.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from accelerate.utils import gather
from trl import GRPOConfig, GRPOTrainer

from rewardsmith.rewards.reflection import get_oreal_outcome_reward, oreal_outcome_reward

log = logging.getLogger(__name__)

DEFAULT_ETA = 0.5
DEFAULT_BETA = 0.01
# GRPOConfig fields OREAL fixes; merge them into a trial's grpo arguments.
OREAL_DEFAULTS: dict[str, Any] = {"beta": DEFAULT_BETA, "num_iterations": 1}


def rloo_advantages(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Leave-one-out advantages: each reward minus the mean of the others in its group.

    ``rewards`` holds consecutive groups of ``num_generations``; a group of one has no baseline
    and gets advantage 0.

    >>> rloo_advantages(torch.tensor([1.0, -1.0, -1.0, 1.0]), 4)
    tensor([ 1.3333, -1.3333, -1.3333,  1.3333])
    """
    if num_generations < 2:
        return torch.zeros_like(rewards)
    grouped = rewards.view(-1, num_generations)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (num_generations - 1)
    return (grouped - others).view(-1)


def one_pos_one_neg_mask(is_correct: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Per group, keep the first correct and the first wrong sample; groups lacking either: none.

    >>> one_pos_one_neg_mask(torch.tensor([False, True, True, True, True, True]), 3)
    tensor([ True,  True, False, False, False, False])
    """
    grouped = is_correct.bool().view(-1, num_generations)
    first_pos = torch.nn.functional.one_hot(grouped.int().argmax(1), num_generations).bool()
    first_neg = torch.nn.functional.one_hot((~grouped).int().argmax(1), num_generations).bool()
    both = (grouped.any(1) & (~grouped).any(1)).unsqueeze(1)
    return ((first_pos | first_neg) & both).view(-1)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(policy || reference): ``exp(d) - d - 1`` with ``d = ref - logp``.

    >>> k3_kl(torch.tensor([-1.0]), torch.tensor([-1.0]))
    tensor([0.])
    """
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1.0


def oreal_loss(
    logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    is_correct: torch.Tensor,
    mask: torch.Tensor,
    *,
    eta: float = DEFAULT_ETA,
    beta: float = DEFAULT_BETA,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """OREAL's loss on a batch and its detached statistics.

    ``logps``, ``ref_logps`` and ``mask`` are ``(B, T)`` per-token log-probs of the policy and the
    reference and the 0/1 loss mask; ``advantages`` is ``(B,)`` or ``(B, T)``; ``is_correct``
    ``(B,)``. ``ref_logps`` may be ``None`` only when ``beta == 0``. The loss is
    ``sum_pos(-A logp) / n_pos + eta * sum_neg(-A logp) / n_neg + beta * mean_mask(k3)``;
    an empty part contributes 0. Statistics: ``pos_loss``, ``neg_loss``, ``kl``, ``pos_tokens``,
    ``neg_tokens``.

    >>> lp = torch.tensor([[-1.0, -2.0], [-1.0, -1.0]])
    >>> loss, stats = oreal_loss(lp, lp, torch.tensor([1.0, -1.0]), torch.tensor([True, False]),
    ...                          torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    >>> round(loss.item(), 4), stats["pos_loss"].item(), stats["neg_loss"].item()
    (1.0, 1.5, -1.0)
    """
    if beta != 0.0 and ref_logps is None:
        raise ValueError("oreal_loss needs ref_logps when beta != 0")
    mask = mask.to(logps.dtype)
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    correct = is_correct.bool().unsqueeze(1)
    pos_mask, neg_mask = mask * correct, mask * ~correct
    per_token = -advantages.to(logps.dtype) * logps
    n_pos, n_neg = pos_mask.sum(), neg_mask.sum()
    pos_loss = (per_token * pos_mask).sum() / n_pos.clamp(min=1.0)
    neg_loss = (per_token * neg_mask).sum() / n_neg.clamp(min=1.0)
    loss = pos_loss + eta * neg_loss
    if ref_logps is not None:
        kl = (k3_kl(logps, ref_logps) * mask).sum() / mask.sum().clamp(min=1.0)
        if beta != 0.0:
            loss = loss + beta * kl
    else:
        kl = torch.zeros((), dtype=logps.dtype, device=logps.device)
    stats = {"pos_loss": pos_loss, "neg_loss": neg_loss, "kl": kl}
    stats = {k: v.detach() for k, v in stats.items()} | {"pos_tokens": n_pos, "neg_tokens": n_neg}
    return loss, stats


def oreal_config(**overrides: Any) -> GRPOConfig:
    """A ``GRPOConfig`` with OREAL's fixed fields (:data:`OREAL_DEFAULTS`) under ``overrides``."""
    return GRPOConfig(**{**OREAL_DEFAULTS, **overrides})


def _check_on_policy(args: GRPOConfig) -> None:
    """OREAL is strictly on-policy; refuse settings that reuse or delay a generation batch."""
    if args.num_iterations != 1:
        raise ValueError(f"OREAL is on-policy: num_iterations must be 1, got {args.num_iterations}")
    if args.gradient_accumulation_steps % args.steps_per_generation != 0:
        raise ValueError(
            "OREAL is on-policy: steps_per_generation "
            f"({args.steps_per_generation}) must divide gradient_accumulation_steps "
            f"({args.gradient_accumulation_steps})"
        )
    if args.use_vllm:
        raise ValueError("OrealTrainer does not support vLLM generation")


class OrealTrainer(GRPOTrainer):
    """``GRPOTrainer`` with OREAL's advantages and loss; see the module docstring.

    Takes ``GRPOTrainer``'s arguments plus ``eta`` (the negative-sample weight) and
    ``one_pos_one_neg``. The KL weight is ``args.beta`` (OREAL: 0.01, see :func:`oreal_config`).
    Logs ``oreal/{pos_loss,neg_loss,kl,pos_tokens,neg_tokens,accuracy,truncated}`` and ``kl``.
    """

    _tag_names = [*GRPOTrainer._tag_names, "oreal"]

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: GRPOConfig | None = None,
        *rest: Any,
        eta: float = DEFAULT_ETA,
        one_pos_one_neg: bool = False,
        **kwargs: Any,
    ) -> None:
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if args is not None:
            _check_on_policy(args)
        self.eta = eta
        self.one_pos_one_neg = one_pos_one_neg
        self._oreal_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        reward_funcs = oreal_outcome_reward if reward_funcs is None else reward_funcs
        super().__init__(model, reward_funcs, args, *rest, **kwargs)
        _check_on_policy(self.args)
        if self.beta == 0.0:
            log.info("OrealTrainer with beta = 0: no KL to the initial policy")

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(
            inputs, prompts, completions, completion_ids_list
        )
        ends = {*self.eos_token_ids, self._tokenizer.pad_token_id}
        truncated = torch.tensor(
            [int(bool(ids) and int(ids[-1]) not in ends) for ids in completion_ids_list],
            device=rewards_per_func.device,
        )
        # gathered like the rewards: the groups may span processes
        self._oreal_batch = (rewards_per_func, gather(truncated).bool())
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self._oreal_batch is None:
            raise RuntimeError("OrealTrainer: the batch was scored without _calculate_rewards")
        rewards_per_func, truncated = self._oreal_batch
        self._oreal_batch = None
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        weights = self.reward_weights.to(rewards_per_func.device)
        correct = ((rewards_per_func * weights).nansum(dim=1) > 0) & ~truncated
        advantages = rloo_advantages(correct.float() * 2.0 - 1.0, group)
        keep = one_pos_one_neg_mask(correct, group) if self.one_pos_one_neg else None
        n = len(inputs)
        local = slice(self.accelerator.process_index * n, (self.accelerator.process_index + 1) * n)
        output["advantages"] = advantages[local]
        output["is_correct"] = correct[local]
        if keep is not None:
            output["oreal_keep"] = keep[local]
        self._metrics[mode]["oreal/accuracy"].append(correct.float().mean().item())
        self._metrics[mode]["oreal/truncated"].append(truncated.float().mean().item())
        return output

    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1)
        )
        mask = completion_mask
        if "tool_mask" in inputs:
            mask = mask * inputs["tool_mask"]
        if "oreal_keep" in inputs:
            mask = mask * inputs["oreal_keep"].unsqueeze(1)
        loss, stats = oreal_loss(
            logps,
            inputs.get("ref_per_token_logps"),
            inputs["advantages"],
            inputs["is_correct"],
            mask,
            eta=self.eta,
            beta=self.beta,
        )
        mode = "train" if self.model.training else "eval"
        for key, value in stats.items():
            gathered = self.accelerator.gather(value.float().reshape(1))
            self._metrics[mode][f"oreal/{key}"].append(gathered.mean().item())
        if self.beta != 0.0:
            self._metrics[mode]["kl"].append(self._metrics[mode]["oreal/kl"][-1])
        if mode == "train":
            loss = loss / self.current_gradient_accumulation_steps
        return loss


__all__ = [
    "OREAL_DEFAULTS",
    "OrealTrainer",
    "get_oreal_outcome_reward",
    "k3_kl",
    "one_pos_one_neg_mask",
    "oreal_config",
    "oreal_loss",
    "oreal_outcome_reward",
    "rloo_advantages",
]
