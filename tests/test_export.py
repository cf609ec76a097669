"""The exported module: standalone, faithful base rewards, isolated candidates, usable by TRL."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import traceback
import uuid

import pytest

import rewardsmith.export
from rewardsmith.export import BASE_NAMES, export_rewards, render_module
from rewardsmith.rewards.base import check_answer, match_format_approximately, match_format_exactly
from rewardsmith.rewards.candidate import Candidate

# Written the way an LLM writes them: `import re`, private helpers with clashing names, kwargs.
UNITS_CODE = '''import re


def _extract(text):
    """The content of the last <solution> block."""
    found = re.findall(r"<solution>(.*?)</solution>", text, flags=re.DOTALL)
    return found[-1].strip() if found else None


def units_reward(prompts, completions, answer, **kwargs):
    """+1.0 when the solution is a bare number (no units or words), -0.5 otherwise."""
    scores = []
    for completion in completions:
        text = completion[0]["content"] if isinstance(completion, list) else completion
        solution = _extract(text)
        if solution is None:
            scores.append(-0.5)
        elif re.fullmatch(r"-?[\\d,]*\\.?\\d+", solution):
            scores.append(1.0)
        else:
            scores.append(-0.5)
    return scores
'''

STEPS_CODE = '''import math
import re

STEP_WORDS = ("first", "then", "so", "therefore")


def _extract(text):
    """The reasoning block (same helper name as other rewards, different meaning)."""
    match = re.search(r"<thinking>(.*?)</thinking>", text, flags=re.DOTALL)
    return match.group(1) if match else ""


def step_count_reward(prompts, completions, **kwargs):
    """Log-scaled count of reasoning steps; kwargs such as `answer` are ignored."""
    out = []
    for completion in completions:
        text = completion[0]["content"] if isinstance(completion, list) else completion
        reasoning = _extract(text).lower()
        steps = reasoning.count("\\n") + sum(reasoning.count(w) for w in STEP_WORDS)
        out.append(round(math.log1p(steps) / 2, 6))
    return out
'''

TRICKY_CODE = "def tricky_reward(prompts, completions, **kw):\n    '''has \"\"\" and \\\\'''\n"
TRICKY_CODE += '    return [len("""x""") + 0.0 for _ in completions]\n'

GOOD = "<thinking>48/2 = 24\nthen 48 + 24 = 72</thinking>\n<solution>72</solution>"
BASE_TABLE = [
    # (completion, gold): what each case exercises
    (GOOD, "72"),  # exact format, exact answer
    ("  \n" + GOOD + "\n  ", "72"),  # surrounding white space
    (GOOD + " trailing", "72"),  # strict pattern fails; number fallback
    ("Sure! <solution>1,200</solution>", "1200"),  # commas dropped
    ("<solution>95</solution>", "100"),  # within 10%
    ("<solution>85</solution>", "100"),  # within 20%
    ("<solution>50</solution>", "100"),  # far off
    ("<solution>3</solution>", "0"),  # zero gold: unparsable ratio
    ("<thinking>x</thinking><solution>seventy</solution>", "72"),  # text answer
    ("<solution>no number</solution>", "72"),  # nothing extracted
    ("", "72"),  # empty completion
    ("<thinking>a</thinking><thinking>b</thinking><solution>7", "7"),  # repeated/unclosed tags
    (GOOD, "Natalia sold 48/2 = 24 clips. #### 72"),  # raw GSM8K answer field
    ([{"role": "assistant", "content": GOOD}], "72"),  # conversational
    ([{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}], "72"),  # typed parts
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "<solution>7"}], "7"),
]


def _candidates() -> list:
    units = Candidate(
        name="units_reward",
        code=UNITS_CODE,
        description="Rewards a bare number in <solution>.",
        round=2,
        generator="llm/gpt-test",
        parent="number_reward",
    )
    steps = {
        "name": "step_count_reward",
        "code": STEPS_CODE,
        "description": "Counts reasoning steps.",
        "round": 3,
        "generator": "offline",
        "metrics": {"f1": 0.71, "accuracy": 0.55, "ci": {"f1": [0.66, 0.76]}},
        "weight": 0.5,
    }
    return [units, steps]


PROVENANCE = {
    "run_id": "run-2026-test",
    "date": "2026-01-02T03:04:05+00:00",
    "metrics": {"units_reward": {"f1": 0.787, "accuracy": 0.66}},
    "selection_split": "val",
}


@pytest.fixture
def exported(tmp_path, monkeypatch):
    """The exported module, imported under a unique name from a directory on sys.path."""
    name = f"rewards_{uuid.uuid4().hex[:8]}"
    export_rewards(_candidates(), tmp_path / f"{name}.py", provenance=PROVENANCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def test_base_rewards_match_the_package(exported):
    completions = [c for c, _ in BASE_TABLE]
    golds = [g for _, g in BASE_TABLE]
    pairs = [
        (exported.match_format_exactly, match_format_exactly),
        (exported.match_format_approximately, match_format_approximately),
        (exported.check_answer, check_answer),
    ]
    for theirs, ours in pairs:
        got = theirs(prompts=None, completions=completions, answer=golds)
        assert got == ours(None, completions, answer=golds), theirs.__name__
    # a scalar answer is broadcast, as in rewardsmith
    assert exported.check_answer(None, [GOOD, GOOD], "72") == [3.0, 3.0]
    assert set(exported.check_answer(None, completions, answer=golds)) >= {3.0, 1.0, 0.5, -1.5, 0}


def test_module_surface_and_names(exported):
    names = [f.__name__ for f in exported.REWARD_FUNCS]
    assert names == [*BASE_NAMES, "units_reward", "step_count_reward"]
    assert exported.REWARD_WEIGHTS == [1.0, 1.0, 1.0, 1.0, 0.5]
    assert exported.__all__ == [*names, "REWARD_FUNCS", "REWARD_WEIGHTS"]
    assert exported.units_reward.__qualname__ == "units_reward"
    for func in exported.REWARD_FUNCS:  # pickles by reference, e.g. for multiprocess workers
        assert pickle.loads(pickle.dumps(func)) is func


def test_candidates_are_isolated_and_verbatim(exported):
    chat = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "72 km"}]]
    assert exported.units_reward(prompts=None, completions=chat, answer=["72", "72"]) == [1.0, -0.5]
    # both candidates define `_extract`; each keeps its own
    steps = exported.step_count_reward(prompts=None, completions=chat, answer=["72", "72"])
    assert steps[0] > 0 and steps[1] == 0.0
    assert exported._SOURCE_units_reward == UNITS_CODE
    assert exported._SOURCE_step_count_reward == STEPS_CODE


def test_header_names_provenance_and_warns(exported):
    doc = exported.__doc__
    assert "WARNING" in doc and "MACHINE-GENERATED" in doc and "review" in doc
    for text in (
        "run-2026-test",
        "2026-01-02T03:04:05",
        "rewardsmith:  0.1.0",
        "llm/gpt-test",
        "parent number_reward",
        "f1=0.787",
        "f1 95% CI [0.660, 0.760]",
        "val",
    ):
        assert text in doc, text


def test_hostile_strings_round_trip(tmp_path):
    candidate = {"name": "tricky_reward", "code": TRICKY_CODE, "description": 'a """ b \\'}
    source = render_module([candidate], provenance={"run_id": "r"}, include_base=False)
    namespace: dict = {"__name__": "tricky_export"}
    exec(compile(source, "tricky_export.py", "exec"), namespace)
    assert namespace["_SOURCE_tricky_reward"] == TRICKY_CODE
    assert namespace["REWARD_FUNCS"][0](prompts=None, completions=["a", "b"]) == [1.0, 1.0]
    assert 'a \\"\\"\\" b' in source


