"""Generation backends: the hf/vllm resolver, TRL's vLLM options, prompts shared by both
evaluation paths, the backend recorded with each evaluation and kept apart by McNemar."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from rewardsmith.backends import Facts, resolve_backend, vllm_problem
from rewardsmith.config import grpo_kwargs, parse_config
from rewardsmith.errors import ConfigError

GPU = Facts(cuda=True, bf16=True, vllm_missing=None)
NO_GPU = Facts(cuda=False, bf16=False, vllm_missing=None)
NO_VLLM = Facts(cuda=True, bf16=True, vllm_missing="vllm is not installed")
HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.parametrize(
    ("setting", "facts", "extra", "expected", "why"),
    [
        ("hf", GPU, {}, "hf", "as configured"),
        ("auto", GPU, {}, "vllm", "CUDA"),
        ("auto", NO_GPU, {}, "hf", "no CUDA"),
        ("auto", NO_VLLM, {}, "hf", "not installed"),
        ("auto", GPU, {"gguf": True}, "hf", "GGUF"),
        ("auto", GPU, {"objective": "oreal"}, "hf", "'oreal'"),  # OrealTrainer refuses vLLM
        ("auto", GPU, {"use_cpu": True}, "hf", "no CUDA"),  # use_cpu: true forces the CPU
        ("vllm", GPU, {}, "vllm", "CUDA"),
    ],
)
def test_resolver_picks_vllm_only_where_it_can_run(setting, facts, extra, expected, why) -> None:
    choice = resolve_backend(setting, facts, field="grpo.generation.backend", **extra)
    assert choice.value == expected
    assert why in choice.reason and choice.reason.startswith("grpo.generation.backend")


@pytest.mark.parametrize(
    ("facts", "extra", "why"),
    [
        (NO_GPU, {}, "no CUDA device"),
        (NO_VLLM, {}, "vllm is not installed"),
        (GPU, {"gguf": True}, "GGUF"),
        (GPU, {"objective": "oreal"}, "does not support vLLM"),
    ],
)
def test_explicit_vllm_that_cannot_run_says_why(facts, extra, why) -> None:
    with pytest.raises(ConfigError, match=f"eval.backend: vllm cannot run here: .*{why}"):
        resolve_backend("vllm", facts, field="eval.backend", **extra)


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_missing_vllm_is_detected_without_importing_it() -> None:
    assert "pip install 'rewardsmith[gpu]'" in (vllm_problem() or "")


def _cfg(**generation: object):
    return parse_config({"grpo": {"generation": generation}})


def test_grpo_generation_maps_to_trls_vllm_options(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rewardsmith.config_trl"):
        kw = grpo_kwargs(_cfg(gpu_memory_utilization=0.45), output_dir=tmp_path, facts=GPU)
    assert kw["use_vllm"] is True and kw["vllm_mode"] == "colocate"
    assert (kw["vllm_gpu_memory_utilization"], kw["vllm_tensor_parallel_size"]) == (0.45, 1)
    assert (
        "generation" not in kw and "GRPO generation: grpo.generation.backend: vllm" in caplog.text
    )
    server = _cfg(backend="vllm", mode="server", server_base_url="http://gpu-box:8000")
    kw = grpo_kwargs(server, output_dir=tmp_path, facts=GPU)
    assert (kw["vllm_mode"], kw["vllm_server_base_url"]) == ("server", "http://gpu-box:8000")
    assert "vllm_gpu_memory_utilization" not in kw  # a server sets its own, at launch
    with pytest.raises(ConfigError, match="server_base_url"):
        grpo_kwargs(_cfg(backend="vllm", mode="server"), output_dir=tmp_path, facts=GPU)
    assert grpo_kwargs(_cfg(), output_dir=tmp_path, facts=NO_GPU)["use_vllm"] is False
    with pytest.raises(ConfigError, match="no CUDA"):
        grpo_kwargs(_cfg(backend="vllm"), output_dir=tmp_path, facts=NO_GPU)


def test_trl_accepts_the_vllm_options(tmp_path: Path) -> None:
    from trl import GRPOConfig

    kw = grpo_kwargs(_cfg(), output_dir=tmp_path, facts=GPU)
    args = GRPOConfig(**{**kw, "use_cpu": True, "bf16": False, "vllm_max_model_length": 512})
    assert args.use_vllm and args.vllm_gpu_memory_utilization == 0.3
    assert args.vllm_max_model_length == 512


def _task():
    from rewardsmith.tasks import get_task

    return get_task("synthetic", n_train=6, n_val=4, n_test=1)


def test_both_backends_generate_from_the_same_token_ids(tiny_model_dir: Path) -> None:
    from rewardsmith.evaluation import chat_prompt_ids, pad_prompts
    from rewardsmith.evaluation_vllm import vllm_prompts
    from rewardsmith.models import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    task = _task()
    conversations = [task.prompt.messages(ex["question"]) for ex in task.val]
    ids = chat_prompt_ids(tok, conversations)
    assert [p["prompt_token_ids"] for p in vllm_prompts(tok, conversations)] == ids
    # the transformers batch is those ids left-padded, as tokenizing the texts would give
    texts = [
        tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    direct = tok(texts, padding=True, add_special_tokens=False, return_tensors="pt")
    batch = pad_prompts(tok, ids)
    assert batch["input_ids"].tolist() == direct["input_ids"].tolist()
    assert batch["attention_mask"].tolist() == direct["attention_mask"].tolist()
    for row, mask, want in zip(batch["input_ids"], batch["attention_mask"], ids, strict=True):
        assert row[mask.bool()].tolist() == want  # the unpadded part is exactly the prompt


def test_vllm_context_covers_the_longest_prompt(tiny_model_dir: Path) -> None:
    from rewardsmith.evaluation import chat_prompt_ids
    from rewardsmith.models import load_tokenizer
    from rewardsmith.training.trainer import _max_model_length

    tok = load_tokenizer(str(tiny_model_dir))
    task = _task()
    longest = max(
        map(len, chat_prompt_ids(tok, [task.prompt.messages(e["question"]) for e in task.train]))
    )
    assert _max_model_length(task, tok, {"max_completion_length": 100}) == longest + 100


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here")
def test_vllm_evaluation_without_vllm_says_why(tiny_model_dir: Path) -> None:
    from rewardsmith.evaluation_vllm import evaluate_vllm

    task = _task()
    with pytest.raises(ConfigError, match="eval.backend: vllm cannot run here"):
        evaluate_vllm("embedded:tiny", task.val, task.prompt)


@pytest.mark.parametrize("saved_whole", [False, True])
def test_a_saved_policy_is_served_as_base_plus_lora_or_whole(
    saved_whole: bool, tmp_path: Path, monkeypatch
) -> None:
    """An adapter rides on the (possibly 4-bit) base as a LoRA request; a policy that SFT stages
    saved whole is served by itself, unquantised; no saved policy is the base alone."""
    import rewardsmith.evaluation_vllm as ev

    calls: list[tuple[str, dict]] = []
    monkeypatch.setattr(ev, "evaluate_vllm", lambda spec, *a, **kw: calls.append((spec, kw)))
    saved = tmp_path / ("policy" if saved_whole else "adapter")
    saved.mkdir()
    (saved / ("config.json" if saved_whole else "adapter_config.json")).write_text("{}")
    ev.evaluate_saved_policy("base-model", saved, [], None, quantization="bitsandbytes", mode="x")
    ev.evaluate_saved_policy("base-model", None, [], None, quantization="bitsandbytes")
    spec, kw = calls[0]
    if saved_whole:
        assert (spec, kw["adapter"], kw["quantization"]) == (str(saved), None, None)
    else:
        assert (spec, kw["adapter"], kw["quantization"]) == ("base-model", saved, "bitsandbytes")
    assert kw["mode"] == "x"
    assert calls[1][0] == "base-model" and calls[1][1]["adapter"] is None


def test_an_explicit_vllm_evaluation_fails_before_training(tiny_model_dir: Path, tmp_path) -> None:
    from rewardsmith.training.trial import RewardSpec, run_trial

    with pytest.raises(ConfigError, match="eval.backend: vllm cannot run here"):
        run_trial(
            model_spec="embedded:tiny",
            task=_task(),
            rewards=[RewardSpec("check_answer")],
            grpo_args={"use_cpu": True},
            lora_args={},
            out_dir=tmp_path,
            eval_backend="vllm",
        )
    assert not any(tmp_path.iterdir())  # nothing was trained or written


def test_evaluations_record_their_backend_and_mcnemar_keeps_them_apart(tiny_model_dir) -> None:
    from rewardsmith.evaluation import backend_of, evaluate, same_backend
    from rewardsmith.models import load_model

    loaded = load_model("embedded:tiny", device="cpu")
    task = _task()
    result = evaluate(loaded.model, loaded.tokenizer, task.val[:2], task.prompt, max_new_tokens=4)
    metrics = result.metrics_dict()
    assert metrics["backend"] == "hf" and "accuracy" in metrics
    assert same_backend(metrics, {}) and backend_of({}) == "hf"  # stored before: transformers
    assert not same_backend(metrics, {**metrics, "backend": "vllm"})


def test_compare_pairs_only_evaluations_from_the_same_backend() -> None:
    from types import SimpleNamespace

    from rewardsmith.compare import summarise

    def ev(backend: str, correct: list[int]):
        return SimpleNamespace(
            metrics={"f1": 0.5, "accuracy": 0.5, "backend": backend}, correctness=correct
        )

    evals = {
        1: ev("hf", [1, 0, 1, 0]),
        2: ev("vllm", [1, 1, 1, 1]),
        3: ev("hf", [1, 1, 1, 1]),
    }
    store = SimpleNamespace(evaluation=lambda trial, split: evals[trial])
    rows = {r.method: r for r in summarise(store, {"baseline": [1], "a": [2], "b": [3]})}
    assert rows["a"].mcnemar_p is None  # vLLM against a transformers baseline: not paired
    assert rows["b"].mcnemar_p is not None
