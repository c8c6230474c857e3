"""Guards: proof that a callable still means what it meant when its program was compiled.

A compiled program bakes in everything the function read while it was traced: the values
of globals, closure cells, defaults, attributes, the helpers it called. ``build(root)``
walks the callable the way Python will run it (its closure cells, the globals its code
names, the attributes its code names on user modules, classes and objects, recursively
through user-defined helpers) and generates one Python function, ``guard(root)``, that
re-reads each of those places and compares it with what was seen:

=====================================  =============================================
value                                  checked by
=====================================  =============================================
None, bool, int, float, complex, str   type and value
numpy array                            shape, dtype and content (bytes, or a copy)
tuple, list, dict                      type, length, keys, then each item
user function                          code object, defaults, closure, globals, ...
jax array in a global / closure cell   *hoisted*: passed to the compiled program as an
of a user function                     argument, so reassigning it never recompiles
anything else (modules, classes,       identity (held through a weak reference when
library functions, arrays elsewhere)   the object allows one)
=====================================  =============================================

``guard(root)`` returns the tuple of hoisted values when everything matches, None when
anything changed. ``rebind(root, values)`` rebuilds the user functions with the hoisted
values swapped in (at trace time the values are tracers), so the compiled program reads
them as arguments instead of constants.

What a guard cannot see (documented in README): impure functions (random numbers, time,
I/O run once, at trace time), state reached only dynamically (``globals()[name]``,
``getattr(obj, name_variable)``, ``eval``), and containers with more than ``MAX_ITEMS``
items, which are compared by identity and length only.
"""

from __future__ import annotations

import functools
import itertools
import types
import weakref
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np

from . import _compat

MAX_ITEMS = 256
MAX_CHECKS = 4096
_SNAPSHOT_BYTES = 1 << 16

_LIBRARY_ROOTS = frozenset(
    {
        "jax", "jaxlib", "jaxfunc", "numpy", "scipy", "math", "cmath", "builtins",
        "functools", "operator", "itertools", "collections", "typing", "abc", "enum",
        "torch", "optax", "flax", "equinox", "chex", "ml_dtypes", "opt_einsum", "re",
        "os", "sys", "warnings", "dataclasses", "inspect", "types", "numbers", "random",
        "time", "copy", "weakref", "threading", "contextlib", "string", "json",
    }
)  # fmt: skip

_PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))


class Uncacheable(Exception):
    """The callable reaches state that cannot be guarded; it runs uncompiled."""


