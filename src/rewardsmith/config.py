"""Typed run configuration: one YAML recipe, validated before any model loads.

A :class:`RunConfig` holds every setting of a run in sections (``model``, ``task``, ``lora``,
``grpo``, ``rewards``, ``eval``, ``search``) plus the run's master ``seed``. Every section forbids
unknown keys, so a typo fails naming the field instead of being silently ignored.
:func:`load_config` reads a YAML file and turns any problem into a one-line
:class:`~rewardsmith.errors.ConfigError` such as
``configs/x.yaml: grpo.max_steps: must be > 0 (got -5)``.

Validation never builds, loads or downloads a model: local model paths are checked on disk,
embedded presets by name, and hub ids only by shape. :func:`grpo_kwargs` and :func:`lora_kwargs`
turn the config into plain keyword dicts for TRL's ``GRPOConfig`` and PEFT's ``LoraConfig``;
neither library is imported here.

>>> cfg = parse_config({"grpo": {"max_steps": 10}})
>>> cfg.grpo.max_steps, cfg.model.spec, len(cfg.config_hash())
(10, 'embedded', 64)
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rewardsmith.config_methods import (
    DEFAULT_STAGES,
    Float,
    Int,
    Objective,
    Section,
    StageSection,
    check_label_free,
    check_stages,
)
from rewardsmith.config_search import PAPER_ENSEMBLES, EnsembleSection, SearchSection
from rewardsmith.config_sections import (
    EvalSection,
    FindingKind,
    ModelSection,
    MonitorSection,
    RewardsSection,
    TaskSection,
)
from rewardsmith.config_trl import (  # grpo_kwargs and lora_kwargs are re-exported
    UniqueKeyLoader,
    grpo_kwargs,
    lora_kwargs,
)
from rewardsmith.errors import ConfigError

#: The seven projections of a Llama-style block (the paper's LoRA targets).
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SchedulerName = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
    "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay",
]  # fmt: skip
LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]
#: Fields that describe a run without changing what it computes: not in the config hash.
_COSMETIC_FIELDS = frozenset({"name", "assumptions"})
#: (section, field) added after runs were stored: left out of the config hash while at its
#: default, so a run stored before the field existed keeps its hash (and its trials' keys).
_LATER_FIELDS = (
    ("rewards", "monitor"),
    ("model", "load_in_4bit"),
    ("task", "prompt"),
    ("grpo", "optim"),
    ("search", "fixed_examples"),
    ("search", "replace_failed"),
    ("search", "replace_attempts"),
    ("search", "ensembles"),
    ("search", "screening"),
    ("search", "executor"),
    ("search", "ray_address"),
    ("search", "ray_resources"),
    ("search", "gpus"),
    ("search", "trials_per_gpu"),
    ("search", "cpus_per_trial"),
    ("search", "max_attempts"),
    ("search", "artifact_root"),
    ("grpo", "activation_checkpointing"),
    ("grpo", "generation"),
    ("eval", "backend"),
    ("eval", "gpu_memory_utilization"),
)
#: Optimisers a recipe may name (transformers' ``optim``); None keeps TRL's default.
OptimName = Literal["adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit"]
_Section = Section


class LoraSection(_Section):
    """The LoRA adapter trained by every trial."""

    r: Int = Field(8, gt=0)
    alpha: Int = Field(16, gt=0)
    dropout: Float = Field(0.0, ge=0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: list(ALL_PROJECTIONS)
    )

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not all(isinstance(v, str) and v for v in value):
            raise ValueError("module names must be non-empty strings")
        if not value:
            raise ValueError("must name at least one module")
        return value


class GenerationSection(_Section):
    """How GRPO generates its completions, mapped to TRL's vLLM options.

    ``backend``: ``hf`` (transformers ``generate``), ``vllm`` or ``auto`` (vLLM only when CUDA
    is present, vLLM imports, the model is not GGUF and the objective supports it; the choice
    and its reason are logged). ``mode``: ``colocate`` (an engine inside the trainer's process,
    sharing the GPU; ``gpu_memory_utilization`` of it) or ``server`` (a ``trl vllm-serve``
    process at ``server_base_url``).
    """

    backend: Literal["hf", "vllm", "auto"] = "auto"
    mode: Literal["colocate", "server"] = "colocate"
    gpu_memory_utilization: Float = Field(0.3, gt=0, le=1.0)
    server_base_url: str | None = None
    tensor_parallel_size: Int = Field(1, gt=0)
    enable_sleep_mode: bool = False


class GrpoSection(_Section):
    """GRPO optimisation settings; names follow TRL's ``GRPOConfig``."""

    max_steps: Int = Field(500, gt=0)
    learning_rate: Float = Field(5e-6, gt=0)
    lr_scheduler_type: SchedulerName = "cosine"
    warmup_ratio: Float = Field(0.1, ge=0, lt=1.0)
    weight_decay: Float = Field(0.1, ge=0)
    per_device_train_batch_size: Int = Field(1, gt=0)
    gradient_accumulation_steps: Int = Field(4, gt=0)
    num_generations: Int = Field(4, validate_default=True)  # checked against the batch
    max_completion_length: Int = Field(256, gt=0)
    temperature: Float = Field(1.0, gt=0)
    beta: Float = Field(0.0, ge=0)
    loss_type: LossType = "dapo"
    max_grad_norm: Float = Field(1.0, gt=0)
    logging_steps: Int = Field(1, gt=0)
    use_cpu: bool | Literal["auto"] = "auto"
    bf16: bool | Literal["auto"] = "auto"
    optim: OptimName | None = None  # None: TRL's default; 8-bit ones need bitsandbytes
    objective: Objective = "grpo"  # "oreal": arXiv 2502.06781's outcome-reward objective
    oreal_eta: Float = Field(0.5, ge=0)
    oreal_one_pos_one_neg: bool = False
    activation_checkpointing: bool = False  # gradient checkpointing: less memory, more time
    generation: GenerationSection = Field(default_factory=GenerationSection)

    @field_validator("num_generations")
    @classmethod
    def _divides_generation_batch(cls, n: int, info: ValidationInfo) -> int:
        # TRL 1.16 (GRPOConfig.__post_init__): generation_batch_size defaults to
        # per_device_train_batch_size * world_size * gradient_accumulation_steps and must be a
        # multiple of num_generations; num_generations >= 2. Checked for one process: a multiple
        # for one process stays a multiple for any world size.
        if n < 2:
            raise ValueError("must be >= 2 (GRPO needs a group to compute advantages)")
        per_device = info.data.get("per_device_train_batch_size")
        accum = info.data.get("gradient_accumulation_steps")
        if per_device is not None and accum is not None and (per_device * accum) % n:
            raise ValueError(
                f"must divide the generation batch per_device_train_batch_size * "
                f"gradient_accumulation_steps = {per_device} * {accum} = {per_device * accum}"
            )
        return n

    @field_validator("bf16")
    @classmethod
    def _no_bf16_on_cpu(cls, bf16: bool | str, info: ValidationInfo) -> bool | str:
        if bf16 is True and info.data.get("use_cpu") is True:
            raise ValueError("bf16 cannot be true with use_cpu: true (bf16 on CPU is slow, lossy)")
        return bf16


