"""The language layer of the sandbox: RestrictedPython compilation, safe builtins, an import
allow-list and module views.

This layer makes ordinary escapes impossible to *write* (``__class__``, ``__globals__``,
``gi_frame``, ``str.format`` field lookups, ``exec``, ``open``, ``__import__('os')``); it is not
trusted alone: the worker process it runs in is confined by the OS layer (:mod:`._confine`).

Imports return read-only *views* of the allowed modules, holding only the attributes named one by
one in :data:`_SAFE_ATTRIBUTES`. RestrictedPython checks the reward's own code, but not the
standard library code the reward calls, so a name enters a table only if it:

* gets, sets or deletes no attribute by a name the caller chooses (``functools.update_wrapper``
  with ``updated=("__globals__",)`` merges a stdlib module's globals, real ``sys`` included, into
  the reward's; ``operator.attrgetter``, ``string.Formatter``, ``UserString.format``);
* hands out no frames, code objects, globals, modules or class internals (``namedtuple`` and
  ``typing.NewType`` read their caller's frame; submodules such as ``json.decoder``);
* evaluates no strings (``typing.get_type_hints``, ``ForwardRef``, ``singledispatch.register``).

A deny-list cannot keep up with that class, so anything unlisted is absent. Every allowed module
needs a table: :func:`preload_modules` (run at worker start) fails loudly otherwise.
"""

from __future__ import annotations

import ast
import builtins
import collections
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