def test_tracebacks_show_the_generated_line(tmp_path):
    code = "def boom_reward(completions, **kwargs):\n    return [1 / 0 for _ in completions]\n"
    source = render_module([{"name": "boom_reward", "code": code}], provenance={"run_id": "r"})
    namespace: dict = {"__name__": "boom_export"}
    exec(compile(source, "boom_export.py", "exec"), namespace)
    with pytest.raises(ZeroDivisionError) as info:
        namespace["boom_reward"](prompts=None, completions=["x"])
    assert "return [1 / 0 for _ in completions]" in "".join(traceback.format_tb(info.tb))


@pytest.mark.parametrize(
    ("candidates", "include_base", "message"),
    [
        (
            [{"name": "check_answer", "code": "def check_answer(completions, **k): ..."}],
            True,
            "clashes",
        ),
        ([{"name": "a_reward", "code": UNITS_CODE}] * 2, True, "duplicate"),
        ([{"name": "_hidden", "code": "def _hidden(completions, **k): ..."}], True, "identifier"),
        ([], False, "nothing to export"),
        ([{"name": "no_code"}], True, "lacks 'code'"),
    ],
)
def test_bad_exports_are_refused(tmp_path, candidates, include_base, message):
    with pytest.raises(ValueError, match=message):
        export_rewards(candidates, tmp_path / "r.py", provenance={}, include_base=include_base)
    assert not (tmp_path / "r.py").exists()


