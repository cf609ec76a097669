"""The language layer of the sandbox: RestrictedPython compilation, safe builtins, an import
allow-list and module views.

This layer makes ordinary escapes impossible to *write* (``__class__``, ``__globals__``,
``gi_frame``, ``str.format`` field lookups, ``exec``, ``open``, ``__import__('os')``); it is not
trusted alone: the worker process it runs in is confined by the OS layer (:mod:`._confine`).

Imports return *views* of the allowed modules: namespaces holding their public, non-module
attributes, minus a deny-list of functions that reach arbitrary attributes or evaluate strings
(``operator.attrgetter``, ``string.Formatter``, ``typing.get_type_hints``,
``functools.singledispatch``, ...). So ``fractions.sys`` or ``typing.re`` do not exist.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import operator
import re
import types
from collections.abc import Callable, Iterable
from typing import Any

from RestrictedPython import compile_restricted_exec, limited_builtins, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    raise_,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import RestrictingNodeTransformer

#: The paper's allow-list plus standard modules a reward legitimately needs.
ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "re", "math", "random", "statistics", "json", "itertools", "functools", "operator",
        "string", "collections", "typing", "fractions", "decimal",
        "unicodedata", "cmath", "heapq", "bisect", "difflib",
    }
)  # fmt: skip

#: Module attributes hidden from rewards: they look attributes up by name or evaluate strings.
_DENIED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "operator": frozenset({"attrgetter", "methodcaller"}),
    "string": frozenset({"Formatter"}),
    "functools": frozenset({"singledispatch", "singledispatchmethod"}),
    "typing": frozenset(
        {"get_type_hints", "ForwardRef", "NamedTuple", "TypedDict", "no_type_check",
         "no_type_check_decorator", "dataclass_transform", "get_overloads", "overload"}
    ),
}  # fmt: skip

#: Builtins beyond RestrictedPython's ``safe_builtins`` that rewards commonly use.
_EXTRA_BUILTINS = (
    "all", "any", "sum", "min", "max", "sorted", "enumerate", "zip", "map", "filter", "reversed",
    "dict", "list", "set", "frozenset", "tuple", "next", "iter", "bin", "format", "bytes",
    "StopIteration", "ValueError", "TypeError", "KeyError", "IndexError",
)  # fmt: skip
#: Dangerous entries of ``safe_builtins`` replaced by guarded versions or removed.
_REMOVED_BUILTINS = ("setattr", "delattr", "id")


#: ``_helper`` names are allowed (LLMs write them); ``__dunder``, ``_guard_`` names and the
#: transformer's own ``_print``/``_tmpN`` variables are not.
_PRIVATE_NAME = re.compile(r"_[A-Za-z0-9](?:[A-Za-z0-9_]*[A-Za-z0-9])?")
_INTERNAL_NAME = re.compile(r"_print|_tmp\d+")


class _RewardPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus single-underscore helper names."""

    def check_name(self, node, name, allow_magic_methods=False):  # noqa: D102 - see base class
        if name and _PRIVATE_NAME.fullmatch(name) and not _INTERNAL_NAME.fullmatch(name):
            return
        super().check_name(node, name, allow_magic_methods)


class RestrictionError(Exception):
    """The code is not valid restricted Python or imports a module outside the allow-list."""


def _import_names(tree: ast.AST) -> Iterable[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield "." * node.level + (node.module or ""), node.lineno
            elif node.module != "__future__":
                yield node.module or "", node.lineno


def check_restricted(code: str, filename: str = "<reward>") -> types.CodeType:
    """Compile ``code`` with RestrictedPython and check its imports; return the code object.

    Raises :class:`RestrictionError` naming every problem found (with line numbers).
    """
    result = compile_restricted_exec(code, filename=filename, policy=_RewardPolicy)
    errors = list(result.errors)
    try:
        tree = ast.parse(code, filename=filename)
    except SyntaxError as exc:
        errors.append(f"Line {exc.lineno}: {exc.msg}")
        tree = None
    if tree is not None:
        for module, line in _import_names(tree):
            if module not in ALLOWED_MODULES:
                errors.append(f"Line {line}: import of {module!r} is not allowed")
    if errors or result.code is None:
        allowed = ", ".join(sorted(ALLOWED_MODULES))
        hint = f" (allowed imports: {allowed})" if any("import of" in e for e in errors) else ""
        raise RestrictionError("; ".join(errors) + hint)
    return result.code


class ModuleView(types.SimpleNamespace):
    """What a reward sees of an allowed module."""

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("__name__", "?")
        raise AttributeError(f"module {module!r} has no attribute {attr!r} available to rewards")


def module_view(name: str) -> ModuleView:
    """A namespace of ``name``'s public, non-module attributes, minus the deny-list."""
    module = importlib.import_module(name)
    denied = _DENIED_ATTRIBUTES.get(name, frozenset())
    public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    view = ModuleView()
    for attr in public:
        if attr.startswith("_") or attr in denied or not hasattr(module, attr):
            continue
        value = getattr(module, attr)
        if isinstance(value, types.ModuleType):
            continue
        setattr(view, attr, value)
    view.__name__ = name
    return view


#: Imported lazily by the standard library (text codecs); loaded before confinement.
_PRELOADED_EXTRAS = ("encodings.ascii", "encodings.latin_1", "encodings.cp1252",
                     "encodings.utf_16", "encodings.utf_32", "encodings.idna")  # fmt: skip


def preload_modules() -> None:
    """Import the allowed modules (and the codecs they load lazily) before confinement.

    Once confined, the worker may not be able to read the standard library at all (Landlock, or
    ``nobody`` facing an interpreter installed under ``/root``), so nothing may be imported late.
    """
    for name in sorted(ALLOWED_MODULES) + list(_PRELOADED_EXTRAS):
        importlib.import_module(name)


def _guarded_import(views: dict[str, ModuleView]) -> Callable[..., Any]:
    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A001
        if level or name not in ALLOWED_MODULES:
            raise ImportError(f"import of {name!r} is not allowed in a reward")
        if name not in views:
            views[name] = module_view(name)
        return views[name]

    return __import__


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for rewards: no ``_names``, no frame/code attributes, no ``str.format``."""
    # RestrictedPython's default is None for a missing attribute; raise like Python does.
    return safer_getattr(obj, name, default[0] if default else raise_)


def _guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        _guarded_getattr(obj, name)
    except (AttributeError, NotImplementedError):
        return False
    return True


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul,
}  # fmt: skip


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


def restricted_globals() -> dict[str, Any]:
    """Fresh globals for executing one reward module under RestrictedPython."""
    safe = dict(safe_builtins)
    safe.update(limited_builtins)
    for name in _EXTRA_BUILTINS:
        safe[name] = getattr(builtins, name)
    for name in _REMOVED_BUILTINS:
        safe.pop(name, None)
    safe["getattr"] = _guarded_getattr
    safe["hasattr"] = _guarded_hasattr
    safe["__import__"] = _guarded_import({})
    return {
        "__builtins__": safe,
        "__name__": "reward",
        "__metaclass__": type,
        "_getattr_": _guarded_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        "_apply_": _apply,
        "_print_": PrintCollector,
    }


def unrestricted_globals() -> dict[str, Any]:
    """Plain globals with full builtins: only to test the OS layer with a simulated escape."""
    return {"__builtins__": builtins, "__name__": "reward"}