#: What a reward sees of each allowed module (the rule is in the module docstring). Names of the
#: oldest supported Python (3.11); a later addition is absent until listed here.
_SAFE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    # Functions over strings and compiled patterns, flags (ints), types for isinstance. Not
    # `template` (deprecated) nor `RegexFlag` (enum machinery); submodules are never listed.
    "re": (
        "compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split",
        "escape", "purge", "error", "Pattern", "Match", "NOFLAG", "A", "ASCII", "I", "IGNORECASE",
        "L", "LOCALE", "M", "MULTILINE", "S", "DOTALL", "U", "UNICODE", "X", "VERBOSE",
    ),
    # C functions of numbers, and constants.
    "math": (
        "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "comb",
        "copysign", "cos", "cosh", "degrees", "dist", "e", "erf", "erfc", "exp", "exp2", "expm1",
        "fabs", "factorial", "floor", "fmod", "frexp", "fsum", "gamma", "gcd", "hypot", "inf",
        "isclose", "isfinite", "isinf", "isnan", "isqrt", "lcm", "ldexp", "lgamma", "log",
        "log10", "log1p", "log2", "modf", "nan", "nextafter", "perm", "pi", "pow", "prod",
        "radians", "remainder", "sin", "sinh", "sqrt", "tan", "tanh", "tau", "trunc", "ulp",
    ),
    "cmath": (
        "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "e", "exp", "inf",
        "infj", "isclose", "isfinite", "isinf", "isnan", "log", "log10", "nan", "nanj", "phase",
        "pi", "polar", "rect", "sin", "sinh", "sqrt", "tan", "tanh", "tau",
    ),
    # Distributions and seeded generators. Not SystemRandom (OS entropy, never reproducible)
    # nor getstate/setstate (internal state tuples).
    "random": (
        "random", "uniform", "randint", "randrange", "choice", "choices", "sample", "shuffle",
        "gauss", "normalvariate", "lognormvariate", "expovariate", "betavariate", "gammavariate",
        "triangular", "vonmisesvariate", "paretovariate", "weibullvariate", "getrandbits",
        "seed", "Random",
    ),
    # Their helpers only call as_integer_ratio/numerator/denominator, fixed names.
    "statistics": (
        "mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low",
        "median_high", "median_grouped", "mode", "multimode", "quantiles", "pstdev", "pvariance",
        "stdev", "variance", "correlation", "covariance", "linear_regression", "NormalDist",
        "StatisticsError",
    ),
    # Not the JSONDecoder/JSONEncoder classes: their instances carry json.decoder's functions.
    "json": ("loads", "dumps", "JSONDecodeError"),
    # C iterators over the caller's data.
    "itertools": (
        "accumulate", "chain", "combinations", "combinations_with_replacement", "compress",
        "count", "cycle", "dropwhile", "filterfalse", "groupby", "islice", "pairwise",
        "permutations", "product", "repeat", "starmap", "takewhile", "tee", "zip_longest",
    ),
    # Not update_wrapper/wraps (caller-chosen attributes), total_ordering (sets dunders),
    # singledispatch (evaluates annotations), cached_property/partialmethod (descriptor hooks).
    "functools": ("reduce", "partial", "lru_cache", "cache", "cmp_to_key"),
    # Arithmetic, comparison and item reads. Not attrgetter/methodcaller (caller-chosen
    # attributes), setitem/delitem (they skip the write guard), in-place forms or call.
    "operator": (
        "lt", "le", "eq", "ne", "ge", "gt", "not_", "truth", "is_", "is_not", "abs", "add",
        "and_", "floordiv", "index", "inv", "invert", "lshift", "mod", "mul", "matmul", "neg",
        "or_", "pos", "pow", "rshift", "sub", "truediv", "xor", "concat", "contains", "countOf",
        "indexOf", "getitem", "itemgetter",
    ),
    # Constants and capwords. Not Formatter (getattr on field names) nor Template.
    "string": (
        "ascii_letters", "ascii_lowercase", "ascii_uppercase", "digits", "hexdigits",
        "octdigits", "punctuation", "printable", "whitespace", "capwords",
    ),
    # Containers. Not namedtuple (reads the caller's frame, module=), nor UserString (its
    # format is str.format), UserDict/UserList/ChainMap (copy() goes through copy's reduce).
    "collections": ("Counter", "defaultdict", "OrderedDict", "deque"),
    # Annotation names and cast. Not get_type_hints/ForwardRef (evaluate strings), NamedTuple,
    # TypedDict, TypeVar, NewType, Protocol (frames, class hooks), Annotated (forwards
    # attribute reads to its origin: Annotated[str, 0].format is str.format), Type, get_args.
    "typing": (
        "Any", "AbstractSet", "Callable", "ClassVar", "Collection", "Container", "Counter",
        "DefaultDict", "Deque", "Dict", "Final", "FrozenSet", "Generator", "Hashable",
        "Iterable", "Iterator", "List", "Literal", "Mapping", "Match", "MutableMapping",
        "MutableSequence", "MutableSet", "NoReturn", "Optional", "OrderedDict", "Pattern",
        "Reversible", "Sequence", "Set", "Sized", "Text", "Tuple", "TYPE_CHECKING", "Union",
        "cast",
    ),
    "fractions": ("Fraction",),
    # Numbers, contexts (their attributes are behind the write guard), rounding modes, signals.
    # Not setcontext nor the shared DefaultContext template.
    "decimal": (
        "Decimal", "Context", "getcontext", "localcontext", "ROUND_05UP", "ROUND_CEILING",
        "ROUND_DOWN", "ROUND_FLOOR", "ROUND_HALF_DOWN", "ROUND_HALF_EVEN", "ROUND_HALF_UP",
        "ROUND_UP", "DecimalException", "InvalidOperation", "DivisionByZero", "Inexact",
        "Rounded", "Overflow", "Underflow", "Subnormal", "Clamped", "FloatOperation",
    ),
    # Lookups in the Unicode database.
    "unicodedata": (
        "lookup", "name", "decimal", "digit", "numeric", "category", "bidirectional",
        "combining", "east_asian_width", "mirrored", "decomposition", "normalize",
        "is_normalized", "unidata_version",
    ),
    "heapq": (
        "heapify", "heappop", "heappush", "heappushpop", "heapreplace", "merge", "nlargest",
        "nsmallest",
    ),
    "bisect": ("bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right"),
    # Sequence comparison. Not HtmlDiff (templates), diff_bytes or restore.
    "difflib": (
        "SequenceMatcher", "get_close_matches", "ndiff", "unified_diff", "context_diff",
        "Differ", "IS_LINE_JUNK", "IS_CHARACTER_JUNK",
    ),
}  # fmt: skip

#: Builtins beyond RestrictedPython's ``safe_builtins`` that rewards commonly use.
_EXTRA_BUILTINS = (
    "all", "any", "sum", "min", "max", "sorted", "enumerate", "zip", "map", "filter", "reversed",
    "dict", "list", "set", "frozenset", "tuple", "next", "iter", "bin", "format", "bytes",
    "StopIteration", "ValueError", "TypeError", "KeyError", "IndexError",
)  # fmt: skip
#: Dangerous entries of ``safe_builtins`` replaced by guarded versions or removed.
_REMOVED_BUILTINS = ("setattr", "delattr", "id", "_getattr_")


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


def _missing_message(module: str, attr: str) -> str:
    return f"module {module!r} has no attribute {attr!r} available to rewards"