def test_doctests():
    result = doctest.testmod(rewardsmith.export)
    assert result.attempted > 0 and result.failed == 0


FRESH_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "rewardsmith"))]
    assert importlib.util.find_spec("rewardsmith") is None, "rewardsmith is importable"
    sys.modules["rewardsmith"] = None  # any import of rewardsmith now fails
    import exported_rewards as rewards
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    model_dir, out_dir = sys.argv[1], sys.argv[2]
    chat = [[{"role": "assistant", "content": "<thinking>2+2</thinking><solution>4</solution>"}]]
    funcs = rewards.REWARD_FUNCS
    values = {f.__name__: f(prompts=["q"], completions=chat, answer=["4"]) for f in funcs}
    question = [{"role": "user", "content": "What is 2 + 2?"}]
    data = Dataset.from_list([{"prompt": question, "answer": "4"}] * 4)
    args = GRPOConfig(output_dir=out_dir, max_steps=1, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=8, report_to=[], use_cpu=True,
                      logging_steps=1, save_strategy="no", disable_tqdm=True,
                      reward_weights=rewards.REWARD_WEIGHTS)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir),
                          processing_class=AutoTokenizer.from_pretrained(model_dir),
                          reward_funcs=rewards.REWARD_FUNCS, args=args, train_dataset=data)
    trainer.train()
    logged = sorted({k for row in trainer.state.log_history for k in row if "rewards/" in k})
    print("RESULT " + json.dumps({"values": values, "step": trainer.state.global_step,
                                  "logged": logged, "rewardsmith": "rewardsmith" in sys.modules and
                                  sys.modules["rewardsmith"] is not None}))
    """
)


@pytest.mark.slow
def test_fresh_interpreter_without_rewardsmith_runs_a_grpo_step(tmp_path, tiny_model_dir):
    export_dir = tmp_path / "export"
    export_rewards(_candidates(), export_dir / "exported_rewards.py", provenance=PROVENANCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(export_dir), PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT, str(tiny_model_dir), str(tmp_path / "trainer")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=export_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["values"] == {
        "match_format_exactly": [3.0],
        "match_format_approximately": [2.0],
        "check_answer": [3.0],
        "units_reward": [1.0],
        "step_count_reward": [0.0],
    }
    assert result["step"] == 1 and result["rewardsmith"] is False
    for name in [*BASE_NAMES, "units_reward", "step_count_reward"]:  # TRL logs each by name
        assert f"rewards/{name}/mean" in result["logged"]
