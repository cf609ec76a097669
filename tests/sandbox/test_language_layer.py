"""The language layer: allow-listed module views, guarded builtins, and the escapes they stop.

``ESCAPES`` are reward programs that try one language-level escape each (or use the helper it
needs), through a stdlib helper that gets or sets attributes by a caller-chosen name, evaluates a
string, or hands out frames, globals or modules. The attempt runs at the module's top level, so
if it works the reward loads and is accepted; each case names the message that proves the
language layer (an allow-list of :mod:`rewardsmith.sandbox._restrict`, its builtins and guards,
or RestrictedPython) stopped it. The attribute-chain crawl shows that no plain reads from a
module view reach such a helper, a module, a frame or module globals.
``LEGITIMATE`` programs use the allowed helpers normally and must still be accepted.
"""

from __future__ import annotations

import builtins
import collections
import functools
import operator
import string
import sys
import types
import typing
from collections.abc import Iterable
from typing import Any

import pytest
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from rewardsmith.rewards.validation import validate_reward_code
from rewardsmith.sandbox import _restrict

_REWARD = (
    "\n\ndef r(prompts, completions, answer, **kwargs):\n"
    "    return [float(len(str(c)) % 3) for c in completions]\n"
)


def _missing(module: str, attr: str) -> str:
    return f"module {module!r} has no attribute {attr!r} available to rewards"


def _underscore(attr: str) -> str:
    return f'"{attr}" is an invalid attribute name because it starts with "_"'


