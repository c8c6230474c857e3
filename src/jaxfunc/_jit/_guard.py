"""Guards: proof that a callable still means what it meant when its program was compiled.

A compiled program bakes in everything the function read while it was traced. ``build(root)``
walks the callable and everything it can reach — its code, defaults, closure cells, the
globals its code names, the user objects, classes and helpers those lead to — and generates
one Python function, ``guard(root)``, that re-reads each of those places and compares it
with what was seen:

==========================================  ===========================================
value                                       checked by
==========================================  ===========================================
None, bool, int, float, complex, str        type and value (``-0.0`` is not ``0.0``)
numpy array                                 shape, dtype and content
tuple, list, dict (ordered, default), set   type, length, keys, then each item
user function                               code object, defaults, closure, globals, ...
user object (``__dict__`` or ``__slots__``)  its class, then every attribute, recursively
user class (and its user base classes)      every entry of its ``__dict__``
``jax.jit``/``custom_jvp``/``custom_vjp``   identity, and the user functions inside
jax array on a copyable path                *hoisted*: passed to the compiled program as an
  (global, cell, default, attribute, item)    argument, so reassigning it never recompiles
anything else (modules, library objects)    identity (weakly held where possible)
==========================================  ===========================================

User modules are too large to check whole: their attributes that the code names
(``co_names``) are checked. ``guard(root)`` returns the tuple of hoisted arrays when
everything matches, None when anything changed. ``Plan.rebind(root, values)`` rebuilds the
callable with the hoisted places holding ``values`` (tracers, at trace time): user functions
are copied with new globals and cells, objects and containers on the way to a hoisted array
are shallow-copied, so the user's own objects are never touched.

What a guard cannot see (README, "What the guard cannot see"): impure functions (random
numbers, time, I/O run once, at trace time), state reached only dynamically
(``globals()[name]``, ``getattr(obj, name_variable)``, ``eval``), attributes of user modules
read without naming them in code, and containers over ``MAX_ITEMS`` items, which are
checked by identity and length only.
"""

from __future__ import annotations

import builtins
import copy
import functools
import itertools
import math
import types
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any, TypeGuard

import jax
import numpy as np

from .. import _compat
from . import _rebind

MAX_ITEMS = 256
MAX_CHECKS = 4096
_SNAPSHOT_BYTES = 1 << 16

# Code from these packages does not change under a running program: functions, classes and
# modules from them are checked by identity only.
_LIBRARY_ROOTS = frozenset(
    {
        "jax", "jaxlib", "jaxfunc", "numpy", "scipy", "math", "cmath", "builtins",
        "functools", "operator", "itertools", "collections", "typing", "abc", "enum",
        "torch", "optax", "flax", "equinox", "chex", "ml_dtypes", "opt_einsum", "re",
        "os", "sys", "warnings", "dataclasses", "inspect", "types", "numbers", "random",
        "time", "copy", "weakref", "threading", "contextlib", "string", "json",
    }
)  # fmt: skip
# Instances of classes from these packages are values (arrays, dtypes, shardings...) that
# do not change in place; instances from elsewhere (types.SimpleNamespace included) are data.
_OPAQUE_INSTANCE_ROOTS = frozenset({"jax", "jaxlib", "numpy", "torch", "ml_dtypes"})

_PLAIN_SCALARS = (type(None), bool, int, str, bytes, type(Ellipsis))
_FLOATS = (float, complex)
_JIT_TYPE = type(jax.jit(lambda: None))
_CUSTOM_RULES = {jax.custom_jvp: ("fun", "jvp"), jax.custom_vjp: ("fun", "fwd", "bwd")}
_SKIPPED_CLASS_ENTRIES = frozenset(
    {"__dict__", "__weakref__", "__doc__", "__module__", "__slotnames__"}
)


class Uncacheable(Exception):
    """The callable reaches state that cannot be guarded; it runs uncompiled."""


