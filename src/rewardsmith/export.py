"""Export chosen rewards as ONE standalone Python module for TRL's ``GRPOTrainer``.

The written module needs neither rewardsmith nor anything outside the standard library (apart
from what a generated reward itself imports). It holds, in order:

1. a header docstring: provenance (run id, date, rewardsmith version, each reward's generator,
   round, description and metrics) and a WARNING that the code is machine-generated;
2. the paper's three base rewards, rendered from :data:`BASE_REWARDS_SOURCE`, the single
   template this module keeps; a test checks it against :mod:`rewardsmith.rewards.base` on a
   table of completions, so the two cannot drift;
3. each candidate's code **verbatim**, as a string constant, executed at import time into a
   namespace of its own (``_load_reward``). Isolation matters: LLM-written candidates routinely
   define helpers with the same names (``_extract``, ``_parse_number``), which would silently
   overwrite each other if pasted into one module. Each loaded function gets ``__name__`` and
   ``__qualname__`` equal to the reward name (TRL logs ``rewards/<name>/mean``) and
   ``__module__`` equal to the exported module, so it pickles by reference;
4. ``REWARD_FUNCS``, ``REWARD_WEIGHTS`` (pass them as ``reward_funcs=`` and
   ``GRPOConfig(reward_weights=...)``) and ``__all__``.

The exported code runs in-process with full privileges: unlike rewardsmith's sandbox, nothing
confines it. That is the user's call once they have read it, which the header says plainly.
"""

from __future__ import annotations

import ast
import keyword
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rewardsmith.rewards.candidate import Candidate

log = logging.getLogger(__name__)

BASE_NAMES = ("match_format_exactly", "match_format_approximately", "check_answer")

#: The paper's base rewards, standalone; ``@TAG_CONSTANTS@`` is replaced by the tag strings.
#: Same values as :mod:`rewardsmith.rewards.base` and :mod:`rewardsmith.extraction` (paper mode).
BASE_REWARDS_SOURCE = r'''
# -------------------------------------------------------------------------------------------
# The paper's three base rewards (arXiv 2605.02073), standard library only.
# -------------------------------------------------------------------------------------------

@TAG_CONSTANTS@
_STRICT_FORMAT = re.compile(
    rf"^[\s]{{0,}}{re.escape(REASONING_START)}.+?{re.escape(REASONING_END)}.*?"
    rf"{re.escape(SOLUTION_START)}(.+?){re.escape(SOLUTION_END)}[\s]{{0,}}$",
    flags=re.MULTILINE | re.DOTALL,
)
_SOLUTION_NUMBER = re.compile(
    rf"{re.escape(SOLUTION_START)}.*?([\d\.\,]{{1,}})", flags=re.MULTILINE | re.DOTALL
)


def _content_text(content):
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
    )


def _completion_text(completion):
    """A completion's text: a plain string, or the assistant messages of a chat completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    return "\n".join(
        _content_text(message.get("content"))
        for message in completion
        if message.get("role", "assistant") == "assistant"
    )


def _per_sample(values, n):
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        return [values] * n
    if len(values) != n:
        raise ValueError(f"answer has {len(values)} entries for {n} completions")
    return list(values)


def _normalize(text):
    return text.strip().replace(",", "")


def _extract_answer(text):
    """The strict format's capture, else the first number run after the solution tag."""
    match = _STRICT_FORMAT.search(text)
    if match is not None:
        return match.group(1)
    match = _SOLUTION_NUMBER.search(text)
    return match.group(1) if match is not None else None


def _gold(answer):
    text = str(answer)
    return text.rsplit("####", 1)[1] if "####" in text else text


def _score_answer(guess, true):
    if guess is None:
        return 0.0
    guess, true = _normalize(guess), _normalize(true)
    if guess == true:
        return 3.0
    try:
        ratio = float(guess) / float(true)
    except (ValueError, ZeroDivisionError):
        return -1.5
    if 0.9 <= ratio <= 1.1:
        return 1.0
    if 0.8 <= ratio <= 1.2:
        return 0.5
    return -1.5


def match_format_exactly(prompts, completions, *args, **kwargs):
    """+3.0 when the strict format pattern matches the completion, else 0.0."""
    return [3.0 if _STRICT_FORMAT.search(_completion_text(c)) else 0.0 for c in completions]


def match_format_approximately(prompts, completions, *args, **kwargs):
    """Per tag: +0.5 when it occurs exactly once, else -1.0 (from -4.0 to +2.0)."""
    tags = (REASONING_START, REASONING_END, SOLUTION_START, SOLUTION_END)
    texts = [_completion_text(c) for c in completions]
    return [sum(0.5 if text.count(tag) == 1 else -1.0 for tag in tags) for text in texts]


def check_answer(prompts, completions, answer, **kwargs):
    """+3.0 exact, +1.0 / +0.5 within 10% / 20%, -1.5 wrong, 0.0 when nothing is extracted."""
    texts = [_completion_text(c) for c in completions]
    golds = _per_sample(answer, len(texts))
    return [_score_answer(_extract_answer(t), _gold(g)) for t, g in zip(texts, golds)]
'''

