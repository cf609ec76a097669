"""Find the reward function in a module's source: the one rule used by validation and worker.

The reward is the top-level function named ``name`` when there is one; otherwise the single
top-level function that follows the contract (a ``completions`` parameter and ``**kwargs``);
other functions are helpers.

>>> resolve_entry("def _h(x): return x\\ndef r(prompts, completions, **kw): return []")
'r'
"""

from __future__ import annotations

import ast


class EntryError(ValueError):
    """No reward function, or an ambiguous one, or one that breaks the calling contract."""


def follows_contract(func: ast.FunctionDef) -> bool:
    """Whether TRL can call ``func``: ``completions`` by keyword and a ``**kwargs`` catch-all."""
    args = func.args
    keywordable = [a.arg for a in args.args + args.kwonlyargs]
    return "completions" in keywordable and args.kwarg is not None


def _top_level_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [node for node in tree.body if isinstance(node, ast.FunctionDef)]


def resolve_entry(code: str | ast.Module, name: str | None = None) -> str:
    """The name of the reward function in ``code``; raises :class:`EntryError` when unclear."""
    tree = ast.parse(code) if isinstance(code, str) else code
    functions = _top_level_functions(tree)
    by_name = {f.name: f for f in functions}
    if name is not None and name in by_name:
        chosen = by_name[name]
    else:
        candidates = [f for f in functions if follows_contract(f) and not f.name.startswith("_")]
        if not candidates:
            raise EntryError(
                "no top-level function follows the reward contract "
                "`def name(prompts, completions, answer, **kwargs)`"
            )
        if len(candidates) > 1:
            listed = ", ".join(f.name for f in candidates)
            raise EntryError(f"several functions could be the reward ({listed}); name one")
        chosen = candidates[0]
    if not follows_contract(chosen):
        raise EntryError(
            f"{chosen.name}() must accept `completions` by keyword and `**kwargs` "
            "(TRL passes every dataset column as a keyword)"
        )
    return chosen.name
