"""The LLM generator: an OpenAI-compatible chat endpoint or Anthropic's Messages API.

Each :meth:`LLMGenerator.propose` sends one prompt (:func:`.prompt.build_prompt`) and parses
the reply (:func:`.parsing.parse_reply`). Transient failures
(HTTP 429, 5xx, timeouts, dropped connections) are retried with bounded exponential backoff under
our own control (the SDKs' retries are switched off); other API errors are not retried. When every
attempt fails, a ``"request"`` rejection is recorded and no candidate is returned: nothing raises.

Everything is saved under ``out_dir/round_RR/``: ``attempt_K.prompt.txt`` (the prompt),
``attempt_K.response.txt`` (the raw reply text) or ``attempt_K.error.txt``, the model's separate
reasoning text if the API sends one (``attempt_K.reasoning.txt``), and for a reply
``attempt_K.json``: the parsed candidates and rejections, how many rewards were asked for, the
API's ``finish_reason`` (OpenAI) / ``stop_reason`` (Anthropic), whether the reply was truncated
and which JSON repairs reading it took. ``K`` keeps counting across calls in the same round, so
nothing is overwritten.

A truncated reply (``finish_reason == "length"``, ``stop_reason == "max_tokens"``, or a reply
that ends inside its JSON or code) keeps every complete candidate, records a ``"truncated"``
rejection, and halves the number of rewards the next request of that round asks for (at least
one): the search loop asks again for what is missing, in smaller replies.

Reasoning models (``reasoning=True``; by default on for OpenAI model names starting with o1, o3,
o4 or gpt-5) are sent ``max_completion_tokens`` instead of ``max_tokens``, ``reasoning_effort``
when given, and no ``temperature``/``top_p``, which they reject.

The SDKs are imported only when a request is made, with a clear error when missing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardsmith.errors import ConfigError
from rewardsmith.generators.base import Rejection, RoundContext
from rewardsmith.generators.parsing import parse_reply
from rewardsmith.generators.prompt import DEFAULT_MAX_CHARS, PROMPT_STYLES, Prompt, build_prompt
from rewardsmith.rewards.candidate import Candidate

logger = logging.getLogger(__name__)

PROVIDERS = ("openai", "anthropic")
KEY_ENV = {"openai": ("OPENAI_API_KEY", "REWARDSMITH_API_KEY"),
           "anthropic": ("ANTHROPIC_API_KEY", "REWARDSMITH_API_KEY")}  # fmt: skip
DEFAULT_MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}
TRUNCATION_REASONS = {"length", "max_tokens", "model_length_limit"}
_REASONING_MODEL = re.compile(r"(?:o[134](?:$|[-_.:])|gpt-5)", flags=re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` names an OpenAI reasoning model (o1, o3, o4-mini, gpt-5, ...).

    >>> [is_reasoning_model(m) for m in ("o3-mini", "openai/gpt-5", "gpt-4o", "llama-3")]
    [True, True, False, False]
    """
    return _REASONING_MODEL.match(model.rsplit("/", 1)[-1]) is not None


@dataclass(frozen=True)
class Completion:
    """One reply: its text, the API's finish/stop reason and separate reasoning text, if any."""

    text: str
    finish_reason: str | None = None
    reasoning: str | None = None

    @property
    def truncated(self) -> bool:
        """The API says the reply was cut by the token limit."""
        return self.finish_reason in TRUNCATION_REASONS


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``max_attempts`` tries; after failed try k, wait ``initial_delay_s * 2**(k-1)``.

    The wait is capped at ``max_delay_s``; tests use tiny delays.
    """

    max_attempts: int = 4
    initial_delay_s: float = 2.0
    max_delay_s: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.initial_delay_s * 2 ** (attempt - 1))


class RequestFailed(Exception):
    """A request that failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def api_key_from_env(provider: str, env: dict[str, str] | None = None) -> str | None:
    """The first non-empty key among the provider's variables (:data:`KEY_ENV`), else None."""
    env = os.environ if env is None else env
    for variable in KEY_ENV[provider]:
        if env.get(variable):
            return env[variable]
    return None


def default_provider(env: dict[str, str] | None = None) -> str:
    """``"anthropic"`` when only an Anthropic key is set, else ``"openai"``."""
    env = os.environ if env is None else env
    only_anthropic = env.get("ANTHROPIC_API_KEY") and not (
        env.get("OPENAI_API_KEY") or env.get("REWARDSMITH_API_KEY")
    )
    return "anthropic" if only_anthropic else "openai"