_LOADER_SOURCE = '''
# -------------------------------------------------------------------------------------------
# Generated rewards: each source runs in a namespace of its own, so helpers cannot collide.
# -------------------------------------------------------------------------------------------


def _load_reward(name, entry, source):
    """Execute ``source`` in a fresh namespace; return its ``entry`` function named ``name``."""
    filename = f"<generated reward {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": f"{__name__}.<{name}>"}
    exec(compile(source, filename, "exec"), namespace)
    func = namespace[entry]
    func.__name__ = func.__qualname__ = name
    func.__module__ = __name__
    return func
'''

_RESERVED = frozenset(
    {
        "re",
        "linecache",
        "REWARD_FUNCS",
        "REWARD_WEIGHTS",
        "REASONING_START",
        "REASONING_END",
        "SOLUTION_START",
        "SOLUTION_END",
        *BASE_NAMES,
    }
)


def render_base_rewards(tags: Sequence[str] | None = None) -> str:
    """The base rewards' standalone source for ``tags`` (default: the paper's four tags)."""
    from rewardsmith.extraction import DEFAULT_TAGS

    values = tuple(tags) if tags is not None else DEFAULT_TAGS.all()
    names = ("REASONING_START", "REASONING_END", "SOLUTION_START", "SOLUTION_END")
    constants = "\n".join(f"{n} = {v!r}" for n, v in zip(names, values, strict=True))
    return BASE_REWARDS_SOURCE.replace("@TAG_CONSTANTS@", constants)


def _string_literal(code: str) -> str:
    """A literal for ``code``: a readable raw triple-quoted string when exact, else ``repr``."""
    for quote in ('"""', "'''"):
        literal = f"r{quote}{code}{quote}"
        if "\r" in code or quote in code or code.endswith("\\"):
            continue
        try:
            if ast.literal_eval(literal) == code:
                return literal
        except (SyntaxError, ValueError):
            continue
    return repr(code)


def _as_record(item: Candidate | Mapping[str, Any]) -> dict[str, Any]:
    record = item.to_dict() if isinstance(item, Candidate) else dict(item)
    for key in ("name", "code"):
        if not record.get(key):
            raise ValueError(f"a candidate to export lacks {key!r}: {record!r:.200}")
    return record


def _check_names(records: Sequence[dict[str, Any]], include_base: bool) -> None:
    names = [r["name"] for r in records]
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ValueError(f"{name!r} cannot name an exported reward (not a public identifier)")
        if name in _RESERVED:
            raise ValueError(f"{name!r} clashes with a name the exported module defines")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate reward names: {', '.join(duplicates)}")
    if not names and not include_base:
        raise ValueError("nothing to export: no candidate and include_base=False")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _docstring_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _metrics_text(metrics: Mapping[str, Any] | None) -> str:
    if not metrics:
        return "no metrics recorded"
    order = ("f1", "accuracy", "precision", "recall", "extraction_rate", "n")
    parts = [
        f"{key}={metrics[key]:.4g}"
        for key in order
        if isinstance(metrics.get(key), int | float) and not isinstance(metrics[key], bool)
    ]
    ci = metrics.get("ci") or {}
    parts += [f"{key} 95% CI [{lo:.3f}, {hi:.3f}]" for key, (lo, hi) in sorted(ci.items())]
    split = metrics.get("split")
    return (f"{split}: " if split else "") + (", ".join(parts) or "no metrics recorded")


def _header(
    records: Sequence[dict[str, Any]],
    provenance: Mapping[str, Any],
    weights: Sequence[float],
    include_base: bool,
) -> str:
    from rewardsmith import __version__

    prov_metrics = provenance.get("metrics") or {}
    lines = [
        "Reward functions for TRL's GRPOTrainer, exported by rewardsmith.",
        "",
        "WARNING: this module contains MACHINE-GENERATED code (reward functions written by a",
        "language model during a reward search). Importing it executes that code with full Python",
        "privileges. rewardsmith validated it in a sandbox, which is no guarantee of safety or",
        "correctness: read and review every reward below before you use it.",
        "",
        "Provenance:",
        f"    run id:       {provenance.get('run_id', 'unknown')}",
        f"    exported:     {provenance.get('date') or _now()}",
        f"    rewardsmith:  {provenance.get('rewardsmith_version', __version__)}",
    ]
    skip = {"run_id", "date", "rewardsmith_version", "metrics", "weights"}
    lines += [f"    {key}: {value}" for key, value in provenance.items() if key not in skip]
    lines += ["", "Rewards (REWARD_FUNCS order, with REWARD_WEIGHTS):"]
    if include_base:
        for name, weight in zip(BASE_NAMES, weights, strict=False):
            lines.append(f"    {name} (weight {weight:g}): base reward of arXiv 2605.02073")
    for record, weight in zip(records, weights[len(BASE_NAMES) * include_base :], strict=True):
        name = record["name"]
        lines.append(
            f"    {name} (weight {weight:g}): round {record.get('round', '?')}, generator "
            f"{record.get('generator') or 'unknown'}, parent {record.get('parent') or '-'}"
        )
        if record.get("description"):
            lines.append(f"        {' '.join(str(record['description']).split())}")
        lines.append(
            f"        metrics: {_metrics_text(record.get('metrics') or prov_metrics.get(name))}"
        )
    lines += [
        "",
        "Usage:",
        "    from trl import GRPOConfig, GRPOTrainer",
        "    import <this module> as rewards",
        "    args = GRPOConfig(..., reward_weights=rewards.REWARD_WEIGHTS)",
        "    trainer = GRPOTrainer(model=..., reward_funcs=rewards.REWARD_FUNCS, args=args,",
        "                          train_dataset=dataset)  # columns: prompt, answer",
    ]
    return '"""' + _docstring_text("\n".join(lines)) + '\n"""\n'