class ModuleView:
    """What a reward sees of an allowed module: the names in its table, read-only.

    No ``__dict__``: the names live in a private mapping (rewards cannot reach ``_`` names).
    """

    __slots__ = ("_module", "_attributes")

    def __init__(self, module: str, attributes: dict[str, Any]) -> None:
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_attributes", types.MappingProxyType(dict(attributes)))

    def __getattr__(self, attr: str) -> Any:
        try:
            return object.__getattribute__(self, "_attributes")[attr]
        except KeyError:
            module = object.__getattribute__(self, "_module")
            raise AttributeError(_missing_message(module, attr)) from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"module {self._module!r} is read-only in a reward")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"module {self._module!r} is read-only in a reward")

    def __dir__(self) -> list[str]:
        return sorted(self._attributes)

    def __repr__(self) -> str:
        return f"<module {self._module!r} (reward view)>"


def check_tables() -> None:
    """Fail loudly unless every allowed module has a table naming only its non-module attributes.

    Imports the allowed modules. Called at worker start by :func:`preload_modules`.
    """
    missing = sorted(ALLOWED_MODULES - _SAFE_ATTRIBUTES.keys())
    if missing:
        raise RuntimeError(f"allowed modules without a table of safe attributes: {missing}")
    problems = []
    for name in sorted(ALLOWED_MODULES):
        module = importlib.import_module(name)
        for attr in _SAFE_ATTRIBUTES[name]:
            if attr.startswith("_") or not hasattr(module, attr):
                problems.append(f"{name}.{attr} is missing or private")
            elif isinstance(getattr(module, attr), types.ModuleType):
                problems.append(f"{name}.{attr} is a module")
    if problems:
        raise RuntimeError("bad table of safe attributes: " + "; ".join(problems))


def module_view(name: str) -> ModuleView:
    """A read-only view of module ``name`` holding only the attributes of its table."""
    if name not in ALLOWED_MODULES or name not in _SAFE_ATTRIBUTES:
        raise RuntimeError(f"module {name!r} is not allowed or has no table of safe attributes")
    module = importlib.import_module(name)
    return ModuleView(name, {attr: getattr(module, attr) for attr in _SAFE_ATTRIBUTES[name]})


#: Imported lazily by the standard library (text codecs); loaded before confinement.
_PRELOADED_EXTRAS = ("encodings.ascii", "encodings.latin_1", "encodings.cp1252",
                     "encodings.utf_16", "encodings.utf_32", "encodings.idna")  # fmt: skip


def preload_modules() -> None:
    """Check the tables and import the allowed modules (and lazy codecs) before confinement.

    Once confined, the worker may not be able to read the standard library at all (Landlock, or
    ``nobody`` facing an interpreter installed under ``/root``), so nothing may be imported late.
    Raises ``RuntimeError`` when an allowed module has no table (see :func:`check_tables`).
    """
    check_tables()
    for name in sorted(ALLOWED_MODULES) + list(_PRELOADED_EXTRAS):
        importlib.import_module(name)


def _guarded_import(views: dict[str, ModuleView]) -> Callable[..., Any]:
    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A001
        if level or name not in ALLOWED_MODULES:
            raise ImportError(f"import of {name!r} is not allowed in a reward")
        if name not in views:
            views[name] = module_view(name)
        view = views[name]
        for attr in fromlist or ():
            if attr not in dir(view):  # say why, not Python's "cannot import name"
                raise ImportError(_missing_message(name, attr))
        return view

    return __import__


#: Attribute names refused on every object: ``str.format`` walks attributes named in its format
#: string, and other types forward to it (``typing.Annotated[str, 0].format``).
_FORMAT_METHODS = frozenset({"format", "format_map"})


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for rewards: no ``_names``, no frame/code attributes, no ``format``."""
    if name in _FORMAT_METHODS:
        raise NotImplementedError(f"{name}() is not available to rewards: use an f-string")
    # RestrictedPython's default is None for a missing attribute; raise like Python does.
    return safer_getattr(obj, name, default[0] if default else raise_)


def _guarded_hasattr(obj: Any, name: str) -> bool:
    try:
        _guarded_getattr(obj, name)
    except (AttributeError, NotImplementedError):
        return False
    return True


#: Containers a reward builds itself: item (and attribute) writes on them are its own business.
_WRITABLE_TYPES = frozenset({dict, list, collections.Counter, collections.defaultdict,
                             collections.OrderedDict, collections.deque})  # fmt: skip


def _write_guard(obj: Any) -> Any:
    """RestrictedPython's write guard, also letting rewards fill their Counters and deques."""
    return obj if type(obj) in _WRITABLE_TYPES else full_write_guard(obj)


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
        "_write_": _write_guard,
        "_inplacevar_": _inplacevar,
        "_apply_": _apply,
        "_print_": PrintCollector,
    }


def unrestricted_globals() -> dict[str, Any]:
    """Plain globals with full builtins: only to test the OS layer with a simulated escape."""
    return {"__builtins__": builtins, "__name__": "reward"}