def is_library(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        return obj.__name__.split(".", 1)[0] in _LIBRARY_ROOTS
    mod = getattr(obj, "__module__", None)
    if not isinstance(mod, str):
        mod = getattr(type(obj), "__module__", "") or ""
    return mod.split(".", 1)[0] in _LIBRARY_ROOTS


def _is_user_function(obj: Any) -> TypeGuard[types.FunctionType]:
    return isinstance(obj, types.FunctionType) and not is_library(obj)


# -- which names a code object reads -------------------------------------------------------------

_code_names: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def _names_of(code: types.CodeType) -> tuple[str, ...]:
    """Every global and attribute name ``code`` (or a function nested in it) can read.

    ``co_names`` holds both kinds; relying on it rather than on bytecode patterns keeps the
    guard right across Python versions (3.13 fuses loads into new instructions).
    """
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


class _Builder:
    def __init__(self, hoist: bool) -> None:
        self.hoist = hoist
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_np": np,
            "_ArrayImpl": _compat.ArrayImpl,
            "_same_float": _same_float,
        }
        self.counter = itertools.count()
        self.hoisted: list[str] = []  # guard variables whose values are returned
        self.slots: list[tuple[int, str, Any]] = []  # (function index, kind, key)
        self.functions: list[str] = []  # variables holding the rebindable functions
        self.checks = 0
        self.stack: list[int] = []
        self.attr_seen: set[int] = set()

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

    def value(self, v: str, obj: Any, owner: int | None = None, slot: Any = None) -> None:
        """Guard the value held in variable ``v``.

        ``owner``/``slot`` say where it sits when that place can be rebound at trace time
        (a global, closure cell or default of a rebindable function).
        """
        t = type(obj)
        if isinstance(obj, _compat.Tracer):
            raise Uncacheable("a tracer is reachable from the function")
        if t in _PLAIN_SCALARS:
            if t is float or t is complex:
                self.fail_unless(
                    f"type({v}) is {t.__name__} and _same_float({v}, {self.const(obj)})"
                )
            else:
                self.fail_unless(f"type({v}) is {self.const(t)} and {v} == {self.const(obj)}")
        elif isinstance(obj, np.generic):
            self.fail_unless(
                f"type({v}) is {self.const(t)} and _same_float({v}, {self.const(obj)})"
            )
        elif t is _compat.ArrayImpl:
            if owner is not None and self.hoist:
                self.fail_unless(f"type({v}) is _ArrayImpl")
                self.hoisted.append(v)
                self.slots.append((owner, slot[0], slot[1]))
            else:
                self.identity(v, obj)
        elif t is np.ndarray:
            self._ndarray(v, obj)
        elif t is tuple:
            self.fail_unless(f"type({v}) is tuple and len({v}) == {len(obj)}")
            for i, item in enumerate(obj):
                self.value(self.var(f"{v}[{i}]"), item)
        elif t is list:
            self.fail_unless(f"type({v}) is list and len({v}) == {len(obj)}")
            if len(obj) > MAX_ITEMS:
                self.identity(v, obj)
                return
            for i, item in enumerate(obj):
                self.value(self.var(f"{v}[{i}]"), item)
        elif t is dict:
            self.fail_unless(f"type({v}) is dict and len({v}) == {len(obj)}")
            if len(obj) > MAX_ITEMS or not all(type(k) in _PLAIN_SCALARS for k in obj):
                self.identity(v, obj)
                return
            self.fail_unless(f"list({v}) == {self.const(list(obj))}")
            for k, item in obj.items():
                self.value(self.var(f"{v}[{self.const(k)}]"), item)
        elif isinstance(obj, types.FunctionType):
            if is_library(obj):
                self.identity(v, obj)
            else:  # reached through a default it stays as it is (only cells/globals rebind)
                self.function(v, obj, rebindable=owner is not None and slot[0] != "default")
        elif isinstance(obj, types.MethodType):
            self.fail_unless(f"type({v}) is {self.const(types.MethodType)}")
            self.value(self.var(f"{v}.__func__"), obj.__func__)
            self.identity(self.var(f"{v}.__self__"), obj.__self__)
        elif isinstance(obj, functools.partial):
            self.fail_unless(f"type({v}) is {self.const(t)}")
            self.value(self.var(f"{v}.func"), obj.func)
            self.value(self.var(f"{v}.args"), obj.args)
            self.value(self.var(f"{v}.keywords"), dict(obj.keywords))
        elif isinstance(obj, (types.ModuleType, type)) or is_library(obj):
            self.identity(v, obj)
            wrapped = getattr(obj, "__wrapped__", None)
            if _is_user_function(wrapped):  # jax.jit / custom_jvp of a user function
                self.function(self.var(f"{v}.__wrapped__"), wrapped, rebindable=False)
            for attr in ("fun", "jvp", "fwd", "bwd"):  # custom_jvp / custom_vjp rules
                sub = (
                    getattr(obj, attr, None)
                    if not isinstance(obj, (types.ModuleType, type))
                    else None
                )
                if _is_user_function(sub):
                    self.function(self.var(f"{v}.{attr}"), sub, rebindable=False)
        else:  # a user object: identity; its attributes are guarded where the code reads them
            self.identity(v, obj)
            call = getattr(t, "__call__", None)
            if _is_user_function(call):
                self.function(
                    self.var(f"type({v}).__call__"),
                    call,
                    rebindable=False,
                    self_var=v,
                    self_obj=obj,
                )

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

    # -- functions ---------------------------------------------------------------------------

    def function(
        self,
        v: str,
        fn: types.FunctionType,
        rebindable: bool,
        self_var: str | None = None,
        self_obj: Any = None,
    ) -> None:
        code = fn.__code__
        self.fail_unless(f"{v}.__code__ is {self.const(code)}")
        if id(fn) in self.stack:  # recursion: its state is being guarded further up
            return
        self.stack.append(id(fn))
        index: int | None = None
        if rebindable:
            index = len(self.functions)
            self.functions.append(v)
        defaults = fn.__defaults__
        if defaults is None:
            self.fail_unless(f"{v}.__defaults__ is None")
        else:
            d = self.var(f"{v}.__defaults__")
            self.fail_unless(f"type({d}) is tuple and len({d}) == {len(defaults)}")
            for i, item in enumerate(defaults):
                slot = ("default", i) if index is not None else None
                self.value(self.var(f"{d}[{i}]"), item, index, slot)
        kw = fn.__kwdefaults__
        if kw is None:
            self.fail_unless(f"{v}.__kwdefaults__ is None")
        else:
            self.value(self.var(f"{v}.__kwdefaults__"), dict(kw))
        names = _names_of(code)
        for i, cell in enumerate(fn.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell: read before assignment raises at call time
                continue
            cv = self.var(f"{v}.__closure__[{i}].cell_contents")
            self.value(cv, content, index, ("cell", i) if index is not None else None)
            self.attributes(cv, content, names)
        g = self.var(f"{v}.__globals__")
        for name in names:
            if name in fn.__globals__:
                gv = self.var(f"{g}[{self.const(name)}]")
                slot = ("global", name) if index is not None else None
                self.value(gv, fn.__globals__[name], index, slot)
                self.attributes(gv, fn.__globals__[name], names)
            else:  # a builtin or an attribute name: stays so while no global shadows it
                self.fail_unless(f"{self.const(name)} not in {g}")
        if self_var is not None:
            self.attributes(self_var, self_obj, names)
        self.stack.pop()

    def attributes(self, v: str, obj: Any, names: tuple[str, ...], depth: int = 0) -> None:
        """Guard the attributes of a user module, class or object that the code may read:
        those named anywhere in its code (``co_names``), found in the object's own or its
        class's dictionary (properties and other descriptors are left alone)."""
        if depth > 2:
            return
        if isinstance(obj, (types.ModuleType, type)):
            if is_library(obj):  # library code does not change under us
                return
        elif not hasattr(obj, "__dict__") or (callable(obj) and is_library(obj)):
            return  # instances with attributes are data, wherever their class comes from
        if id(obj) in self.attr_seen:
            return
        self.attr_seen.add(id(obj))
        own = vars(obj)
        cls = {} if isinstance(obj, (types.ModuleType, type)) else vars(type(obj))
        for name in names:
            if name in own:
                value = own[name]
            elif name in cls and _plain_class_attribute(cls[name]):
                value = getattr(obj, name)
            else:
                continue
            av = self.var(f"{v}.{name}")
            self.value(av, value)
            self.attributes(av, value, names, depth + 1)


def _plain_class_attribute(value: Any) -> bool:
    """A class attribute reading it through an instance gives back as is (or as a method)."""
    if isinstance(value, types.FunctionType):
        return True
    return not any(hasattr(type(value), m) for m in ("__get__", "__set__", "__delete__"))


def _same_float(a: Any, b: Any) -> bool:
    return a == b or (a != a and b != b)


# -- plans -------------------------------------------------------------------------------------


class Plan:
    """A callable's guard and its hoisting plan."""

    __slots__ = ("functions", "guard", "n_checks", "root_kind", "slots")

    def __init__(
        self, guard: Callable, slots: list, functions: Callable, root_kind: str, n: int
    ) -> None:
        self.guard = guard
        self.slots = slots
        self.functions = functions
        self.root_kind = root_kind
        self.n_checks = n

    def rebind(self, root: Any, values: tuple[Any, ...]) -> Any:
        """``root`` rebuilt so that each hoisted place reads ``values[i]`` instead."""
        if not self.slots:
            return root
        fns = list(self.functions(root))
        copies = _copy_functions(fns)
        globals_of = {id(f): c.__globals__ for f, c in zip(fns, copies)}
        for (fi, kind, key), val in zip(self.slots, values):
            copy = copies[fi]
            if kind == "global":
                globals_of[id(fns[fi])][key] = val
            elif kind == "cell":
                copy.__closure__[key].cell_contents = val  # type: ignore[index]
            else:
                d = list(copy.__defaults__ or ())
                d[key] = val
                copy.__defaults__ = tuple(d)
        top = copies[0]
        if self.root_kind == "function":
            return top
        if self.root_kind == "method":
            return types.MethodType(top, root.__self__)
        if self.root_kind == "object":
            return functools.partial(top, root)
        return root  # pragma: no cover


def _copy_functions(fns: list[types.FunctionType]) -> list[types.FunctionType]:
    """Copies of ``fns`` that refer to each other's copies (globals and closure cells)."""
    new_globals: dict[int, dict[str, Any]] = {}
    for f in fns:
        if id(f.__globals__) not in new_globals:
            new_globals[id(f.__globals__)] = dict(f.__globals__)
    copies = []
    for f in fns:
        cells = None
        if f.__closure__ is not None:
            cells = tuple(types.CellType() for _ in f.__closure__)
        c = types.FunctionType(
            f.__code__, new_globals[id(f.__globals__)], f.__name__, f.__defaults__, cells
        )
        c.__kwdefaults__ = f.__kwdefaults__
        c.__qualname__ = f.__qualname__
        c.__dict__.update(f.__dict__)
        copies.append(c)
    replace = {id(f): c for f, c in zip(fns, copies)}
    for f, c in zip(fns, copies):
        for old, new in zip(f.__closure__ or (), c.__closure__ or ()):
            try:
                content = old.cell_contents
            except ValueError:
                continue
            new.cell_contents = replace.get(id(content), content)
    for g in new_globals.values():
        for name, value in list(g.items()):
            if id(value) in replace:
                g[name] = replace[id(value)]
    return copies


def build(root: Any, hoist: bool = True) -> Plan:
    """Walk ``root`` and generate its guard. Raises :class:`Uncacheable`.

    ``hoist=False`` guards arrays in globals and cells by identity instead of hoisting them
    (for functions that steer Python control flow with such an array's value).
    """
    b = _Builder(hoist)
    b.lines.append("pass")
    if isinstance(root, types.FunctionType) and not is_library(root):
        kind = "function"
        b.function("root", root, rebindable=True)
    elif isinstance(root, types.MethodType) and _is_user_function(root.__func__):
        kind = "method"
        self_var = b.var("root.__self__")
        b.identity(self_var, root.__self__)
        b.function(
            b.var("root.__func__"), root.__func__, True, self_var=self_var, self_obj=root.__self__
        )
    elif _is_user_function(call := getattr(type(root), "__call__", None)) and not isinstance(
        root, functools.partial
    ):
        kind = "object"
        b.function(b.var("type(root).__call__"), call, True, self_var="root", self_obj=root)
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
    return Plan(ns["guard"], b.slots, fns_ns["functions"], kind, b.checks)


def _functions_source(b: _Builder) -> str:
    """``functions(root)``: the rebindable functions, read the way the guard reads them."""
    assigns = [line for line in b.lines if not line.startswith("if ") and line != "pass"]
    body = "\n    ".join(assigns) or "pass"
    out = ", ".join(b.functions) + ("," if len(b.functions) == 1 else "")
    return f"def functions(root):\n    {body}\n    return ({out})\n"
