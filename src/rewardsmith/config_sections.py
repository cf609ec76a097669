"""Config sections for the model, the task, the rewards and evaluation (see
:mod:`rewardsmith.config`, which re-exports them)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from rewardsmith.config_methods import Float, Int
from rewardsmith.config_methods import Section as _Section
from rewardsmith.errors import ConfigError

__all__ = [
    "EvalSection",
    "FindingKind",
    "ModelSection",
    "MonitorSection",
    "RewardsSection",
    "TaskSection",
]


class ModelSection(_Section):
    """The policy: ``embedded[:preset]``, a ``.gguf`` file, a model directory or a hub id.

    ``load_in_4bit`` trains LoRA on a 4-bit (NF4, bitsandbytes) copy of the base model, as
    the paper's Unsloth code did; it needs a CUDA device and the ``bitsandbytes`` package.
    """

    spec: str = "embedded"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    load_in_4bit: bool = False

    @field_validator("spec")
    @classmethod
    def _known_model(cls, spec: str) -> str:
        spec = spec.strip()
        if not spec:
            raise ValueError("must not be empty")
        if spec == "embedded" or spec.startswith("embedded:"):
            from rewardsmith.bootstrap import PRESETS

            preset = spec.split(":", 1)[1] if ":" in spec else "default"
            if preset not in PRESETS:
                raise ValueError(
                    f"unknown embedded preset {preset!r}; choose one of {list(PRESETS)}"
                )
            return spec
        from rewardsmith.models import resolve_model_path

        try:  # local checks only for paths; a hub id is returned unchanged, never fetched
            resolve_model_path(spec)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return spec


class TaskSection(_Section):
    """The task: a name from :data:`rewardsmith.tasks.TASKS` and its loader's options.

    The policy's system prompt is the named ``prompt`` (:data:`rewardsmith.tasks.SYSTEM_PROMPTS`:
    ``default``, or ``paper`` for arXiv 2605.02073's exact text), or free text in
    ``system_prompt`` (with ``{reasoning_start}``-style tag placeholders).
    """

    name: str = "synthetic"
    data_dir: str | None = None
    prompt: str = "default"
    system_prompt: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt")
    @classmethod
    def _known_prompt(cls, prompt: str) -> str:
        from rewardsmith.tasks import SYSTEM_PROMPTS

        if prompt not in SYSTEM_PROMPTS:
            raise ValueError(f"unknown prompt; choose one of {', '.join(SYSTEM_PROMPTS)}")
        return prompt

    @field_validator("system_prompt")
    @classmethod
    def _one_prompt(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is not None and info.data.get("prompt", "default") != "default":
            raise ValueError("give task.prompt or task.system_prompt, not both")
        return text

    @field_validator("name")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from rewardsmith.tasks import TASKS

        if name not in TASKS:
            raise ValueError(f"unknown task; choose one of {', '.join(sorted(TASKS))}")
        return name

    @field_validator("data_dir")
    @classmethod
    def _data_dir_exists(cls, data_dir: str | None, info: ValidationInfo) -> str | None:
        if data_dir is None:
            return None
        if info.data.get("name") not in (None, "gsm8k"):
            raise ValueError(f"only the gsm8k task reads a data_dir, not {info.data['name']!r}")
        if not Path(data_dir).expanduser().is_dir():
            raise ValueError("directory not found")
        return data_dir

    @field_validator("options")
    @classmethod
    def _known_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from rewardsmith.tasks import SyntheticConfig, load_gsm8k

        name = info.data.get("name")
        valid = {
            "synthetic": set(SyntheticConfig.__dataclass_fields__),
            "gsm8k": set(inspect.signature(load_gsm8k).parameters) - {"path", "prompt"},
        }.get(str(name))
        unknown = sorted(set(options) - valid) if valid is not None else []
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r} for {name!r}; valid: {sorted(valid)}")
        if name == "synthetic":
            try:
                SyntheticConfig(**options).validate()
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return options

    def task_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`rewardsmith.tasks.get_task` (name excluded)."""
        kwargs: dict[str, Any] = dict(self.options)
        if self.data_dir is not None:
            kwargs["data_dir"] = self.data_dir
        if self.system_prompt is not None:
            kwargs["system_prompt"] = self.system_prompt
        if self.prompt != "default":
            kwargs["prompt"] = self.prompt
        return kwargs