class LLMGenerator:
    """Asks a chat model for rewards; see the module docstring for retries and saved files.

    ``provider`` is ``"openai"`` (any OpenAI-compatible server via ``base_url``) or
    ``"anthropic"`` (default: :func:`default_provider`). The key comes from ``api_key`` or the
    environment; a local server given by ``base_url`` may run without one (any placeholder is
    sent). ``timeout_s`` bounds each HTTP request; ``temperature`` and ``top_p`` are sent only
    when given, and never to a reasoning model (``reasoning``: None = from the model name, see
    :func:`is_reasoning_model`). ``max_tokens`` bounds each reply. ``prompt_style`` picks the
    prompt (:data:`.prompt.PROMPT_STYLES`): ``"paper"`` sends one user message and no system
    message, as arXiv 2605.02073 did.
    """

    def __init__(
        self,
        *,
        out_dir: str | Path,
        provider: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int = 8192,
        reasoning: bool | None = None,
        reasoning_effort: str | None = None,
        timeout_s: float = 180.0,
        retry: RetryPolicy | None = None,
        seed: int = 0,
        max_prompt_chars: int = DEFAULT_MAX_CHARS,
        prompt_style: str = "default",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if prompt_style not in PROMPT_STYLES:
            raise ConfigError(
                f"unknown prompt_style {prompt_style!r}; choose one of {', '.join(PROMPT_STYLES)}"
            )
        provider = provider or default_provider()
        if provider not in PROVIDERS:
            raise ConfigError(
                f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}"
            )
        key = api_key or api_key_from_env(provider)
        if key is None and base_url is None:
            names = " or ".join(KEY_ENV[provider])
            raise ConfigError(f"the {provider} generator needs an API key: set {names}")
        self.provider = provider
        self.model = model or DEFAULT_MODELS[provider]
        self.name = f"llm/{self.model}"
        self.base_url = base_url
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.reasoning = is_reasoning_model(self.model) if reasoning is None else reasoning
        self.reasoning_effort = reasoning_effort
        if self.reasoning and (temperature is not None or top_p is not None):
            logger.info("%s is a reasoning model: temperature/top_p are not sent", self.model)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.seed = seed
        self.max_prompt_chars = max_prompt_chars
        self.prompt_style = prompt_style
        self.out_dir = Path(out_dir)
        self.rejections: list[Rejection] = []
        self._sleep = sleep
        self._key = key or "not-needed"  # local OpenAI-compatible servers ignore the key
        self._client: Any = None
        self._ask_for: dict[int, int] = {}  # round -> how many rewards a request asks for

    def ask_for(self, round: int, n: int) -> int:
        """How many of ``n`` wanted rewards the next request of ``round`` asks for."""
        return max(1, min(n, self._ask_for.get(round, n)))

    def propose(self, round: int, n: int, context: RoundContext) -> list[Candidate]:
        """Ask once (with retries) for up to ``n`` rewards; unusable output is recorded, not raised.

        Asks for :meth:`ask_for` rewards: fewer than ``n`` after a truncated reply this round.
        """
        ask = self.ask_for(round, n)
        prompt = build_prompt(
            context,
            ask,
            round=round,
            seed=self.seed,
            max_chars=self.max_prompt_chars,
            style=self.prompt_style,
        )
        round_dir = self.out_dir / f"round_{round:02d}"
        round_dir.mkdir(parents=True, exist_ok=True)
        first = 1 + len(list(round_dir.glob("attempt_*.prompt.txt")))
        failure: RequestFailed | None = None
        for tries in range(1, self.retry.max_attempts + 1):
            if failure is not None:
                delay = self.retry.delay(tries - 1)
                logger.info("%s: %s; retrying in %.1f s", self.name, failure, delay)
                self._sleep(delay)
            stem = round_dir / f"attempt_{first + tries - 1}"
            _save(stem, ".prompt.txt", prompt.as_text())
            try:
                reply = self._complete(prompt)
            except RequestFailed as exc:
                _save(stem, ".error.txt", f"{exc}\n")
                failure = exc
                if not exc.retryable:
                    break
                continue
            return self._parse(reply, round, stem, ask)
        reason = f"request failed after {tries} attempt(s): {failure}"
        logger.warning("%s, round %d: %s", self.name, round, reason)
        self.rejections.append(Rejection(round, self.name, "request", reason))
        return []

    def _parse(self, reply: Completion, round: int, stem: Path, ask: int) -> list[Candidate]:
        """Save and parse one reply; a truncated one halves the round's ask-for count."""
        _save(stem, ".response.txt", reply.text)
        if reply.reasoning:
            _save(stem, ".reasoning.txt", reply.reasoning)
        result = parse_reply(
            reply.text, round=round, generator=self.name, truncated=reply.truncated
        )
        truncated = reply.truncated or result.truncated
        rejections = list(result.rejections)
        if truncated:
            self._ask_for[round] = max(1, ask // 2)
            rejections.append(self._truncation(reply, round, ask, len(result.candidates)))
        record = {
            "asked_for": ask,
            "finish_reason": reply.finish_reason,
            "truncated": truncated,
            "repairs": result.repairs,
            "candidates": [c.to_dict() for c in result.candidates],
            "rejections": [r.to_dict() for r in rejections],
        }
        _save(stem, ".json", json.dumps(record, indent=2))
        self.rejections.extend(rejections)
        return result.candidates

    def _truncation(self, reply: Completion, round: int, ask: int, kept: int) -> Rejection:
        if reply.truncated:
            why = f"reply cut at the token limit (max_tokens={self.max_tokens}, "
            why += f"finish_reason={reply.finish_reason!r})"
        else:
            why = f"reply ended inside its JSON or code (finish_reason={reply.finish_reason!r})"
        reason = (
            f"{why}: asked for {ask}, kept {kept} complete; "
            f"the next request asks for {self._ask_for[round]}; write shorter rewards"
        )
        logger.warning("%s, round %d: %s", self.name, round, reason)
        return Rejection(round, self.name, "truncated", reason)

    def _complete(self, prompt: Prompt) -> Completion:
        if self.provider == "anthropic":
            return _anthropic_complete(self, prompt)
        return _openai_complete(self, prompt)

    def client(self) -> Any:
        """The SDK client, created on first use (SDK retries off: we retry ourselves)."""
        if self._client is None:
            sdk = _import_sdk(self.provider)
            cls = sdk.Anthropic if self.provider == "anthropic" else sdk.OpenAI
            self._client = cls(
                api_key=self._key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0
            )
        return self._client


def _save(stem: Path, suffix: str, text: str) -> None:
    stem.parent.joinpath(stem.name + suffix).write_text(text, encoding="utf-8")


def _import_sdk(provider: str) -> Any:
    try:
        if provider == "anthropic":
            import anthropic as sdk
        else:
            import openai as sdk
    except ImportError as exc:
        raise ConfigError(
            f"the {provider} generator needs the '{provider}' package: "
            "pip install 'rewardsmith[llm]'"
        ) from exc
    return sdk


def openai_arguments(gen: LLMGenerator, prompt: Prompt) -> dict[str, Any]:
    """The keyword arguments of one ``chat.completions.create`` call for ``gen``.

    Reasoning models get ``max_completion_tokens`` (and ``reasoning_effort`` when set) and no
    sampling parameters; other models get ``max_tokens`` and ``temperature``/``top_p`` when set.
    """
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": prompt.user})
    arguments: dict[str, Any] = {"model": gen.model, "messages": messages}
    if gen.reasoning:
        arguments["max_completion_tokens"] = gen.max_tokens
        if gen.reasoning_effort:
            arguments["reasoning_effort"] = gen.reasoning_effort
        return arguments
    arguments["max_tokens"] = gen.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(gen, key) is not None:
            arguments[key] = getattr(gen, key)
    return arguments


def _openai_complete(gen: LLMGenerator, prompt: Prompt) -> Completion:
    sdk = _import_sdk("openai")
    try:
        response = gen.client().chat.completions.create(**openai_arguments(gen, prompt))
    except sdk.APIError as exc:
        raise _classify(sdk, exc) from exc
    if not response.choices:
        return Completion("")
    choice = response.choices[0]
    message = choice.message
    # A refusal is kept as the reply text, so that it is saved and shown as a rejection.
    text = message.content or getattr(message, "refusal", None) or ""
    # Separate reasoning text: "reasoning_content" (vLLM, DeepSeek), "reasoning" (OpenRouter).
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    return Completion(text, choice.finish_reason, reasoning if isinstance(reasoning, str) else None)


def _anthropic_complete(gen: LLMGenerator, prompt: Prompt) -> Completion:
    sdk = _import_sdk("anthropic")
    # Sent as extra body fields: recent SDK versions no longer take them as arguments.
    extra = {key: getattr(gen, key) for key in ("temperature", "top_p")}
    extra = {key: value for key, value in extra.items() if value is not None} or None
    system = {"system": prompt.system} if prompt.system else {}  # none: one user message
    try:
        response = gen.client().messages.create(
            model=gen.model,
            messages=[{"role": "user", "content": prompt.user}],
            max_tokens=gen.max_tokens,
            extra_body=extra,
            **system,
        )
    except sdk.APIError as exc:
        raise _classify(sdk, exc) from exc
    blocks = response.content or []
    text = "".join(getattr(block, "text", "") for block in blocks)
    thinking = "".join(getattr(block, "thinking", "") or "" for block in blocks)
    return Completion(text, response.stop_reason, thinking or None)


def _classify(sdk: Any, exc: Exception) -> RequestFailed:
    """Turn an SDK error into a :class:`RequestFailed` that knows whether to retry."""
    if isinstance(exc, sdk.APITimeoutError):
        return RequestFailed(f"timed out: {exc}", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return RequestFailed(f"connection error: {exc}", retryable=True)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, sdk.APIStatusError) and status is not None:
        retryable = status == 429 or status >= 500
        return RequestFailed(f"HTTP {status}: {_short(str(exc))}", retryable=retryable)
    return RequestFailed(f"{type(exc).__name__}: {_short(str(exc))}", retryable=False)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