def _weights(
    records: Sequence[dict[str, Any]], provenance: Mapping[str, Any], include_base: bool
) -> list[float]:
    given = provenance.get("weights") or {}
    names = (list(BASE_NAMES) if include_base else []) + [r["name"] for r in records]
    by_record = {r["name"]: r.get("weight") for r in records}
    return [float(by_record.get(n) or given.get(n, 1.0)) for n in names]


def render_module(
    candidates: Sequence[Candidate | Mapping[str, Any]],
    *,
    provenance: Mapping[str, Any],
    include_base: bool = True,
) -> str:
    """The exported module's source; see :func:`export_rewards` for the arguments."""
    from rewardsmith.sandbox.reward import default_pool

    records = [_as_record(c) for c in candidates]
    _check_names(records, include_base)
    weights = _weights(records, provenance, include_base)
    parts = [_header(records, provenance, weights, include_base), "import linecache\nimport re\n"]
    if include_base:
        parts.append(render_base_rewards(provenance.get("tags")))
    names = list(BASE_NAMES) if include_base else []
    if records:
        parts.append(_LOADER_SOURCE)
    for record in records:
        name = record["name"]
        entry = default_pool().outline(record["code"]).entry(name)  # parsed in the sandbox
        parts.append(
            f"\n# {name}: generated code, verbatim\n"
            f"_SOURCE_{name} = {_string_literal(record['code'])}\n"
            f"{name} = _load_reward({name!r}, {entry!r}, _SOURCE_{name})\n"
        )
        names.append(name)
    exported = [*names, "REWARD_FUNCS", "REWARD_WEIGHTS"]
    parts.append(
        f"\nREWARD_FUNCS = [{', '.join(names)}]\n"
        f"REWARD_WEIGHTS = {weights!r}\n"
        "__all__ = [\n" + "".join(f"    {n!r},\n" for n in exported) + "]\n"
    )
    source = "\n".join(parts)
    _self_check(source, records)
    return source


def _self_check(source: str, records: Sequence[dict[str, Any]]) -> None:
    """The module parses and each embedded source equals the candidate's code, byte for byte."""
    tree = ast.parse(source)
    embedded = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.startswith("_SOURCE_")
    }
    for record in records:
        if embedded.get(f"_SOURCE_{record['name']}") != record["code"]:
            raise RuntimeError(f"export of {record['name']!r} does not reproduce its code")


def export_rewards(
    candidates: Sequence[Candidate | Mapping[str, Any]],
    out_path: str | Path,
    *,
    provenance: Mapping[str, Any],
    include_base: bool = True,
) -> Path:
    """Write the chosen rewards (plus the base rewards) as one standalone module at ``out_path``.

    ``candidates`` are :class:`Candidate` objects or dicts with at least ``name`` and ``code``
    (optional: ``description``, ``round``, ``generator``, ``parent``, ``metrics``, ``weight``).
    ``provenance`` names the run: ``run_id``, ``date`` (default: now), ``rewardsmith_version``
    (default: this one), ``metrics`` ({reward name: metrics dict}), ``weights`` ({reward name:
    weight}, default 1.0), ``tags`` (the four format tags), and any other key, listed as is.
    Raises ``ValueError`` for names that are not public identifiers, clash with the module's own
    names or repeat, and ``EntryError`` when a candidate's code has no clear reward function.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "rewards.py"
    >>> path = export_rewards([], out, provenance={"run_id": "demo"})
    >>> "WARNING" in path.read_text() and "REWARD_FUNCS = [match_format_exactly" in path.read_text()
    True
    """
    source = render_module(candidates, provenance=provenance, include_base=include_base)
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(source, encoding="utf-8")
    tmp.replace(path)
    log.info("exported %d reward(s) to %s", len(candidates) + 3 * include_base, path)
    return path