#: What :class:`~rewardsmith.training.monitor.RewardMonitor` can find about a reward in training.
FindingKind = Literal["failures", "timeouts", "slow", "no_signal", "garbage_above_correct"]


class MonitorSection(_Section):
    """Watching each sandboxed reward while it trains (:mod:`rewardsmith.training.monitor`).

    Over the last ``window`` (10) calls, judged once ``min_calls`` (5) are in: a failed-call
    share above ``failure_rate`` (0.3), a timed-out share above ``timeout_rate`` (0.1), a p95
    latency above ``latency_p95_s`` (1.0 s) and zero within-group spread in every scored call
    are findings, each kind reported at most once per window. Every ``audit_every``-th (5th) call
    (0: never) corrupted copies of up to ``audit_samples`` (4) correct live completions are
    scored too; a copy scored above its original is a ``garbage_above_correct`` finding. A trial
    fails once one reward has ``fail_after`` (3) findings of the kinds in ``fail_on`` (0: record
    only). Sparse rewards can legitimately give no signal for a while, so ``no_signal`` (like
    ``slow``) is recorded and fed back but does not fail a trial by default.
    """

    enabled: bool = True
    window: Int = Field(10, gt=0)
    min_calls: Int = Field(5, gt=0)
    failure_rate: Float = Field(0.3, ge=0, le=1.0)
    timeout_rate: Float = Field(0.1, ge=0, le=1.0)
    latency_p95_s: Float = Field(1.0, gt=0)
    audit_every: Int = Field(5, ge=0)
    audit_samples: Int = Field(4, gt=0)
    fail_after: Int = Field(3, ge=0)
    fail_on: list[FindingKind] = Field(
        default_factory=lambda: ["garbage_above_correct", "failures", "timeouts"]
    )

    @field_validator("min_calls")
    @classmethod
    def _fits_window(cls, min_calls: int, info: ValidationInfo) -> int:
        window = info.data.get("window")
        if window is not None and min_calls > window:
            raise ValueError(f"must be <= window ({window})")
        return min_calls


class RewardsSection(_Section):
    """Which rewards a trial sums and how sandboxed reward failures are tolerated.

    ``builtin`` adds registry rewards by name (e.g. ``format_length_reward``); ``label_free``
    trains without the gold answer (see :mod:`rewardsmith.config_methods`); ``monitor`` watches
    sandboxed rewards during training (:class:`MonitorSection`).
    """

    use_base_rewards: bool = True
    builtin: list[str] = Field(default_factory=list)
    label_free: bool = False
    weights: dict[str, Float] = Field(default_factory=dict)
    failure_threshold: Float = Field(0.2, ge=0, le=1.0)
    timeout_s: Float = Field(5.0, gt=0)
    monitor: MonitorSection = Field(default_factory=MonitorSection)


class EvalSection(_Section):
    """Greedy evaluation; ``selection`` is the split candidates are ranked on."""

    max_new_tokens: Int = Field(256, gt=0)
    batch_size: Int = Field(32, gt=0)
    extraction: Literal["paper", "flexible"] = "paper"
    selection: Literal["val", "test"] = "val"
    limit: Int | None = Field(None, gt=0)
    # hf: transformers generate; vllm: one engine per GPU with each trial's adapter as a
    # LoRARequest; auto: vllm only where it can run (CUDA, vllm importable, not GGUF, not
    # 4-bit). See rewardsmith.backends; the backend is recorded with each evaluation.
    backend: Literal["hf", "vllm", "auto"] = "auto"
    # the share of the GPU the evaluation engine may take (vLLM's gpu_memory_utilization)
    gpu_memory_utilization: Float = Field(0.5, gt=0, le=1.0)