# name: (top-level code that escapes if the layer fails, what the rejection must say)
ESCAPES = {
    # The escape of issue 9: statistics' real globals (with ``sys``) merged into the reward's.
    "update_wrapper_merges_globals": (
        "import functools, statistics\n"
        "def _g():\n    pass\n"
        "functools.update_wrapper(_g, statistics.mean, assigned=(), updated=('__globals__',))\n"
        "_b = sys.modules['builtins']\n"
        "_b.exec('import os', {'__builtins__': _b})",
        _missing("functools", "update_wrapper"),
    ),
    "from_import_update_wrapper": (
        "from functools import update_wrapper\nimport statistics\n"
        "def _g():\n    pass\n"
        "update_wrapper(_g, statistics.mean, assigned=(), updated=('__globals__',))\n"
        "_os = sys.modules['os']",
        _missing("functools", "update_wrapper"),
    ),
    "wraps_merges_globals": (
        "import functools, statistics\n"
        "@functools.wraps(statistics.mean, assigned=(), updated=('__globals__',))\n"
        "def _g():\n    pass\n"
        "_os = sys.modules['os']",
        _missing("functools", "wraps"),
    ),
    # total_ordering reads and sets dunders on the class by name, installing functools' own
    # functions (and their globals) on a reward class.
    "total_ordering_sets_dunders": (
        "import functools\n"
        "@functools.total_ordering\n"
        "class _A:\n    def __lt__(self, other):\n        return True\n"
        "_x = _A() > _A()",
        _missing("functools", "total_ordering"),
    ),
    # singledispatch.register evaluates string annotations with eval(), unrestricted.
    "singledispatch_register_evaluates_annotation": (
        "import functools\n"
        "@functools.singledispatch\ndef _f(x):\n    return x\n"
        "@_f.register\ndef _g(x: '().__class__.__base__.__subclasses__()'):\n    return x",
        _missing("functools", "singledispatch"),
    ),
    "cached_property_writes_instance_dict": (
        "import functools\nclass _A:\n    x = functools.cached_property(len)\n",
        _missing("functools", "cached_property"),
    ),
    # namedtuple reads the caller's frame (sys._getframe) and sets __module__ from module=.
    "namedtuple_module_and_frame": (
        "import collections\n_P = collections.namedtuple('_P', 'x', module='builtins')",
        _missing("collections", "namedtuple"),
    ),
    "operator_attrgetter_globals": (
        "import operator, statistics\n"
        "_g = operator.attrgetter('__globals__')(statistics.mean)\n"
        "_exec = _g['sys'].modules['builtins'].exec",
        _missing("operator", "attrgetter"),
    ),
    "operator_methodcaller_getattribute": (
        "import operator, statistics\n"
        "_g = operator.methodcaller('__getattribute__', '__globals__')(statistics.mean)",
        _missing("operator", "methodcaller"),
    ),
    # setitem/delitem bypass the write guard that ``x[k] = v`` goes through.
    "operator_setitem_skips_write_guard": (
        "import operator, decimal\n"
        "operator.setitem(decimal.getcontext().traps, decimal.InvalidOperation, False)",
        _missing("operator", "setitem"),
    ),
    # Formatter.get_field walks '0.__globals__' with getattr and returns the object itself.
    "string_formatter_get_field": (
        "import string, statistics\n"
        "_g = string.Formatter().get_field('0.__globals__', (statistics.mean,), {})[0]\n"
        "_exec = _g['sys'].modules['builtins'].exec",
        _missing("string", "Formatter"),
    ),
    # No escape known: out because rewards do not need it (a subclass hook compiles patterns).
    "string_template_subclass_hooks": (
        "import string\nclass _T(string.Template):\n    delimiter = '%'\n"
        "_s = _T('%x').substitute(x=1)",
        _missing("string", "Template"),
    ),
    # UserString.format is str.format on another type: field lookups reach any attribute.
    "userstring_format_reads_globals": (
        "import collections, statistics\n"
        "_s = collections.UserString('{0.__globals__[sys].modules}').format(statistics.mean)",
        _missing("collections", "UserString"),
    ),
    # Annotated[str, ...] forwards attribute reads to str, so .format escaped the str guard.
    "typing_annotated_forwards_str_format": (
        "import typing, statistics\n"
        "_fmt = typing.Annotated[str, 0].format\n"
        "_s = _fmt('{0.__globals__[sys].modules}', statistics.mean)",
        _missing("typing", "Annotated"),
    ),
    # get_type_hints eval()s string annotations: attribute access RestrictedPython never saw.
    "typing_get_type_hints_evaluates_string": (
        "import typing\n"
        "def _f(x: '().__class__.__base__.__subclasses__()'):\n    return x\n"
        "_classes = typing.get_type_hints(_f)['x']",
        _missing("typing", "get_type_hints"),
    ),
    "typing_forwardref_evaluate": (
        "import typing\n"
        "_ref = typing.ForwardRef('().__class__.__base__.__subclasses__()')\n"
        "_classes = getattr(_ref, '_evaluate')({}, {}, frozenset())",
        _missing("typing", "ForwardRef"),
    ),
    "typing_namedtuple_frame": (
        "import typing\n_P = typing.NamedTuple('_P', [('x', int)])",
        _missing("typing", "NamedTuple"),
    ),
    # TypeVar/NewType read their caller's frame to set __module__.
    "typing_newtype_frame": (
        "import typing\n_T = typing.NewType('_T', int)",
        _missing("typing", "NewType"),
    ),
    # The decoder holds json.decoder's JSONObject, a function whose globals hold real `re`.
    "json_decoder_internals": (
        "import json, functools\n"
        "def _g():\n    pass\n"
        "_parse_object = json.JSONDecoder().parse_object\n"
        "functools.update_wrapper(_g, _parse_object, assigned=(), updated=('__globals__',))\n"
        "_sys = re.enum.sys",
        _missing("json", "JSONDecoder"),
    ),
    "json_submodule": ("import json\n_f = json.decoder.scanstring", _missing("json", "decoder")),
    "re_submodule_functools": (
        "import re\n_w = re.functools.update_wrapper",
        _missing("re", "functools"),
    ),
    "statistics_sys_module": (
        "import statistics\n_m = statistics.sys.modules",
        _missing("statistics", "sys"),
    ),
    "random_system_random": (
        "import random\n_x = random.SystemRandom().random()",
        _missing("random", "SystemRandom"),
    ),
    "decimal_setcontext": (
        "import decimal\ndecimal.setcontext(decimal.Context(prec=1))",
        _missing("decimal", "setcontext"),
    ),
    "module_view_write": (
        "import math\nmath.pi = 3",
        "attribute-less object",  # RestrictedPython's write guard
    ),
    "module_view_private": ("import math\n_d = math._attributes", _underscore("_attributes")),
    "module_view_getattr_private": (
        "import math\n_d = getattr(math, '_attri' + 'butes')",
        _underscore("_attributes"),
    ),
    "vars_builtin": ("import re\n_d = vars(re)", "name 'vars' is not defined"),
    "dir_builtin": ("import re\n_d = dir(re)", "name 'dir' is not defined"),
    # A stdlib generator's frame holds heapq's globals; the name is built at run time.
    "stdlib_generator_frame": (
        "import heapq\n_g = heapq.merge([1], [2])\n_f = getattr(_g, 'gi_' + 'frame')",
        '"gi_frame" is a restricted name',
    ),
    "format_via_getattr": (
        "_f = getattr('{0.__class__}', 'for' + 'mat')",
        "format() is not available to rewards",
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escape_is_stopped_by_the_language_layer(case, pool):
    prelude, stopped_by = ESCAPES[case]
    verdict = validate_reward_code(prelude + _REWARD, pool=pool, timeout_s=2.0)
    assert not verdict.accepted, verdict
    assert verdict.stage in ("restrict", "load"), verdict
    assert stopped_by in verdict.reason, verdict.reason


def _legit(prelude: str, score: str) -> str:
    """A reward whose score for completion text ``t`` is the expression ``score``."""
    return (
        f"{prelude}\n\n"
        "def _text(c):\n"
        "    return c[-1]['content'] if isinstance(c, list) else str(c)\n\n"
        "def r(prompts, completions, answer, **kwargs):\n"
        f"    return [float({score}) for t in map(_text, completions)]\n"
    )


# name: reward program using allowed helpers the ordinary way (comment: what it exercises)
LEGITIMATE = {
    "re_functions_and_flags": _legit(
        "import re\n_TAG = re.compile(r'<solution>(.*?)</solution>', re.DOTALL | re.IGNORECASE)",
        "len(re.findall(r'\\d+', t)) + bool(_TAG.search(t)) + len(re.split(r'\\s+', t))"
        " + len(re.sub(re.escape('.'), '', t)) % 2",
    ),
    "math_and_cmath": _legit(
        "import math, cmath",
        "math.isclose(len(t), 10.0, rel_tol=0.5) + math.exp(-len(t) / 100) + math.log1p(len(t))"
        " + math.floor(math.pi) + abs(cmath.sqrt(-1)) + math.isfinite(math.inf)",
    ),
    "seeded_random": _legit(
        "import random", "random.Random(len(t)).random() + random.Random(0).choice([1, 2])"
    ),
    "statistics": _legit(
        "import statistics",
        "statistics.mean([len(w) for w in t.split()] or [0])"
        " + statistics.median([1, 2, len(t)]) + statistics.pstdev([1.0, 2.0, 3.0])"
        " + statistics.stdev([1, 2, 4]) + statistics.mode([1, 1, 2])",
    ),
    "json_round_trip": _legit(
        "import json\n"
        "def _parse(s):\n    try:\n        return json.loads(s)\n"
        "    except json.JSONDecodeError:\n        return None",
        "len(json.dumps({'n': len(t)}, sort_keys=True)) + (_parse(t) is None)",
    ),
    "itertools": _legit(
        "import itertools",
        "len([k for k, _ in itertools.groupby(t)]) + len(list(itertools.islice(t, 3)))"
        " + len(list(itertools.combinations('abc', 2))) + sum(itertools.accumulate([1, 2]))"
        " + len(list(itertools.chain.from_iterable([[1], [2]])))",
    ),
    "functools": _legit(
        "import functools, operator\n"
        "@functools.lru_cache(maxsize=None)\ndef _fib(n):\n"
        "    return n if n < 2 else _fib(n - 1) + _fib(n - 2)\n"
        "@functools.cache\ndef _double(n):\n    return 2 * n\n"
        "_inc = functools.partial(operator.add, 1)\n"
        "_key = functools.cmp_to_key(lambda a, b: len(a) - len(b))",
        "functools.reduce(operator.add, [1, 2, 3]) + _fib(10) + _double(2) + _inc(len(t))"
        " + len(sorted(t.split(), key=_key))",
    ),
    "operator": _legit(
        "import operator",
        "operator.itemgetter(0)([len(t)]) + operator.mul(2, 3) + operator.lt(1, 2)",
    ),
    "string_constants": _legit(
        "import string",
        "sum(ch in string.digits + string.punctuation for ch in t)"
        " + len(string.capwords('a b')) + (string.ascii_letters[0] == 'a')",
    ),
    "collections": _legit(
        """from collections import Counter, OrderedDict, defaultdict, deque
def _stats(t):
    counts = Counter(t.split())
    counts['extra'] = 1
    groups = defaultdict(list)
    for w in t.split():
        groups[len(w)].append(w)
    groups[0] = []
    order = OrderedDict(a=1)
    window = deque(t + 'xyz', maxlen=3)
    window[0] = 'x'
    return len(counts.most_common(1)) + len(groups) + len(order) + len(window)""",
        "_stats(t)",
    ),
    "typing_annotations": _legit(
        "import typing\nfrom typing import Any, Callable, Dict, List, Optional, Sequence, Tuple\n"
        "def _score(words: List[str], table: Dict[str, int], f: Callable[[str], int],\n"
        "           seq: Sequence[Any], pair: Tuple[int, int],\n"
        "           extra: Optional[typing.Union[int, float]] = None) -> float:\n"
        "    return float(len(words) + len(table) + f('ab') + len(seq) + sum(pair))",
        "_score(t.split(), {}, len, [], (1, 2)) + typing.cast(int, 1)",
    ),
    "fractions_and_decimal": _legit(
        "import decimal\nfrom fractions import Fraction\n"
        "def _money(s):\n    try:\n        d = decimal.Decimal(s)\n"
        "    except decimal.InvalidOperation:\n        return 0.0\n"
        "    return float(d.quantize(decimal.Decimal('0.1'), rounding=decimal.ROUND_HALF_UP))",
        "_money('1.25') + _money(t) + float(Fraction(1, 3) + Fraction('1/6'))"
        " + float(Fraction(len(t), 7).limit_denominator(3))"
        " + decimal.getcontext().prec + float(decimal.Decimal(1) / decimal.Decimal(3))",
    ),
    "unicodedata_heapq_bisect": _legit(
        "import bisect, heapq, unicodedata",
        "len(unicodedata.normalize('NFKC', t)) + (unicodedata.category('a') == 'Ll')"
        " + heapq.nlargest(1, [1, len(t)])[0] + bisect.bisect_left([1, 5, 9], len(t) % 10)",
    ),
    "difflib": _legit(
        "import difflib",
        "difflib.SequenceMatcher(None, t, 'The answer is 72').ratio()"
        " + len(difflib.get_close_matches('appel', ['apple', 'ape']))",
    ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(LEGITIMATE))
def test_legitimate_use_of_allowed_modules_is_accepted(case, pool):
    verdict = validate_reward_code(LEGITIMATE[case], pool=pool, timeout_s=2.0)
    assert verdict.accepted, verdict


def test_every_allowed_module_has_a_table():
    assert _restrict.ALLOWED_MODULES <= _restrict._SAFE_ATTRIBUTES.keys()
    _restrict.check_tables()  # listed names exist and none is a module


def test_an_allowed_module_without_a_table_fails_at_worker_start(monkeypatch):
    monkeypatch.setattr(_restrict, "ALLOWED_MODULES", _restrict.ALLOWED_MODULES | {"textwrap"})
    with pytest.raises(RuntimeError, match="without a table.*textwrap"):
        _restrict.preload_modules()


def test_a_bad_table_entry_fails_at_worker_start(monkeypatch):
    tables = dict(_restrict._SAFE_ATTRIBUTES, re=("findall", "functools", "no_such_name"))
    monkeypatch.setattr(_restrict, "_SAFE_ATTRIBUTES", tables)
    with pytest.raises(RuntimeError, match="re.functools is a module.*re.no_such_name"):
        _restrict.preload_modules()


@pytest.mark.parametrize("name", sorted(_restrict.ALLOWED_MODULES))
def test_module_view_holds_exactly_its_table_read_only(name):
    view = _restrict.module_view(name)
    assert dir(view) == sorted(_restrict._SAFE_ATTRIBUTES[name])
    assert not any(isinstance(getattr(view, attr), types.ModuleType) for attr in dir(view))
    assert not hasattr(view, "__dict__")
    with pytest.raises(TypeError):
        vars(view)
    with pytest.raises(AttributeError, match="read-only"):
        view.pi = 3  # the write guard stops this in a reward; the view refuses it anyway
    with pytest.raises(AttributeError, match="read-only"):
        del view.pi
    with pytest.raises(AttributeError, match="available to rewards"):
        view.no_such_name  # noqa: B018 - the lookup is the test


def test_builtins_hold_no_introspection_or_evaluation():
    safe = _restrict.restricted_globals()["__builtins__"]
    forbidden = {"vars", "dir", "globals", "locals", "type", "object", "super", "eval", "exec",
                 "compile", "open", "input", "breakpoint", "help", "memoryview", "setattr",
                 "delattr", "id", "classmethod", "staticmethod", "property"}  # fmt: skip
    assert forbidden.isdisjoint(safe)
    assert safe["getattr"] is _restrict._guarded_getattr
    assert safe["__import__"].__name__ == "__import__"  # the guarded one, not builtins'
    assert safe["__import__"] is not builtins.__import__


def test_getattr_refuses_format_on_any_object():
    """``Annotated[str, 0]`` forwards attribute reads to ``str``: RestrictedPython's guard,
    which refuses ``format`` only on ``str``, let ``str.format`` through."""
    with pytest.raises(NotImplementedError, match="f-string"):
        _restrict._guarded_getattr(typing.Annotated[str, 0], "format")
    assert not _restrict._guarded_hasattr(typing.Annotated[str, 0], "format_map")


#: Objects no chain of plain attribute reads from a module view may reach.
_DANGEROUS = {
    "eval": eval, "exec": exec, "compile": compile, "open": open, "getattr": getattr,
    "setattr": setattr, "delattr": delattr, "vars": vars, "globals": globals, "dir": dir,
    "type": type, "__import__": __import__, "update_wrapper": functools.update_wrapper,
    "wraps": functools.wraps, "total_ordering": functools.total_ordering,
    "singledispatch": functools.singledispatch, "attrgetter": operator.attrgetter,
    "methodcaller": operator.methodcaller, "Formatter": string.Formatter,
    "get_type_hints": typing.get_type_hints, "ForwardRef": typing.ForwardRef,
    "namedtuple": collections.namedtuple, "UserString": collections.UserString,
    "_getframe": sys._getframe,
}  # fmt: skip
_DANGEROUS_TYPES = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType)


def _reachable_dangers(roots: Iterable[tuple[str, Any]], depth: int = 6) -> list[str]:
    """Paths of dangerous objects reachable by reads a reward may write (``x.name``, ``.mro()``)."""
    dangerous = {id(obj) for obj in _DANGEROUS.values()}
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen: dict[int, Any] = {}  # id -> object, kept alive so ids are not reused
    frontier, found = list(roots), []
    for _ in range(depth):
        reached = []
        for path, obj in frontier:
            if id(obj) in seen:
                continue
            seen[id(obj)] = obj
            if id(obj) in dangerous | module_dicts or isinstance(obj, _DANGEROUS_TYPES):
                found.append(path)
                continue
            if isinstance(obj, type):
                reached += [(f"{path}.mro()[{i}]", cls) for i, cls in enumerate(obj.__mro__)]
            for name in dir(obj):
                if name.startswith("_") or name in INSPECT_ATTRIBUTES or name.startswith("format"):
                    continue  # refused by the getattr guard
                try:
                    reached.append((f"{path}.{name}", getattr(obj, name)))
                except Exception:  # noqa: BLE001, S112 - a failing read reaches nothing
                    continue
        frontier = reached
    return found


def test_crawler_finds_a_leak():
    assert _reachable_dangers([("x", collections)]) == ["x"]
    assert _reachable_dangers([("f", functools.partial(functools.wraps))]) == ["f.func"]


def test_no_attribute_chain_from_a_view_reaches_a_dangerous_object():
    roots = []
    for name in sorted(_restrict.ALLOWED_MODULES):
        view = _restrict.module_view(name)
        roots += [(f"{name}.{attr}", getattr(view, attr)) for attr in dir(view)]
    assert _reachable_dangers(roots) == []
