"""Typed config: bad values fail naming the field, recipes load, hashes are stable, TRL/PEFT
kwargs are accepted by the real libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rewardsmith.config import (
    ALL_PROJECTIONS,
    RunConfig,
    grpo_kwargs,
    load_config,
    lora_kwargs,
    parse_config,
)
from rewardsmith.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "configs" / "paper.yaml"
DEMO = REPO / "configs" / "demo.yaml"

BAD_VALUES = [
    # (config, field that must be named, a fragment of the message)
    ({"grpo": {"max_steps": -5}}, "grpo.max_steps", "must be > 0 (got -5)"),
    ({"grpo": {"max_steps": 0}}, "grpo.max_steps", "must be > 0"),
    ({"grpo": {"max_steps": True}}, "grpo.max_steps", "not a boolean"),  # YAML `yes`
    ({"grpo": {"max_steps": 2.5}}, "grpo.max_steps", "fractional"),
    ({"grpo": {"learning_rate": 0}}, "grpo.learning_rate", "must be > 0"),
    ({"grpo": {"learning_rate": -1e-5}}, "grpo.learning_rate", "must be > 0"),
    ({"grpo": {"learning_rate": float("nan")}}, "grpo.learning_rate", "finite"),
    ({"grpo": {"warmup_ratio": 1.5}}, "grpo.warmup_ratio", "must be < 1"),
    ({"grpo": {"num_generations": 1}}, "grpo.num_generations", "must be >= 2"),
    # 1 x 4 completions per generation batch cannot hold whole groups of 3 (TRL's rule)
    ({"grpo": {"num_generations": 3}}, "grpo.num_generations", "must divide"),
    (
        {"grpo": {"per_device_train_batch_size": 3, "gradient_accumulation_steps": 1}},
        "grpo.num_generations",
        "3 * 1 = 3",
    ),
    ({"grpo": {"lr_scheduler_type": "cosinus"}}, "grpo.lr_scheduler_type", "must be one of"),
    ({"grpo": {"use_cpu": True, "bf16": True}}, "grpo.bf16", "use_cpu"),
    ({"grpo": {"max_step": 5}}, "grpo.max_step", "did you mean 'max_steps'"),
    ({"trainer": {}}, "trainer", "unknown field"),
    ({"model": {"spec": "./no/such/model"}}, "model.spec", "not found"),
    ({"model": {"spec": "/no/such/model.gguf"}}, "model.spec", "GGUF file not found"),
    ({"model": {"spec": "embedded:huge"}}, "model.spec", "unknown embedded preset"),
    ({"model": {"spec": ""}}, "model.spec", "must not be empty"),
    ({"task": {"name": "mmlu"}}, "task.name", "unknown task"),
    ({"task": {"options": {"n_vall": 3}}}, "task.options", "unknown option 'n_vall'"),
    ({"task": {"options": {"min_steps": 3, "max_steps": 2}}}, "task.options", "min_steps"),
    ({"task": {"data_dir": "/tmp"}}, "task.data_dir", "only the gsm8k task"),
    ({"task": {"name": "gsm8k", "data_dir": "/no/such/dir"}}, "task.data_dir", "not found"),
    ({"lora": {"r": 0}}, "lora.r", "must be > 0"),
    ({"lora": {"dropout": 1.0}}, "lora.dropout", "must be < 1"),
    ({"lora": {"target_modules": []}}, "lora.target_modules", "at least one"),
    ({"rewards": {"failure_threshold": 1.2}}, "rewards.failure_threshold", "<= 1"),
    ({"rewards": {"timeout_s": 0}}, "rewards.timeout_s", "must be > 0"),
    ({"rewards": {"weights": {"check_answer": float("inf")}}}, "rewards.weights", "finite"),
    ({"eval": {"extraction": "loose"}}, "eval.extraction", "'paper' or 'flexible'"),
    ({"eval": {"selection": "train"}}, "eval.selection", "'val' or 'test'"),
    ({"eval": {"limit": 0}}, "eval.limit", "must be > 0"),
    ({"search": {"rank_metric": "loss"}}, "search.rank_metric", "must be one of"),
    ({"search": {"ensemble_sizes": [2, 2]}}, "search.ensemble_sizes", "distinct"),
    ({"search": {"ensemble_sizes": []}}, "search.ensemble_sizes", "at least one"),
    (
        {"search": {"rounds": 1, "candidates_per_round": 3, "ensemble_sizes": [4]}},
        "search.ensemble_sizes",
        "exceeds",
    ),  # fmt: skip
    # defaults are checked too: the paper's seven need more than 1 x 3 candidates
    (
        {"search": {"rounds": 1, "candidates_per_round": 3, "control_k": 1}},
        "search.ensembles",
        "'top-5' needs more than the 3 candidates",
    ),  # fmt: skip
    ({"search": {"ensembles": []}}, "search.ensembles", "at least one"),
    (
        {"search": {"ensembles": [{"name": "a", "k": 1}, {"name": "a", "k": 2}]}},
        "search.ensembles",
        "distinct",
    ),  # fmt: skip
    ({"search": {"ensembles": [{"name": "a", "rule": "top"}]}}, "search.ensembles", "needs k"),
    (
        {"search": {"ensembles": [{"name": "a", "rule": "best", "k": 1}]}},
        "search.ensembles",
        "must be one of",
    ),  # fmt: skip
    ({"search": {"replace_attempts": 0}}, "search.replace_attempts", "must be > 0"),
    ({"task": {"prompt": "fancy"}}, "task.prompt", "unknown prompt"),
    ({"task": {"prompt": "paper", "system_prompt": "Hi"}}, "task.system_prompt", "not both"),
    ({"grpo": {"optim": "adam"}}, "grpo.optim", "must be one of"),
    ({"assumptions": {"grpo.betta": "x"}}, "assumptions", "names no config field"),
    (
        {"search": {"rounds": 1, "candidates_per_round": 4, "ensemble_sizes": [2]}},
        "search.control_k",
        "exceeds the 4 candidates",
    ),
    ({"seed": "abc"}, "seed", "valid integer"),
]


@pytest.mark.parametrize(("data", "field", "fragment"), BAD_VALUES)
def test_bad_value_names_the_field(data: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="x.yaml")
    message = str(info.value)
    assert message.startswith(f"x.yaml: {field}"), message
    assert fragment in message
    assert "\n" not in message


def test_several_errors_are_counted_on_one_line() -> None:
    with pytest.raises(ConfigError, match=r"grpo\.max_steps: .* \(and 1 more\)$"):
        parse_config({"grpo": {"max_steps": -1, "learning_rate": -1}})


def test_paper_recipe_matches_the_reference() -> None:
    # the part-1 items are checked one by one in tests/test_paper_recipe.py
    cfg = load_config(PAPER)
    assert cfg.model.spec == "meta-llama/Llama-3.2-3B-Instruct"
    assert (cfg.lora.r, cfg.lora.alpha) == (32, 32)
    assert tuple(cfg.lora.target_modules) == ALL_PROJECTIONS
    g = cfg.grpo
    assert (g.learning_rate, g.lr_scheduler_type, g.warmup_ratio, g.weight_decay) == (
        5e-6,
        "cosine",
        0.1,
        0.1,
    )
    assert (g.num_generations, g.max_grad_norm, g.max_steps, cfg.seed) == (4, 1.0, 500, 3407)
    assert (cfg.eval.max_new_tokens, cfg.eval.limit, cfg.eval.selection) == (256, None, "test")
    assert cfg.task.name == "gsm8k"
    s = cfg.search
    assert (s.rounds, s.candidates_per_round, len(s.ensemble_plan())) == (5, 10, 7)
    assert (s.ensemble_steps, s.final_seeds, s.control_k) == (300, 3, 5)


def test_demo_recipe_is_small_and_embedded() -> None:
    cfg = load_config(DEMO)
    assert (cfg.model.spec, cfg.task.name, cfg.eval.selection) == ("embedded", "synthetic", "val")
    assert cfg.lora.r == 8 and cfg.grpo.num_generations == 4
    assert cfg.grpo.max_completion_length <= 128 and cfg.grpo.max_steps <= 60
    assert cfg.eval.limit == 100
    s = cfg.search
    # at most three ensemble trials, as before named ensembles (the demo's time budget)
    plan = s.ensemble_plan()
    assert (s.rounds, s.candidates_per_round, len(plan), s.control_k) == (2, 4, 3, 2)
    assert [e.name for e in plan] == ["top-2", "top-4", "diverse-rounds"]
    assert all(s.steps_of(e) == s.ensemble_steps == cfg.grpo.max_steps for e in plan)
    assert 1 <= s.final_seeds <= 3


def test_ensemble_sizes_are_shorthand_for_top_k() -> None:
    demo = load_config(DEMO).model_dump(mode="json")
    demo["search"]["ensemble_sizes"] = [1, 2]  # replaces the recipe's named ensembles
    s = parse_config(demo).search
    assert [(e.name, e.rule, e.k) for e in s.ensemble_plan()] == [
        ("top-1", "top", 1),
        ("top-2", "top", 2),
    ]
    assert s.ensembles is None
    assert [e.name for e in parse_config({}).search.ensemble_plan()][-2:] == [
        "diverse-rounds",
        "correctness",
    ]  # neither given: the paper's seven


def test_fields_added_later_keep_old_hashes() -> None:
    # a run stored before these fields existed re-parses to the same hash (and trial keys)
    base = parse_config({}).model_dump(mode="json")
    later = [
        ("task", "prompt"),
        ("model", "load_in_4bit"),
        ("grpo", "optim"),
        ("search", "ensembles"),
        ("search", "replace_failed"),
        ("search", "replace_attempts"),
        ("search", "fixed_examples"),
    ]
    for section, name in later:
        old = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        del old[section][name]
        del old["assumptions"]
        assert parse_config(old).config_hash() == parse_config(base).config_hash(), name
    noted = parse_config({"assumptions": {"grpo.beta": "a guess"}})
    assert noted.config_hash() == parse_config({}).config_hash()  # cosmetic


def test_validating_embedded_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    parse_config({"model": {"spec": "embedded"}})
    parse_config({"model": {"spec": "embedded:tiny"}})
    assert not (tmp_path / "cache").exists()  # no model was built, nothing was cached


def test_model_spec_forms(tmp_path: Path) -> None:
    assert parse_config({"model": {"spec": "org/some-model"}}).model.spec == "org/some-model"
    (tmp_path / "config.json").write_text("{}")
    assert parse_config({"model": {"spec": str(tmp_path)}}).model.spec == str(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="model.spec: .*no config.json"):
        parse_config({"model": {"spec": str(empty)}})


def test_gsm8k_data_dir_and_options_validate(gsm8k_dir: Path) -> None:
    cfg = parse_config({"task": {"name": "gsm8k", "data_dir": str(gsm8k_dir), "options": {}}})
    assert cfg.task.task_kwargs() == {"data_dir": str(gsm8k_dir)}
    with pytest.raises(ConfigError, match="task.options: unknown option 'n_train'"):
        parse_config({"task": {"name": "gsm8k", "options": {"n_train": 5}}})


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 1\ngrpo:\n  max_steps: 10\n  learning_rate: [1, 2\nlora: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:")
    line = int(message[len(str(path)) + 1 :].split(":", 1)[0])
    assert 4 <= line <= 5  # the unclosed list opens on line 4; the parser notices on line 5
    assert "invalid YAML" in message


def test_repeated_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("grpo:\n  max_steps: 10\n  learning_rate: 1.0e-4\n  max_steps: 20\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:4: invalid YAML: duplicate key 'max_steps'"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "the config is empty"), ("- 1\n- 2\n", "must be a mapping, not list")],
)
def test_empty_or_non_mapping_yaml(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_bad_value_in_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("grpo:\n  max_steps: -5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: grpo.max_steps: must be > 0 (got -5)"


def test_config_hash_is_stable_and_ignores_the_name() -> None:
    a = parse_config({"name": "a", "grpo": {"max_steps": 10, "learning_rate": 1e-4}})
    b = parse_config({"grpo": {"learning_rate": 1e-4, "max_steps": 10}, "name": "b"})
    assert a.config_hash() == b.config_hash()
    assert len(a.config_hash()) == 64
    assert parse_config({"grpo": {"max_steps": 11}}).config_hash() != a.config_hash()
    assert RunConfig.model_validate(a.model_dump()).config_hash() == a.config_hash()


def test_config_hash_is_the_same_in_another_process() -> None:
    code = (
        "from rewardsmith.config import load_config; "
        f"print(load_config({str(DEMO)!r}).config_hash())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == load_config(DEMO).config_hash()


def test_precision_is_cpu_safe(tmp_path: Path) -> None:
    cfg = load_config(DEMO)
    cpu = grpo_kwargs(cfg, output_dir=tmp_path, cuda=(False, False))
    assert (cpu["use_cpu"], cpu["bf16"], cpu["fp16"]) == (True, False, False)
    gpu = grpo_kwargs(cfg, output_dir=tmp_path, cuda=(True, True), seed=7, max_steps=3)
    assert (gpu["use_cpu"], gpu["bf16"], gpu["seed"], gpu["max_steps"]) == (False, True, 7, 3)
    old_gpu = grpo_kwargs(cfg, output_dir=tmp_path, cuda=(True, False))
    assert old_gpu["bf16"] is False
    forced = parse_config({"grpo": {"bf16": True}})
    with pytest.raises(ConfigError, match="grpo.bf16"):
        grpo_kwargs(forced, output_dir=tmp_path, cuda=(False, False))


@pytest.mark.parametrize("recipe", [PAPER, DEMO], ids=["paper", "demo"])
def test_kwargs_are_accepted_by_trl_and_peft(recipe: Path, tmp_path: Path) -> None:
    from peft import LoraConfig
    from trl import GRPOConfig

    cfg = load_config(recipe)
    args = GRPOConfig(**grpo_kwargs(cfg, output_dir=tmp_path, cuda=(False, False)))
    assert args.max_steps == cfg.grpo.max_steps
    assert args.learning_rate == cfg.grpo.learning_rate
    assert args.num_generations == cfg.grpo.num_generations
    assert args.generation_batch_size % args.num_generations == 0
    assert args.get_warmup_steps(100) == 10  # warmup ratio 0.1 survives the renaming
    assert args.bf16 is False and args.use_cpu is True
    lora = LoraConfig(**lora_kwargs(cfg))
    assert lora.r == cfg.lora.r and set(lora.target_modules) == set(ALL_PROJECTIONS)
