"""Generator commands: ``rewardsmith generate`` proposes one round of candidates and validates them.

Writes ``DIR/<name>.py`` for every candidate (rejected ones too) and ``DIR/candidates.json`` with
each candidate's fields, file and validation verdict, plus the generator's own rejections
(malformed output, truncated replies, API errors). LLM prompts, raw replies and each reply's
parse record go to ``DIR/transcripts/``. A local OpenAI-compatible server (``--base-url``) needs no
API key. Exits 1 when no candidate was accepted.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rewardsmith.errors import ConfigError, DataError, RewardsmithError
from rewardsmith.generators import (
    RetryPolicy,
    RoundContext,
    SummaryEntry,
    default_generator_name,
    get_generator,
)
from rewardsmith.generators.prompt import DEFAULT_MAX_CHARS
from rewardsmith.rewards.candidate import Candidate

logger = logging.getLogger(__name__)

MAX_CONTEXT_EXAMPLES = 200


def register(app: typer.Typer) -> None:
    """Add the generator commands to ``app``."""
    app.command("generate")(generate)


def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for candidates and verdicts.")],
    round_size: Annotated[int, typer.Option("--round-size", "-n", min=1, max=200)] = 8,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator", "-g", help="llm or offline (default: llm if an API key is set)."
        ),
    ] = None,
    round: Annotated[int, typer.Option("--round", min=1, help="Round number, from 1.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    summary: Annotated[
        Path | None,
        typer.Option(
            "--summary", help="Ranked summary of earlier rounds (JSON) or candidates.json."
        ),
    ] = None,
    task: Annotated[str, typer.Option("--task", help="Task for sample questions.")] = "synthetic",
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Task data folder (gsm8k).")
    ] = None,
    examples: Annotated[
        Path | None,
        typer.Option("--examples", help="JSONL of {question, answer} to use instead of a task."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="llm: openai or anthropic (default: from the API key)."),
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="llm: API base URL.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="llm: model name.")] = None,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="llm: tries per request (429/5xx).")
    ] = 4,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", min=1, help="llm: seconds per request.")
    ] = 180.0,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="llm: token limit of the reply.")
    ] = 8192,
    max_prompt_chars: Annotated[
        int, typer.Option("--max-prompt-chars", min=2000, help="llm: prompt size bound.")
    ] = DEFAULT_MAX_CHARS,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="llm: sampling temperature.")
    ] = None,
    reasoning: Annotated[
        bool | None,
        typer.Option(
            "--reasoning/--no-reasoning",
            help="llm: a reasoning model (max_completion_tokens, no temperature); "
            "default: from the model name (o1/o3/o4/gpt-5).",
        ),
    ] = None,
    reasoning_effort: Annotated[
        str | None, typer.Option("--reasoning-effort", help="llm: low, medium or high.")
    ] = None,
) -> None:
    """Propose --round-size candidate rewards, validate each, and write them to --out."""
    from rewardsmith.cli import console

    name = generator or default_generator_name()
    rows = load_examples(examples) if examples else task_examples(task, data_dir)
    context = round_context(rows, load_summary(summary) if summary else [], seed=seed, round=round)
    options: dict[str, Any] = {"seed": seed}
    if name == "llm":
        options.update(out_dir=out / "transcripts", provider=provider, base_url=base_url)
        options.update(model=model, timeout_s=request_timeout, max_tokens=max_tokens)
        options.update(max_prompt_chars=max_prompt_chars, temperature=temperature)
        options.update(reasoning=reasoning, reasoning_effort=reasoning_effort)
        options["retry"] = RetryPolicy(max_attempts=max_attempts)
    gen = get_generator(name, **options)
    with console.status(f"{gen.name}: proposing {round_size} rewards for round {round}"):
        candidates = gen.propose(round, round_size, context)
    with console.status(f"validating {len(candidates)} candidates"):
        verdicts = validate_all(candidates, context.taken_names)
    records = write_round(out, candidates, verdicts, gen, round=round, seed=seed)
    console.print(_table(records, gen.rejections))
    accepted = sum(record["verdict"]["accepted"] for record in records)
    console.print(f"{accepted}/{len(records)} accepted; written to {out}")
    if accepted == 0:
        raise RewardsmithError(f"no candidate was accepted; see {out / 'candidates.json'}")


def round_context(
    rows: list[dict[str, str]], entries: list[SummaryEntry], *, seed: int, round: int
) -> RoundContext:
    """A context with a seeded sample of ``rows``; summary names count as taken."""
    rng = random.Random(f"examples:{seed}:{round}")
    sample = rng.sample(rows, min(len(rows), MAX_CONTEXT_EXAMPLES))
    return RoundContext(
        examples=sample, summary=entries, taken_names={entry.name for entry in entries}
    )


def write_round(
    out: Path, candidates: list[Candidate], verdicts: list[Any], gen: Any, *, round: int, seed: int
) -> list[dict]:
    """Write the candidates' files and ``out/candidates.json``; return the candidate records."""
    out.mkdir(parents=True, exist_ok=True)
    records = write_candidates(out, candidates, verdicts)
    report = {
        "round": round,
        "generator": gen.name,
        "seed": seed,
        "candidates": records,
        "rejections": [r.to_dict() for r in gen.rejections],
    }
    (out / "candidates.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return records


def validate_all(candidates: list[Candidate], taken: frozenset[str]) -> list[Any]:
    """Validate each candidate in one shared sandbox pool; accepted names become taken."""
    from rewardsmith.rewards import BASE_REWARD_NAMES
    from rewardsmith.rewards.validation import validate_reward_code
    from rewardsmith.sandbox.pool import SandboxPool

    names = set(taken) | set(BASE_REWARD_NAMES)
    verdicts = []
    with SandboxPool() as pool:
        for candidate in candidates:
            verdict = validate_reward_code(
                candidate.code, name=candidate.name, taken_names=names, pool=pool
            )
            if verdict.accepted:
                names.add(candidate.name)
            verdicts.append(verdict)
    return verdicts


def write_candidates(out: Path, candidates: list[Candidate], verdicts: list[Any]) -> list[dict]:
    """Write ``out/<name>.py`` per candidate; return their JSON records (fields, file, verdict)."""
    records, used = [], set()
    for candidate, verdict in zip(candidates, verdicts, strict=True):
        stem, k = candidate.name, 1
        while stem in used:  # a repeated name (rejected) must not overwrite the first file
            k += 1
            stem = f"{candidate.name}__{k}"
        used.add(stem)
        (out / f"{stem}.py").write_text(candidate.code, encoding="utf-8")
        record = candidate.to_dict()
        record.update(file=f"{stem}.py", verdict=verdict.to_dict())
        records.append(record)
    return records


def task_examples(task: str, data_dir: Path | None) -> list[dict[str, str]]:
    """The training ``{question, answer}`` pairs of ``task`` (gold answers as strings)."""
    from rewardsmith.tasks import get_task

    options = {"data_dir": str(data_dir)} if data_dir else {}
    train = get_task(task, **options).train
    if not train:
        raise DataError(f"task {task!r} has no training examples")
    return [{"question": row["question"], "answer": str(row["answer"])} for row in train]


def load_examples(path: Path) -> list[dict[str, str]]:
    """Read a JSONL of ``{question, answer}``; a GSM8K answer keeps only the text after ``####``."""
    if not path.is_file():
        raise DataError(f"examples file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, answer = str(row["question"]), str(row["answer"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path}:{number}: need a JSON object with question and answer"
            ) from exc
        rows.append({"question": question, "answer": answer.split("####")[-1].strip()})
    if not rows:
        raise DataError(f"examples file {path} is empty")
    return rows


def load_summary(path: Path) -> list[SummaryEntry]:
    """Summary entries, best first, from a JSON list, ``{"summary": [...]}`` or a candidates.json.

    From a candidates.json only accepted candidates are kept, in file order, without metrics.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read summary {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("candidates"), list):
        items = [c for c in data["candidates"] if (c.get("verdict") or {}).get("accepted", True)]
    elif isinstance(data, dict) and isinstance(data.get("summary"), list):
        items = data["summary"]
    elif isinstance(data, list):
        items = data
    else:
        raise DataError(f"{path}: expected a list of summary entries or a candidates.json")
    try:
        return [SummaryEntry.from_dict(item) for item in items]
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: bad summary entry ({exc})") from exc


def _table(records: list[dict], rejections: list) -> Table:
    table = Table(title="Candidates", show_lines=False)
    table.add_column("name", no_wrap=True)
    for column in ("verdict", "reason / flags", "description"):
        table.add_column(column, overflow="fold")
    for record in records:
        verdict = record["verdict"]
        status = "[green]accepted[/]" if verdict["accepted"] else f"[red]{verdict['stage']}[/]"
        notes = verdict["reason"] if not verdict["accepted"] else ", ".join(verdict["flags"])
        table.add_row(record["name"], status, notes, record["description"][:100])
    for rejection in rejections:
        table.add_row(rejection.name or "-", f"[red]{rejection.stage}[/]", rejection.reason, "")
    return table
