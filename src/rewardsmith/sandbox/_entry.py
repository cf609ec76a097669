"""Find the reward function in a module's source: the one rule used by validation and worker.

The reward is the top-level function named ``name`` when there is one; otherwise the single
top-level function that follows the contract (a ``completions`` parameter and ``**kwargs``);
other functions are helpers.

>>> resolve_entry("def _h(x): return x\\ndef r(prompts, completions, **kw): return []")
'r'
"""

from __future__ import annotations

import ast
from collections.abc import Sequence


class EntryError(ValueError):
    """No reward function, or an ambiguous one, or one that breaks the calling contract."""


def has_completions(func: ast.FunctionDef) -> bool:
    """Whether ``func`` names a ``completions`` parameter (of any kind)."""
    args = func.args
    return "completions" in [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]


def follows_contract(func: ast.FunctionDef) -> bool:
    """Whether TRL can call ``func``: ``completions`` by keyword and a ``**kwargs`` catch-all."""
    args = func.args
    keywordable = [a.arg for a in args.args + args.kwonlyargs]
    return "completions" in keywordable and args.kwarg is not None


def _top_level_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [node for node in tree.body if isinstance(node, ast.FunctionDef)]


def resolve_entry(code: str | ast.Module, name: str | None = None) -> str:
    """The name of the reward function in ``code``; raises :class:`EntryError` when unclear.

    Parses ``code``: call it only inside a sandbox worker (or on trusted source).
    """
    tree = ast.parse(code) if isinstance(code, str) else code
    functions = [(f.name, follows_contract(f)) for f in _top_level_functions(tree)]
    return choose_entry(functions, name)


def choose_entry(functions: Sequence[tuple[str, bool]], name: str | None = None) -> str:
    """The rule of :func:`resolve_entry` on (function name, follows the contract) pairs.

    >>> choose_entry([("_h", False), ("r", True)])
    'r'
    >>> choose_entry([("a", True), ("b", True)], "b")
    'b'
    """
    by_name = dict(functions)
    if name is not None and name in by_name:
        chosen, ok = name, by_name[name]
    else:
        candidates = [f for f, ok in functions if ok and not f.startswith("_")]
        if not candidates:
            raise EntryError(
                "no top-level function follows the reward contract "
                "`def name(prompts, completions, answer, **kwargs)`"
            )
        if len(candidates) > 1:
            raise EntryError(f"several functions could be the reward ({', '.join(candidates)}); "
                             "name one")  # fmt: skip
        chosen, ok = candidates[0], True
    if not ok:
        raise EntryError(
            f"{chosen}() must accept `completions` by keyword and `**kwargs` "
            "(TRL passes every dataset column as a keyword)"
        )
    return chosen