__all__ = [
    "ALL_PROJECTIONS",
    "PAPER_ENSEMBLES",
    "EnsembleSection",
    "EvalSection",
    "FindingKind",
    "GrpoSection",
    "LoraSection",
    "ModelSection",
    "MonitorSection",
    "RewardsSection",
    "RunConfig",
    "SearchSection",
    "TaskSection",
    "canonical_hash",
    "grpo_kwargs",
    "load_config",
    "lora_kwargs",
    "parse_config",
]


class RunConfig(_Section):
    """A whole run. ``name`` and ``assumptions`` are cosmetic: they do not enter
    :meth:`config_hash`.

    ``assumptions`` maps a dotted field path (``grpo.beta``) to why the recipe chose its value
    where the reproduced method does not say (e.g. a library default of its time); every path
    must name a field. The report shows them with the config.
    """

    name: str | None = None
    assumptions: dict[str, str] = Field(default_factory=dict)
    seed: Int = 3407
    model: ModelSection = Field(default_factory=ModelSection)
    task: TaskSection = Field(default_factory=TaskSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    grpo: GrpoSection = Field(default_factory=GrpoSection)
    rewards: RewardsSection = Field(default_factory=RewardsSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    search: SearchSection = Field(default_factory=SearchSection)
    stages: list[StageSection] = Field(default_factory=lambda: list(DEFAULT_STAGES))

    @field_validator("stages")
    @classmethod
    def _stage_order(cls, stages: list[StageSection]) -> list[StageSection]:
        return check_stages(stages)

    @field_validator("assumptions")
    @classmethod
    def _assumptions_name_fields(cls, assumptions: dict[str, str]) -> dict[str, str]:
        for path in assumptions:
            if not _is_field_path(path):
                raise ValueError(f"{path!r} names no config field")
        return assumptions

    @model_validator(mode="after")
    def _rewards_fit_mode(self) -> RunConfig:
        r = self.rewards
        try:
            check_label_free(r.use_base_rewards, r.builtin, r.label_free)
        except ValueError as exc:
            raise ValueError(f"rewards: {exc}") from None
        return self

    def hash_payload(self) -> dict[str, Any]:
        """The JSON-ready dict that :meth:`config_hash` digests (cosmetic fields removed, and
        fields added later removed while at their defaults)."""
        payload = self.model_dump(mode="json", exclude=set(_COSMETIC_FIELDS))
        for section, name in _LATER_FIELDS:
            info = type(getattr(self, section)).model_fields[name]
            default = info.get_default(call_default_factory=True)
            if getattr(getattr(self, section), name) == default:
                del payload[section][name]
        return payload

    def config_hash(self) -> str:
        """sha256 hex of the canonical JSON of :meth:`hash_payload`; stable across processes."""
        return canonical_hash(self.hash_payload())


def _is_field_path(path: str) -> bool:
    """Whether ``path`` (``section.field``, or a top-level field) names a RunConfig field."""
    model: type[BaseModel] = RunConfig
    parts = path.split(".")
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return False
        inner = info.annotation
        if i < len(parts) - 1:
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return False
            model = inner
    return True


def canonical_hash(data: Mapping[str, Any]) -> str:
    """sha256 hex of ``data`` as canonical JSON (sorted keys, no whitespace).

    >>> canonical_hash({"b": 1, "a": [1, 2]}) == canonical_hash({"a": [1, 2], "b": 1})
    True
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _field_names_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the section that ``loc`` (minus its last part) points into."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        annotation = model.model_fields.get(str(part))
        if annotation is None or not isinstance(annotation.annotation, type):
            return []
        if not issubclass(annotation.annotation, BaseModel):
            return []
        model = annotation.annotation
    return list(model.model_fields)


def _describe(error: Mapping[str, Any]) -> str:
    """One error of a ValidationError as ``field.path: message (got value)``."""
    loc = tuple(error["loc"])
    where = ".".join(str(p) for p in loc) or "<root>"
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _field_names_at(loc), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown field{hint}"
    if kind == "missing":
        return f"{where}: required"
    messages = {
        "greater_than": lambda: f"must be > {ctx.get('gt')}",
        "greater_than_equal": lambda: f"must be >= {ctx.get('ge')}",
        "less_than": lambda: f"must be < {ctx.get('lt')}",
        "less_than_equal": lambda: f"must be <= {ctx.get('le')}",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
    }
    message = messages[kind]() if kind in messages else str(error["msg"])
    message = message.removeprefix("Value error, ")
    got = repr(error.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{where}: {message} (got {got})"


def parse_config(data: Any, source: str = "<config>") -> RunConfig:
    """Validate a plain mapping into a :class:`RunConfig`.

    Raises :class:`ConfigError` with one line ``source: field.path: message (got value)``; when
    several fields are wrong the first is spelled out and the rest counted.
    """
    if data is None:
        raise ConfigError(f"{source}: the config is empty")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping, not {type(data).__name__}")
    try:
        return RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_describe(errors[0])}{more}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML recipe; every problem is a one-line :class:`ConfigError`.

    A missing file, malformed YAML or a repeated key (named with its line), a non-mapping
    document, an unknown key or a bad value all raise before anything else happens.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    return parse_config(data, source=str(path))