def _root_module(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        name = getattr(obj, "__module__", None)
        if not isinstance(name, str):
            name = getattr(type(obj), "__module__", "") or ""
    return name.split(".", 1)[0]


def is_library(obj: Any) -> bool:
    """Is this module, class or function part of a library (fixed code)?"""
    return _root_module(obj) in _LIBRARY_ROOTS


def _is_user_function(obj: Any) -> TypeGuard[types.FunctionType]:
    return isinstance(obj, types.FunctionType) and not is_library(obj)


def _same_float(a: Any, b: Any) -> bool:
    """Equal as floats, telling ``-0.0`` from ``0.0`` and treating NaN as equal to NaN."""
    if isinstance(a, complex) or isinstance(b, complex):
        a, b = complex(a), complex(b)
        return _same_float(a.real, b.real) and _same_float(a.imag, b.imag)
    if a != a:
        return b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _empty(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return True
    return False


def _plain_key(k: Any) -> bool:
    if type(k) is tuple:
        return all(_plain_key(x) for x in k)
    return type(k) in _PLAIN_SCALARS or type(k) in _FLOATS


def _copyable(obj: Any) -> bool:
    """Can ``obj`` be shallow-copied, and its copy's attributes set, at trace time?"""
    try:
        copy.copy(obj)
    except Exception:
        return False
    return True


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for c in cls.__mro__:
        slots = c.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


_code_names: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def _names_of(code: types.CodeType) -> tuple[str, ...]:
    """Every global and attribute name ``code`` (or a function nested in it) names."""
    names = _code_names.get(code)
    if names is None:
        names = tuple(sorted({n for c in _walk_code(code) for n in c.co_names}))
        _code_names[code] = names
    return names


def _walk_code(code: types.CodeType) -> Any:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _walk_code(const)


# -- the builder -------------------------------------------------------------------------------

# A place a hoisted array can be reached from: an anchor, then attribute/item steps.
# Anchors: ("global", function index, name), ("cell", function index, cell index),
# ("default", function index, position), ("self",) for a method's or callable's instance.
Path = tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]


class _Builder:
    def __init__(self, hoist: bool) -> None:
        self.hoist = hoist
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_np": np,
            "_ArrayImpl": _compat.ArrayImpl,
            "_same_float": _same_float,
            "_empty": _empty,
        }
        self.counter = itertools.count()
        self.hoisted: list[str] = []  # guard variables whose values are returned
        self.paths: list[Path] = []  # where each hoisted array lives
        self.functions: list[str] = []  # variables holding the rebindable functions
        self.checks = 0
        self.walked: dict[int, str] = {}  # id(function) -> variable of its first visit
        self.instances: dict[int, str] = {}  # id(object) -> variable of its first visit
        self.classes: set[int] = set()
        self.modules: dict[int, set[str]] = {}

    def var(self, expr: str) -> str:
        name = f"v{next(self.counter)}"
        self.lines.append(f"{name} = {expr}")
        return name

    def const(self, value: Any) -> str:
        name = f"k{next(self.counter)}"
        self.ns[name] = value
        return name

    def fail_unless(self, cond: str) -> None:
        self.checks += 1
        if self.checks > MAX_CHECKS:
            raise Uncacheable("too much state to guard")
        self.lines.append(f"if not ({cond}): return None")

    def identity(self, v: str, obj: Any) -> None:
        try:
            ref = weakref.ref(obj)
        except TypeError:
            self.fail_unless(f"{v} is {self.const(obj)}")
            return
        self.fail_unless(f"{v} is {self.const(ref)}() and {v} is not None")

    # -- values ------------------------------------------------------------------------------

    def value(self, v: str, obj: Any, path: Path | None = None, names: tuple = ()) -> None:
        """Guard the value held in variable ``v``; ``path`` says how to rebuild its place at
        trace time (None: it cannot be, so arrays there are checked by identity); ``names``
        are the names the code reading it uses (for user modules)."""
        t = type(obj)
        if isinstance(obj, _compat.Tracer):
            raise Uncacheable("a tracer is reachable from the function")
        if t in _PLAIN_SCALARS:
            self.fail_unless(f"type({v}) is {self.const(t)} and {v} == {self.const(obj)}")
        elif t in _FLOATS or isinstance(obj, np.generic):
            self.fail_unless(
                f"type({v}) is {self.const(t)} and _same_float({v}, {self.const(obj)})"
            )
        elif t is _compat.ArrayImpl:
            if path is not None and self.hoist:
                self.fail_unless(f"type({v}) is _ArrayImpl")
                self.hoisted.append(v)
                self.paths.append(path)
            else:
                self.identity(v, obj)
        elif t is np.ndarray:
            self._ndarray(v, obj)
        elif isinstance(obj, (tuple, list)):
            self._sequence(v, obj, path, names)
        elif isinstance(obj, dict):
            self._mapping(v, obj, path, names)
        elif t in (set, frozenset):
            if len(obj) > MAX_ITEMS or not all(_plain_key(k) for k in obj):
                self.identity(v, obj)
            else:
                self.fail_unless(f"type({v}) is {self.const(t)} and {v} == {self.const(obj)}")
        elif isinstance(obj, types.FunctionType):
            if is_library(obj):
                self.identity(v, obj)
            else:  # rebindable when it sits directly in a rebindable function's global/cell
                anchor_only = path is not None and not path[1] and path[0][0] in ("global", "cell")
                self.function(v, obj, rebindable=anchor_only)
        elif isinstance(obj, types.MethodType):
            self.fail_unless(f"type({v}) is {self.const(types.MethodType)}")
            self_var = self.var(f"{v}.__self__")
            self.value(self_var, obj.__self__, None, names)
            self.value(self.var(f"{v}.__func__"), obj.__func__, None, names)
        elif isinstance(obj, functools.partial):
            self.fail_unless(f"type({v}) is {self.const(t)}")
            self.value(self.var(f"{v}.func"), obj.func, None, names)
            self.value(self.var(f"{v}.args"), obj.args, None, names)
            self.value(self.var(f"{v}.keywords"), dict(obj.keywords), None, names)
        elif isinstance(obj, (_JIT_TYPE, *_CUSTOM_RULES)):
            self.identity(v, obj)
            attrs = _CUSTOM_RULES.get(t, ("__wrapped__",))
            for attr in attrs:
                sub = getattr(obj, attr, None)
                if _is_user_function(sub):
                    self.function(self.var(f"{v}.{attr}"), sub, rebindable=False)
        elif isinstance(obj, types.ModuleType):
            self.identity(v, obj)
            if not is_library(obj):
                self._module(v, obj, names)
        elif isinstance(obj, type):
            self.identity(v, obj)
            self._class(obj)
        elif _root_module(t) in _OPAQUE_INSTANCE_ROOTS or not (
            hasattr(obj, "__dict__") or _slot_names(t)
        ):
            self.identity(v, obj)
        else:
            self._instance(v, obj, path, names)

    def _ndarray(self, v: str, arr: np.ndarray) -> None:
        self.fail_unless(
            f"type({v}) is _np.ndarray and {v}.shape == {self.const(arr.shape)} "
            f"and {v}.dtype == {self.const(arr.dtype)}"
        )
        if arr.dtype == object:
            raise Uncacheable("numpy array of Python objects")
        if arr.nbytes <= _SNAPSHOT_BYTES:
            self.fail_unless(f"{v}.tobytes() == {self.const(arr.tobytes())}")
        else:
            self.fail_unless(f"_np.array_equal({v}, {self.const(arr.copy())}, equal_nan=True)")

    @staticmethod
    def _step(path: Path | None, step: tuple[str, Any]) -> Path | None:
        return None if path is None else (path[0], (*path[1], step))

    def _sequence(self, v: str, obj: Any, path: Path | None, names: tuple) -> None:
        self.fail_unless(f"type({v}) is {self.const(type(obj))} and len({v}) == {len(obj)}")
        if len(obj) > MAX_ITEMS:
            self.identity(v, obj)
            return
        for i, item in enumerate(obj):
            self.value(self.var(f"{v}[{i}]"), item, self._step(path, ("item", i)), names)

    def _mapping(self, v: str, obj: dict, path: Path | None, names: tuple) -> None:
        t = type(obj)
        self.fail_unless(f"type({v}) is {self.const(t)} and len({v}) == {len(obj)}")
        if t not in (dict, OrderedDict, defaultdict):
            path = None  # a dict subclass of unknown construction: read, never rebuilt
        if len(obj) > MAX_ITEMS or not all(_plain_key(k) for k in obj):
            self.identity(v, obj)
            return
        self.fail_unless(f"list({v}) == {self.const(list(obj))}")
        if isinstance(obj, defaultdict):
            self.value(self.var(f"{v}.default_factory"), obj.default_factory, None, names)
        for k, item in obj.items():
            item_v = self.var(f"{v}[{self.const(k)}]")
            self.value(item_v, item, self._step(path, ("item", k)), names)

    def _instance(self, v: str, obj: Any, path: Path | None, names: tuple) -> None:
        """A user object: its class, then every attribute it holds (wherever read)."""
        first = self.instances.get(id(obj))
        if first is not None:  # met before (shared or cyclic): the same object again
            self.fail_unless(f"{v} is {first}")
            return
        self.instances[id(obj)] = v
        cls = type(obj)
        if path is not None and not _copyable(obj):  # (copying may cache __slotnames__)
            path = None
        self.fail_unless(f"type({v}) is {self.const(cls)}")
        self._class(cls)
        if hasattr(obj, "__dict__"):
            attrs = vars(obj)
            d = self.var(f"{v}.__dict__")
            self.fail_unless(f"list({d}) == {self.const(list(attrs))}")
            for name, item in attrs.items():
                item_v = self.var(f"{d}[{self.const(name)}]")
                self.value(item_v, item, self._step(path, ("attr", name)), names)
        for name in _slot_names(cls):
            if hasattr(obj, name):
                item_v = self.var(f"getattr({v}, {self.const(name)})")
                self.value(item_v, getattr(obj, name), self._step(path, ("attr", name)), names)
            else:
                self.fail_unless(f"not hasattr({v}, {self.const(name)})")
        call = getattr(cls, "__call__", None)
        if _is_user_function(call):
            self.function(self.var(f"type({v}).__call__"), call, rebindable=False)

    def _class(self, cls: type) -> None:
        """Every entry of a user class's ``__dict__`` (and of its user base classes')."""
        for c in cls.__mro__:
            if id(c) in self.classes or is_library(c):
                continue
            self.classes.add(id(c))
            cv = self.var(self.const(c))
            entries = {k: e for k, e in vars(c).items() if k not in _SKIPPED_CLASS_ENTRIES}
            d = self.var(f"{cv}.__dict__")
            self.fail_unless(f"len({d}) == {len(vars(c))}")
            for name, entry in entries.items():
                ev = self.var(f"{d}[{self.const(name)}]")
                if isinstance(entry, (staticmethod, classmethod)):
                    self.identity(ev, entry)
                    self.value(self.var(f"{ev}.__func__"), entry.__func__)
                elif isinstance(entry, property):
                    self.identity(ev, entry)
                    for accessor in ("fget", "fset", "fdel"):
                        if getattr(entry, accessor) is not None:
                            sub = getattr(entry, accessor)
                            self.value(self.var(f"{ev}.{accessor}"), sub)
                else:
                    self.value(ev, entry)

    def _module(self, v: str, module: types.ModuleType, names: tuple) -> None:
        """A user module: its attributes that the code names."""
        seen = self.modules.setdefault(id(module), set())
        own = vars(module)
        for name in names:
            if name in own and name not in seen:
                seen.add(name)
                self.value(self.var(f"{v}.{name}"), own[name], None, names)

    # -- functions ---------------------------------------------------------------------------

    def function(self, v: str, fn: types.FunctionType, rebindable: bool) -> None:
        code = fn.__code__
        first = self.walked.get(id(fn))
        if first is not None:  # walked before (recursion, or met again): the same function
            self.fail_unless(f"{v} is {first}")
            return
        self.walked[id(fn)] = v
        self.fail_unless(f"{v}.__code__ is {self.const(code)}")
        index: int | None = None
        if rebindable:
            index = len(self.functions)
            self.functions.append(v)
        names = _names_of(code)

        def anchor(kind: str, key: Any) -> Path | None:
            return None if index is None else ((kind, index, key), ())

        defaults = fn.__defaults__
        if defaults is None:
            self.fail_unless(f"{v}.__defaults__ is None")
        else:
            d = self.var(f"{v}.__defaults__")
            self.fail_unless(f"type({d}) is tuple and len({d}) == {len(defaults)}")
            for i, item in enumerate(defaults):
                self.value(self.var(f"{d}[{i}]"), item, anchor("default", i), names)
        kw = fn.__kwdefaults__
        if kw is None:
            self.fail_unless(f"{v}.__kwdefaults__ is None")
        else:
            self.value(self.var(f"{v}.__kwdefaults__"), dict(kw), None, names)
        for i, cell in enumerate(fn.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (assigned later): it must still be empty
                self.fail_unless(f"_empty({v}.__closure__[{i}])")
                continue
            cv = self.var(f"{v}.__closure__[{i}].cell_contents")
            self.value(cv, content, anchor("cell", i), names)
        g = self.var(f"{v}.__globals__")
        fn_builtins = fn.__globals__.get("__builtins__", builtins)
        if isinstance(fn_builtins, types.ModuleType):
            fn_builtins = vars(fn_builtins)
        for name in names:
            if name in fn.__globals__:
                gv = self.var(f"{g}[{self.const(name)}]")
                self.value(gv, fn.__globals__[name], anchor("global", name), names)
            else:  # a builtin or an attribute name: stays so while no global shadows it
                self.fail_unless(f"{self.const(name)} not in {g}")
                if name in fn_builtins:
                    bv = self.var(f"{self.const(fn_builtins)}[{self.const(name)}]")
                    self.identity(bv, fn_builtins[name])


# -- plans -------------------------------------------------------------------------------------


class Plan:
    """A callable's guard, its hoisting plan, and the guard's generated source (``source``,
    for debugging: ``print(plan.source)`` shows every check the guard makes)."""

    __slots__ = ("functions", "guard", "paths", "root_kind", "source")

    def __init__(
        self, guard: Callable, paths: list, functions: Callable, root_kind: str, source: str
    ) -> None:
        self.guard = guard
        self.paths = paths
        self.functions = functions
        self.root_kind = root_kind
        self.source = source

    def rebind(self, root: Any, values: tuple[Any, ...]) -> Any:
        """``root`` rebuilt so that each hoisted place reads ``values[i]`` instead."""
        if not self.paths:
            return root
        return _rebind.rebind(root, self.root_kind, list(self.functions(root)), self.paths, values)


def build(root: Any, hoist: bool = True) -> Plan:
    """Walk ``root`` and generate its guard. Raises :class:`Uncacheable`.

    ``hoist=False`` checks every array by identity instead of hoisting it (for functions
    that steer Python control flow with an array's value).
    """
    b = _Builder(hoist)
    b.lines.append("pass")
    self_path: Path = (("self",), ())
    if _is_user_function(root):
        kind = "function"
        b.function("root", root, rebindable=True)
    elif isinstance(root, types.MethodType) and _is_user_function(root.__func__):
        kind = "method"
        b.function(b.var("root.__func__"), root.__func__, rebindable=True)
        b.value(b.var("root.__self__"), root.__self__, self_path)
    elif _is_user_function(call := getattr(type(root), "__call__", None)) and not isinstance(
        root, functools.partial
    ):
        kind = "object"
        b.function(b.var("type(root).__call__"), call, rebindable=True)
        b.value("root", root, self_path)
    else:
        kind = "opaque"
        b.value("root", root)
    body = "\n        ".join(b.lines)
    hoisted = ", ".join(b.hoisted) + ("," if len(b.hoisted) == 1 else "")
    src = (
        "def guard(root):\n"
        "    try:\n"
        f"        {body}\n"
        f"        return ({hoisted})\n"
        "    except Exception:\n"
        "        return None\n"
    )
    ns = dict(b.ns)
    exec(compile(src, "<jaxfunc guard>", "exec"), ns)
    fns_ns = dict(b.ns)
    exec(compile(_functions_source(b), "<jaxfunc rebind>", "exec"), fns_ns)
    return Plan(ns["guard"], b.paths, fns_ns["functions"], kind, src)


def _functions_source(b: _Builder) -> str:
    """``functions(root)``: the rebindable functions, read the way the guard reads them."""
    assigns = [line for line in b.lines if not line.startswith("if ") and line != "pass"]
    body = "\n    ".join(assigns) or "pass"
    out = ", ".join(b.functions) + ("," if len(b.functions) == 1 else "")
    return f"def functions(root):\n    {body}\n    return ({out})\n"
