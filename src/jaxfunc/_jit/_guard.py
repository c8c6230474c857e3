"""Guards: proof, by value, that a callable still means what it meant when its program was
compiled.

A compiled program bakes in everything the function read while it was traced. ``build(root)``
walks the callable and everything it can reach — its code, defaults, closure cells, function
attributes, the globals its code names, the user objects, classes and helpers those lead to —
and generates one Python function, ``guard(root)``, that re-reads each of those places and
compares it with what was seen:

==============================================  ==============================================
value                                           checked by
==============================================  ==============================================
None, bool, int, float, complex, str, bytes     type and value (``-0.0`` is not ``0.0``)
numpy scalar, Enum member, range, slice         type and value (an Enum member: identity)
jax array, typed PRNG key, numpy array on a     *hoisted*: passed to the compiled program as
  rebuildable path (global, cell, default,        an argument, so replacing or updating it in
  function attribute, attribute, item)            place never recompiles and is never stale
jax array elsewhere                             identity (jax arrays are immutable)
numpy array elsewhere, ndarray subclass         type, shape, dtype and bytes (mask included)
tuple, list, deque                              type, length, then each item (jax arrays
                                                  only: one check, hoisted as a group; 8+
                                                  scalars of one type: one exact check)
dict (any key type), other Mapping              type, exact keys, then the values (as above)
set, frozenset, bytearray, array.array          type and exact content
user function (by where its code lives)         code, defaults, closure, ``__dict__``, globals
library function                                identity; its closure cells walked (the
                                                  library's own objects there: identity)
user object (``__dict__``, ``__slots__``)        its class, then every attribute
user class (and its user base classes)          every entry of its ``__dict__``
``jax.jit``/``custom_jvp``/``custom_vjp``       identity, and the functions inside
user module                                     the attributes the code names; ``__getattr__``
library module                                  identity of the attributes the code names
torch tensor                                    identity, ``_version``, data pointer, layout
torch ``nn.Module``                             like a user object (its parameters: tensors)
immutable library values (dtypes, devices...)   identity
anything else                                   :class:`Uncacheable`: the call runs eagerly
==============================================  ==============================================

"Library" code is code that lives in the standard library or in the installed directories of
known libraries (jax, numpy, torch, ...): decided by the file of a function's code object, not
by its ``__module__`` (a ``functools.wraps`` wrapper copies that). ``guard(root)`` returns the
tuple of hoisted values when everything matches, None when anything changed.
``Plan.rebind(root, values)`` rebuilds the callable with the hoisted places holding ``values``
(tracers, at trace time), never calling user code (see ``_rebind``).

The walk is iterative (an explicit stack, no Python recursion) and bounded: past
``MAX_CHECKS`` checks the callable is :class:`Uncacheable`. An object reached by two routes
hoists nothing below it (a trace could read it by the route that is not rebuilt).

What a guard cannot see: impure functions (random numbers, time, I/O run once, at trace
time), state reached only dynamically (``globals()[name]``, ``getattr(obj, name_variable)``,
``eval``), attributes of user modules read without naming them in code. Accepted
approximations: a ``str`` dict key replaced by an equal key of a ``str`` subclass (a
``StrEnum`` member) is not seen; a root method calling itself through its class
(``type(self).method``) reads its globals unhoisted.
"""

from __future__ import annotations

import array
import builtins
import collections
import contextlib
import dis
import enum
import functools
import importlib.util
import itertools
import math
import os
import re
import site
import sys
import sysconfig
import threading
import types
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from .. import _compat
from . import _rebind

MAX_CHECKS = 4096  # lines of guard: past this the state is too large to guard per call
MAX_HOIST_DEPTH = 64  # steps below an anchor that a hoisted place may lie (rebind recursion)
_SCALAR_GROUP = 8  # this many Python scalars of one type in a container: checked at once

_PLAIN_SCALARS = (type(None), bool, int, str, bytes, type(Ellipsis), type(NotImplemented))
_FLOATS = (float, complex)
_JIT_TYPE = type(jax.jit(lambda: None))
_CUSTOM_RULES = {
    jax.custom_jvp: ("fun", "jvp", "nondiff_argnums"),
    jax.custom_vjp: ("fun", "fwd", "bwd", "nondiff_argnums"),
}
# Class entries that are not behaviour: descriptors of the instance layout, documentation,
# and caches Python keeps there (``_abc_impl``: an ABC's subclass registry)
_SKIPPED_CLASS_ENTRIES = frozenset(
    {"__dict__", "__weakref__", "__doc__", "__module__", "__slotnames__", "_abc_impl"}
)
_HOISTABLE_KINDS = "biufc"  # numpy dtype kinds a jit argument can have
# Values of these types cannot change: checked by identity.
_IMMUTABLE_TYPES = (
    types.CodeType,
    type(sys.intern.__call__),  # method-wrapper
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    type(type.__dict__["__dict__"]),
    weakref.ref,
    type(re.compile("")),
    # a lock's state is not a value any computation reads
    type(threading.Lock()),
    type(threading.RLock()),
)
# Instances of library classes from these packages are values (arrays, dtypes, devices,
# shardings, tree definitions) that do not change in place: checked by identity.
_VALUE_INSTANCE_ROOTS = frozenset({"jax", "jaxlib", "numpy", "ml_dtypes", "torch"})

# Code that lives in these packages (and in the standard library) is library code.
_LIBRARY_PACKAGES = (
    "jax", "jaxlib", "jaxfunc", "numpy", "scipy", "torch", "optax", "flax", "equinox",
    "chex", "ml_dtypes", "opt_einsum", "typing_extensions", "einops", "jaxtyping", "absl",
)  # fmt: skip


class Uncacheable(Exception):
    """The callable reaches state that cannot be guarded; it runs uncompiled. The message
    says why, for the user."""


# -- what is library code ----------------------------------------------------------------------


@functools.cache
def _library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(library directories, site-packages directories)``, real paths ending in a
    separator. The standard library is library code; site-packages only for the known
    library packages (a user's own package may be installed there)."""
    paths = sysconfig.get_paths()
    site_dirs = {paths[k] for k in ("purelib", "platlib") if k in paths}
    with contextlib.suppress(Exception):  # (absent in some embedded interpreters)
        site_dirs.update(site.getsitepackages())
        site_dirs.add(site.getusersitepackages())
    lib = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
    lib.add(os.path.dirname(os.__file__))
    for name in _LIBRARY_PACKAGES:
        module = sys.modules.get(name)
        locations: Any = getattr(module, "__path__", None)
        if locations is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            locations = spec.submodule_search_locations if spec is not None else None
        lib.update(locations or ())
    # jaxfunc itself, wherever this copy was imported from
    lib.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def norm(p: str) -> str:
        return os.path.join(os.path.realpath(p), "")

    return tuple(sorted(norm(p) for p in lib)), tuple(sorted(norm(p) for p in site_dirs))


_file_is_library: dict[str, bool] = {}


def _library_file(filename: str) -> bool:
    found = _file_is_library.get(filename)
    if found is None:
        if filename.startswith("<frozen "):
            found = True
        elif filename.startswith("<") or not os.path.isabs(filename):
            found = False  # exec'd or generated code: the user's
        else:
            lib, site = _library_dirs()
            real = os.path.realpath(filename)
            in_lib = [d for d in lib if real.startswith(d)]
            # the standard library's directory may hold site-packages: a file there counts
            # only if a library package's directory (which is longer) holds it
            in_site = [d for d in site if real.startswith(d)]
            found = bool(in_lib) and max(map(len, in_lib)) > max(map(len, in_site), default=0)
        _file_is_library[filename] = found
    return found


def _library_code(code: types.CodeType) -> bool:
    return _library_file(code.co_filename)


def _library_module(module: types.ModuleType) -> bool:
    if module.__name__ in sys.builtin_module_names:
        return True
    own = vars(module)  # (never getattr: a module's __getattr__ is user code)
    spec = own.get("__spec__")
    if spec is not None and getattr(spec, "origin", None) == "frozen":
        return True
    filename = own.get("__file__")
    if isinstance(filename, str):
        return _library_file(filename)
    parent = module.__name__.rpartition(".")[0]  # a C extension's submodule has no file
    parent_module = sys.modules.get(parent) if parent else None
    return parent_module is not None and _library_module(parent_module)


_class_is_library: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _library_class(cls: type) -> bool:
    """A class defined in a library module, whose methods are library code. A class a
    library *made* for the user (``dataclasses.make_dataclass``: its methods are exec'd and
    it is not published in its module) is the user's."""
    try:
        found = _class_is_library.get(cls)
    except TypeError:  # pragma: no cover - unhashable metaclass instance
        found = None
    if found is not None:
        return found
    module = _module_named(getattr(cls, "__module__", None) or "")
    found = module is not None and _library_module(module)
    if found and any(not _library_code(c) for c in _codes_of_class(cls)):
        target: Any = module
        for part in cls.__qualname__.split("."):
            target = getattr(target, part, None)
        found = target is cls
    with contextlib.suppress(TypeError):  # (a class that cannot be held weakly)
        _class_is_library[cls] = found
    return found


def _module_named(name: str) -> types.ModuleType | None:
    """The module a class says it is from, or its closest loaded parent package (a C
    type's ``__module__`` may name a submodule that is not importable)."""
    while name:
        module = sys.modules.get(name)
        if module is not None:
            return module
        name = name.rpartition(".")[0]
    return None


def _codes_of_class(cls: type) -> list[types.CodeType]:
    codes = []
    for entry in vars(cls).values():
        if isinstance(entry, (staticmethod, classmethod)):
            entry = entry.__func__
        elif isinstance(entry, property):
            entry = entry.fget
        if isinstance(entry, types.FunctionType):
            codes.append(entry.__code__)
    return codes


def is_library(obj: Any) -> bool:
    """Is this module, class or function library code (fixed under a running program)?"""
    if isinstance(obj, types.FunctionType):
        return _library_code(obj.__code__)
    if isinstance(obj, types.ModuleType):
        return _library_module(obj)
    if isinstance(obj, type):
        return _library_class(obj)
    return _library_class(type(obj))


def _is_user_function(obj: Any) -> bool:
    return isinstance(obj, types.FunctionType) and not _library_code(obj.__code__)


# -- helpers the generated guard calls ---------------------------------------------------------


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


def _exact(k: Any) -> Any:
    """A stand-in for a hashable value that is equal only for the same type and value
    (``1``, ``1.0`` and ``True`` differ, so do ``0.0`` and ``-0.0``); other objects (Enum
    members, objects hashed by identity) stand for themselves (by a weak reference, which
    compares equal while they live), paired with their type."""
    t = type(k)
    if t is str or t is int or t is bool or t is bytes or k is None:
        return (t, k)
    if t is float:
        return (t, k.hex())
    if t is complex:
        return (t, k.real.hex(), k.imag.hex())
    if t is tuple:
        return (t, tuple(map(_exact, k)))
    if isinstance(k, np.generic):
        return (t, k.tobytes())
    if isinstance(k, tuple):  # a namedtuple key
        return (t, tuple(map(_exact, k)), id(t))
    try:  # an object: held weakly (a snapshot must not keep a dropped key alive)
        return (t, weakref.ref(k))
    except TypeError:
        return (t, k)


def _keys(mapping: Any) -> tuple[Any, ...]:
    return tuple(map(_exact, mapping))


def _set_key(s: Any) -> frozenset[Any]:
    return frozenset(map(_exact, s))


def _value_key(k: Any) -> bool:
    """Does :func:`_exact` capture the whole state of this key (no attributes to walk)?"""
    if isinstance(k, tuple):
        return all(_value_key(x) for x in k)
    return (
        type(k) in _PLAIN_SCALARS
        or type(k) in _FLOATS
        or isinstance(k, (np.generic, enum.Enum, range, slice))
        or type(k) is object
    )


def _floats(items: Any) -> bytes:
    return array.array("d", items).tobytes()


def _mapping_items(m: Any) -> Any:
    return list(m.items())


# -- paths: where a hoisted value lives --------------------------------------------------------

# An anchor, then attribute/item steps. Anchors: ("global", function index, name),
# ("cell", function index, cell index), ("default", function index, position),
# ("fattr", function index, name) for a function attribute, ("self",) for a method's or
# callable object's instance.
Path = tuple[tuple[Any, ...], tuple[tuple[str, Any], ...]]


def _step(path: Path | None, step: tuple[str, Any]) -> Path | None:
    if path is None or len(path[1]) >= MAX_HOIST_DEPTH:
        return None
    return (path[0], (*path[1], step))


_rebuildable_classes: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _rebuildable_instance(cls: type) -> bool:
    """Can a copy of an instance be made, and its attributes set, without running any of
    the class's code? ``object.__new__`` (``tuple.__new__`` for a tuple subclass) then the
    ``__dict__`` and slots copied over; never for a class with ``__del__`` (the copy's would
    run when it dies)."""
    try:
        found = _rebuildable_classes.get(cls)
    except TypeError:  # pragma: no cover
        return False
    if found is None:
        found = False
        if getattr(cls, "__del__", None) is None:
            try:
                if issubclass(cls, tuple):
                    tuple.__new__(cls, ())
                else:
                    object.__new__(cls)
                found = True
            except Exception:
                found = False
        _rebuildable_classes[cls] = found
    return found


# -- the builder -------------------------------------------------------------------------------


class _Conflict(Exception):
    """An object met by two routes had something hoisted below it: build again without."""

    def __init__(self, key: int) -> None:
        super().__init__(key)
        self.key = key


class _Builder:
    def __init__(self, hoist: bool, nohoist: set[int]) -> None:
        self.hoist = hoist
        self.nohoist = nohoist  # ids of objects reached twice: nothing hoisted below them
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_np": np,
            "_ArrayImpl": _compat.ArrayImpl,
            "_same_float": _same_float,
            "_empty": _empty,
            "_keys": _keys,
            "_set_key": _set_key,
            "_items": _mapping_items,
            "_floats": _floats,
        }
        self.counter = itertools.count()
        self.hoisted: list[str] = []  # guard expressions whose values are returned
        self.paths: list[Path] = []  # where each hoisted value lives
        self.functions: list[tuple[str, str]] = []  # (function, what it replaces) variables
        self.checks = 0
        self.visited: dict[int, tuple[str, Any]] = {}  # id -> (first variable, its path)
        # id(globals dict) -> [variable, first rebindable function's index, {name: path}]
        self.globals_seen: dict[int, list[Any]] = {}
        self.classes: set[int] = set()
        self.modules: dict[int, set[str]] = {}
        self.stack: list[tuple[str, Any, Path | None, tuple[str, ...]]] = []
        self.children: list[tuple[str, Any, Path | None, tuple[str, ...]]] = []
        self.keep: list[Any] = []  # objects whose ids are keys above stay alive
        self.root_function = 0  # id of the root's own function
        self.root_shortcut = False  # the root method was met in its class too
        self.all_names: set[str] = set()  # every name the walked code names
        self.numpy_hoisted = False

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
            raise Uncacheable(
                f"it reads too much state to check at every call (over {MAX_CHECKS} values)"
            )
        self.lines.append(f"if not ({cond}): return None")

    def identity(self, v: str, obj: Any) -> None:
        try:
            ref = weakref.ref(obj)
        except TypeError:
            self.fail_unless(f"{v} is {self.const(obj)}")
            return
        self.fail_unless(f"{v} is {self.const(ref)}() and {v} is not None")

    def hoist_here(self, expr: str, path: Path) -> None:
        self.hoisted.append(expr)
        self.paths.append(path)

    # -- the walk ----------------------------------------------------------------------------

    def child(self, expr: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        """Guard ``obj``, read by the guard as ``expr``; ``path`` says how to rebuild its
        place at trace time (None: it cannot be); ``names`` are the names the code reading
        it uses (for modules)."""
        self.children.append((expr, obj, path, names))

    def run(self) -> None:
        """Process the pending values depth first, each value's children in order."""
        while self.stack or self.children:
            if self.children:
                self.stack.extend(reversed(self.children))
                self.children = []
            expr, obj, path, names = self.stack.pop()
            self.value(self.var(expr), obj, path, names)

    def first_visit(self, v: str, obj: Any, path: Any) -> bool:
        """Record a visit of an object that may be shared or cyclic; False (and an identity
        check against the first visit) when met before. ``path``: where a trace finds it
        rebuilt (None: the original)."""
        key = id(obj)
        first = self.visited.get(key)
        if first is None:
            self.visited[key] = (v, path)
            self.keep.append(obj)
            return True
        self.fail_unless(f"{v} is {first[0]}")
        if first[1] is not None and path != first[1]:
            # the first route rebuilds it at trace time, this one reads it elsewhere
            raise _Conflict(key)
        return False

    def value(self, v: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        t = type(obj)
        raw: Any = obj  # (not narrowed by the isinstance checks below)
        if path is not None and (not self.hoist or id(obj) in self.nohoist):
            path = None
        if isinstance(obj, _compat.Tracer):
            raise Uncacheable("it reads a JAX tracer left over from another trace")
        if t in _PLAIN_SCALARS:
            self.fail_unless(f"type({v}) is {self.const(t)} and {v} == {self.const(obj)}")
        elif t in _FLOATS:
            self.fail_unless(
                f"type({v}) is {self.const(t)} and _same_float({v}, {self.const(obj)})"
            )
        elif isinstance(obj, np.generic) and t is not np.object_:
            self.fail_unless(
                f"type({v}) is {self.const(t)} and {v}.tobytes() == {self.const(obj.tobytes())}"
            )
        elif t is _compat.ArrayImpl or (
            isinstance(obj, jax.Array) and jax.dtypes.issubdtype(obj.dtype, jax.dtypes.prng_key)
        ):
            self.fail_unless(f"type({v}) is {self.const(t)}")
            if path is not None:
                self.hoist_here(v, path)
            else:
                self.identity(v, obj)
        elif isinstance(obj, np.ndarray):
            self._ndarray(v, obj, path)
        elif isinstance(obj, (tuple, list, collections.deque)):
            self._sequence(v, obj, path, names)
        elif isinstance(obj, dict):
            self._dict(v, obj, path, names)
        elif t is set or t is frozenset:
            self._set(v, obj, names)
        elif t is bytearray:
            self.fail_unless(f"type({v}) is bytearray and {v} == {self.const(bytes(raw))}")
        elif t is array.array:
            self.fail_unless(
                f"type({v}) is {self.const(t)} and {v}.typecode == {raw.typecode!r} "
                f"and {v}.tobytes() == {self.const(raw.tobytes())}"
            )
        elif t is range or t is slice:
            exact = _keys((raw.start, raw.stop, raw.step))
            self.fail_unless(
                f"type({v}) is {self.const(t)} "
                f"and _keys(({v}.start, {v}.stop, {v}.step)) == {self.const(exact)}"
            )
        elif isinstance(obj, types.FunctionType):
            if _library_code(obj.__code__):
                self._library_function(v, obj, names)
            else:  # rebindable when it sits directly in a rebindable function's global/cell
                self.function(v, obj, v, rebindable=_at_anchor(path))
        elif isinstance(obj, types.MethodType):
            self.fail_unless(f"type({v}) is {self.const(types.MethodType)}")
            self.child(f"{v}.__func__", obj.__func__, None, names)
            self.child(f"{v}.__self__", obj.__self__, None, names)
        elif isinstance(obj, types.BuiltinFunctionType):
            self.identity(v, obj)
            owner = obj.__self__
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.child(f"{v}.__self__", owner, None, names)
        elif isinstance(obj, functools.partial):
            self.fail_unless(f"type({v}) is {self.const(t)}")
            self.child(f"{v}.func", obj.func, None, names)
            self.child(f"{v}.args", obj.args, None, names)
            self.child(f"{v}.keywords", obj.keywords, None, names)
        elif t is _JIT_TYPE:
            self._jit(v, obj, path, names)
        elif t in _CUSTOM_RULES:
            self.identity(v, obj)
            if _library_callable(getattr(obj, "fun", None)):
                pass  # a library's own rule (jax.nn.relu): fixed code
            elif self.first_visit(v, obj, None):
                for attr in _CUSTOM_RULES[t]:
                    self.child(f"{v}.{attr}", getattr(obj, attr, None), None, names)
        elif isinstance(obj, types.ModuleType):
            self.identity(v, obj)
            library = _library_module(obj)
            if library or t is not types.ModuleType:
                path = None
            first = self.visited.get(id(obj))
            if first is None:
                self.visited[id(obj)] = (v, path)
                self.keep.append(obj)
            elif first[1] is not None and path != first[1]:
                raise _Conflict(id(obj))  # reached by two routes, one rebuilt
            self._module(v, obj, path, names, library)
        elif isinstance(obj, type):
            self.identity(v, obj)
            self._class(obj)
        elif isinstance(obj, enum.Enum) or t is object or isinstance(obj, _IMMUTABLE_TYPES):
            self.identity(v, obj)
        else:
            self._other(v, obj, path, names)

    def _other(self, v: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        t = type(obj)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.Tensor):
            self._tensor(v, obj)
            return
        if torch is not None and isinstance(obj, torch.nn.Module):
            self._instance(v, obj, path, names)
            return
        library = _library_class(t)
        if library and isinstance(obj, Mapping):
            self._mapping(v, obj, names)
        elif library and t.__module__.split(".", 1)[0] in _VALUE_INSTANCE_ROOTS:
            self.identity(v, obj)
        elif _has_dict(obj) or _slot_names(t):
            self._instance(v, obj, path, names)
        else:
            raise Uncacheable(f"it reads a {t.__module__}.{t.__qualname__} object, whose state "
                              "a guard cannot read")  # fmt: skip

    def _ndarray(self, v: str, arr: np.ndarray, path: Path | None) -> None:
        t = type(arr)
        if arr.dtype.hasobject:
            raise Uncacheable("it reads a numpy array of Python objects")
        if t is np.ndarray and path is not None and arr.dtype.kind in _HOISTABLE_KINDS:
            # passed to the program as an argument: never compared, never stale
            self.fail_unless(f"type({v}) is _np.ndarray and {v}.dtype.kind in {_HOISTABLE_KINDS!r}")
            self.hoist_here(v, path)
            self.numpy_hoisted = True
            return
        # Compared by content: bytes, which see -0.0 and NaN payloads (array_equal would not)
        self.fail_unless(
            f"type({v}) is {self.const(t)} and {v}.shape == {self.const(arr.shape)} "
            f"and {v}.dtype == {self.const(arr.dtype)} "
            f"and {v}.strides == {self.const(arr.strides)}"
        )
        data = np.asarray(arr)
        self.fail_unless(f"_np.asarray({v}).tobytes() == {self.const(data.tobytes())}")
        if t is not np.ndarray:
            # a subclass keeps its own state in attributes (a masked array: its mask, fill
            # value, hard-mask flag...): all of it, by value
            self._class(t)
            if _slot_names(t):
                raise Uncacheable(f"it reads a {t.__qualname__} array with __slots__")
            self.child(f"{v}.__dict__", object.__getattribute__(arr, "__dict__"), None, ())

    def _sequence(self, v: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        t = type(obj)
        if t is collections.deque:
            self.fail_unless(f"type({v}) is {self.const(t)} and {v}.maxlen == {obj.maxlen!r}")
            path = None
        elif (
            t is not tuple
            and t is not list
            and not (issubclass(t, tuple) and _rebuildable_instance(t))
        ):
            path = None  # a subclass of unknown construction: read, never rebuilt
        self.fail_unless(f"type({v}) is {self.const(t)} and len({v}) == {len(obj)}")
        if path is not None and t is not collections.deque and self._group(v, obj, path):
            return
        if self._scalars(v, list(obj)):
            return
        for i, item in enumerate(obj):
            self.child(f"{v}[{i}]", item, _step(path, ("item", i)), names)

    def _group(self, v: str, items: Any, path: Path, keys: Any = None) -> bool:
        """Jax arrays only (a parameter list or dict): one vectorized check, hoisted as a
        group. ``keys``: the dict's keys (``v`` then names its values list)."""
        if len(items) < 2 or any(type(x) is not _compat.ArrayImpl for x in items):
            return False
        if any(id(x) in self.nohoist for x in items):
            return False
        # (a list of the same type object compares by identity: the fastest check there is)
        self.fail_unless(f"list(map(type, {v})) == {self.const([_compat.ArrayImpl] * len(items))}")
        self.hoisted.append(f"*{v}")
        for k in range(len(items)) if keys is None else keys:
            self.paths.append((path[0], (*path[1], ("item", k))))
        return True

    def _scalars(self, v: str, items: list) -> bool:
        """Many Python scalars of one type (a long config list or dict): one exact check of
        them all, instead of one per item."""
        if len(items) < _SCALAR_GROUP:
            return False
        t = type(items[0])
        if t not in (str, int, float) or any(type(x) is not t for x in items):
            return False
        types_ok = f"list(map(type, {v})) == {self.const([t] * len(items))}"
        if t is float:  # by their bits: -0.0 is not 0.0, NaN is NaN
            packed = array.array("d", items).tobytes()
            self.fail_unless(f"{types_ok} and _floats({v}) == {self.const(packed)}")
        else:  # str and int equality is exact once the types are
            self.fail_unless(f"{types_ok} and list({v}) == {self.const(items)}")
        return True

    def _dict(self, v: str, obj: dict, path: Path | None, names: tuple[str, ...]) -> None:
        t = type(obj)
        if t not in (dict, OrderedDict, defaultdict):
            path = None  # a dict subclass of unknown construction: read, never rebuilt
        if path is not None and not _step(path, ("item", None)):
            path = None
        self.fail_unless(f"type({v}) is {self.const(t)}")
        if isinstance(obj, defaultdict):
            self.child(f"{v}.default_factory", obj.default_factory, None, names)
        keys = list(obj)
        if all(type(k) is str for k in keys):
            # str keys: list equality is exact (the common case, kept fast)
            self.fail_unless(f"list({v}) == {self.const(keys)}")
        else:
            self.fail_unless(f"_keys({v}) == {self.const(_keys(keys))}")
            self._key_objects(v, keys, names)
        values = list(obj.values())
        if len(values) >= 2:
            vals = self.var(f"list({v}.values())")
            if path is not None and self._group(vals, values, path, keys):
                return
            if self._scalars(vals, values):
                return
            self.lines.pop()  # the values list is not needed after all
        for k, item in zip(keys, values):
            self.child(f"{v}[{self.const(k)}]", item, _step(path, ("item", k)), names)

    def _key_objects(self, v: str, keys: list, names: tuple[str, ...]) -> None:
        """Keys whose state :func:`_exact` does not capture (objects hashed by identity):
        walk them too, the code may read their attributes."""
        if all(_value_key(k) for k in keys):
            return
        ks = self.var(f"list({v})")
        for i, k in enumerate(keys):
            if not _value_key(k):
                self.child(f"{ks}[{i}]", k, None, names)

    def _set(self, v: str, obj: Any, names: tuple[str, ...]) -> None:
        t = type(obj)
        self.fail_unless(
            f"type({v}) is {self.const(t)} and _set_key({v}) == {self.const(_set_key(obj))}"
        )
        self._key_objects(v, list(obj), names)

    def _mapping(self, v: str, obj: Mapping, names: tuple[str, ...]) -> None:
        """A mapping that is not a dict (``MappingProxyType``, ``os.environ``): a snapshot of
        its items, by value."""
        t = type(obj)
        items = list(obj.items())
        keys = [k for k, _ in items]
        self.fail_unless(f"type({v}) is {self.const(t)}")
        if all(type(k) is str and type(x) is str for k, x in items):
            # text to text (os.environ): one comparison of the whole snapshot
            self.fail_unless(f"_items({v}) == {self.const(items)}")
            return
        self.fail_unless(f"_keys({v}) == {self.const(_keys(keys))}")
        self._key_objects(v, keys, names)
        for k, item in items:
            self.child(f"{v}[{self.const(k)}]", item, None, names)

    def _tensor(self, v: str, tensor: Any) -> None:
        """A torch tensor: the same tensor, never updated in place since (its version
        counter moves on every in-place update), same storage and layout."""
        self.identity(v, tensor)
        self.fail_unless(
            f"{v}._version == {tensor._version} and {v}.data_ptr() == {tensor.data_ptr()} "
            f"and {v}.shape == {self.const(tensor.shape)} "
            f"and {v}.stride() == {self.const(tensor.stride())} "
            f"and {v}.dtype == {self.const(tensor.dtype)} "
            f"and {v}.requires_grad == {tensor.requires_grad!r}"
        )

    def _instance(self, v: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        """A user object: its class, then every attribute it holds (wherever read)."""
        cls = type(obj)
        if path is not None and not _rebuildable_instance(cls):
            path = None
        if not self.first_visit(v, obj, path):
            return
        self.fail_unless(f"type({v}) is {self.const(cls)}")
        self._class(cls)
        if _has_dict(obj):
            attrs = object.__getattribute__(obj, "__dict__")
            d = self.var(f"{v}.__dict__")
            self.fail_unless(f"list({d}) == {self.const(list(attrs))}")
            for name, item in attrs.items():
                self.child(f"{d}[{self.const(name)}]", item, _step(path, ("attr", name)), names)
        for name in _slot_names(cls):
            try:
                item = object.__getattribute__(obj, name)
            except AttributeError:
                self.fail_unless(f"not hasattr({v}, {self.const(name)})")
                continue
            where = _step(path, ("attr", name))
            self.child(f"getattr({v}, {self.const(name)})", item, where, names)

    def _class(self, cls: type) -> None:
        """Every entry of a user class's ``__dict__`` (and of its user base classes')."""
        for c in cls.__mro__:
            if id(c) in self.classes or _library_class(c):
                continue
            self.classes.add(id(c))
            self.keep.append(c)
            cv = self.var(self.const(c))
            d = self.var(f"{cv}.__dict__")
            self.fail_unless(f"len({d}) == {len(vars(c))}")
            for name, entry in vars(c).items():
                if name in _SKIPPED_CLASS_ENTRIES:
                    continue
                ev = f"{d}[{self.const(name)}]"
                if isinstance(entry, (staticmethod, classmethod)):
                    ev = self.var(ev)
                    self.fail_unless(f"type({ev}) is {self.const(type(entry))}")
                    self.child(f"{ev}.__func__", entry.__func__, None, ())
                elif isinstance(entry, property):
                    ev = self.var(ev)
                    self.fail_unless(f"type({ev}) is {self.const(type(entry))}")
                    for accessor in ("fget", "fset", "fdel"):
                        self.child(f"{ev}.{accessor}", getattr(entry, accessor), None, ())
                else:
                    self.child(ev, entry, None, ())

    def _module(
        self,
        v: str,
        module: types.ModuleType,
        path: Path | None,
        names: tuple[str, ...],
        library: bool,
    ) -> None:
        """The attributes of a module that the code names. A user module's are guarded like
        any value (and may be hoisted); a library module's are library functions and
        submodules (a monkeypatched one is walked as user code)."""
        seen = self.modules.setdefault(id(module), set())
        own = vars(module)
        getattr_hook = None if library else own.get("__getattr__")
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            if name in own:
                self.child(f"{v}.__dict__[{self.const(name)}]", own[name],
                           _step(path, ("attr", name)), names)  # fmt: skip
            elif getattr_hook is not None:
                # served by the module's __getattr__ (guarded below), while it stays absent
                self.fail_unless(f"{self.const(name)} not in {v}.__dict__")
        if getattr_hook is not None and "__getattr__" not in seen:
            seen.add("__getattr__")
            self.child(f"{v}.__dict__['__getattr__']", getattr_hook, None, names)

    # -- functions ---------------------------------------------------------------------------

    def _library_function(self, v: str, fn: types.FunctionType, names: tuple[str, ...]) -> None:
        """Library code is fixed; a library closure's cells may hold the user's functions
        (``custom_jvp.defjvps`` rules, decorators' wrapped functions)."""
        self.identity(v, fn)
        if fn.__closure__ and self.first_visit(v, fn, None):
            for i, cell in enumerate(fn.__closure__):
                if _empty(cell):
                    continue
                content = cell.cell_contents
                cv = f"{v}.__closure__[{i}].cell_contents"
                if _library_internal(content):  # the library's own state: its business
                    self.identity(self.var(cv), content)
                else:
                    self.child(cv, content, None, ())

    def _jit(self, v: str, obj: Any, path: Path | None, names: tuple[str, ...]) -> None:
        """A ``jax.jit`` function: the same object, and the function it wraps. Rebindable
        like a function when it sits in a rebindable function's global or cell: the trace
        then calls the wrapped function's rebound copy (inside a trace a nested jit only
        inlines)."""
        self.identity(v, obj)
        wrapped = getattr(obj, "__wrapped__", None)
        if isinstance(wrapped, types.FunctionType) and not _library_code(wrapped.__code__):
            self.function(self.var(f"{v}.__wrapped__"), wrapped, v, rebindable=_at_anchor(path))
        elif wrapped is not None and not _library_callable(wrapped):
            self.child(f"{v}.__wrapped__", wrapped, None, names)

    def function(
        self, v: str, fn: types.FunctionType, replaces: str, rebindable: bool, root: bool = False
    ) -> None:
        """A user function: its code, defaults, closure, attributes and the globals its
        code names. ``rebindable``: a copy of it can stand in at trace time (``replaces`` is
        the variable of the object the copy replaces where the trace finds it); the root's
        own function always is, though it may hoist nothing."""
        hoisting = rebindable and self.hoist and id(fn) not in self.nohoist
        if not root:
            rebindable = hoisting
        # The root method met again in its class's __dict__ counts as the same route: the
        # trace calls the rebound copy, unless some code names the method (a recursive
        # ``self.method`` or ``type(self).method`` call reads the original): checked at the
        # end of the walk
        shortcut = not rebindable and id(fn) == self.root_function
        if not self.first_visit(v, fn, "rebound" if rebindable or shortcut else None):
            self.root_shortcut = self.root_shortcut or shortcut
            return
        code = fn.__code__
        # weakly: compiled programs refer to code objects, and must not keep them alive
        self.identity(self.var(f"{v}.__code__"), code)
        index: int | None = None
        if rebindable:
            index = len(self.functions)
            self.functions.append((v, replaces))
        names = code_names(code)
        self.all_names.update(names)
        rebinds = _rebinds_of(code)
        if rebinds:
            raise Uncacheable(
                f"{getattr(fn, '__qualname__', '?')} assigns to a variable outside its call "
                f"(`{'`, `'.join(rebinds)}`), which a compiled program would do once, when "
                "it is traced"
            )

        def anchor(kind: str, key: Any) -> Path | None:
            return None if index is None or not hoisting else ((kind, index, key), ())

        defaults = fn.__defaults__
        if defaults is None:
            self.fail_unless(f"{v}.__defaults__ is None")
        else:
            d = self.var(f"{v}.__defaults__")
            self.fail_unless(f"type({d}) is tuple and len({d}) == {len(defaults)}")
            for i, item in enumerate(defaults):
                self.child(f"{d}[{i}]", item, anchor("default", i), names)
        kw = fn.__kwdefaults__
        if kw is None:
            self.fail_unless(f"{v}.__kwdefaults__ is None")
        else:
            self.child(f"{v}.__kwdefaults__", kw, None, names)
        attrs = fn.__dict__
        if not attrs:
            self.fail_unless(f"not {v}.__dict__")
        else:  # function attributes (``penalty.weight = 1.0``)
            fd = self.var(f"{v}.__dict__")
            self.fail_unless(f"list({fd}) == {self.const(list(attrs))}")
            for name, item in attrs.items():
                self.child(f"{fd}[{self.const(name)}]", item, anchor("fattr", name), names)
        for i, cell in enumerate(fn.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell (assigned later): it must still be empty
                self.fail_unless(f"_empty({v}.__closure__[{i}])")
                continue
            self.child(f"{v}.__closure__[{i}].cell_contents", content, anchor("cell", i), names)
        g = self.var(f"{v}.__globals__")
        seen = self.globals_seen.get(id(fn.__globals__))
        if seen is None:  # (functions of one module share one globals dict: walked once)
            seen = self.globals_seen[id(fn.__globals__)] = [g, index, {}]
            self.keep.append(fn.__globals__)
        else:
            self.fail_unless(f"{g} is {seen[0]}")
            if seen[1] is None:
                seen[1] = index
        fn_builtins = fn.__globals__.get("__builtins__", builtins)
        if isinstance(fn_builtins, types.ModuleType):
            fn_builtins = vars(fn_builtins)
        for name in names:
            if name in seen[2]:
                if index is None and seen[2][name] is not None:
                    # hoisted for a rebound copy, but this function reads the original
                    raise _Conflict(id(fn.__globals__[name]))
                continue
            if name in fn.__globals__:
                item = fn.__globals__[name]
                where: Path | None = None
                if index is not None and hoisting and id(item) not in self.nohoist:
                    where = (("global", seen[1], name), ())  # the module's one rebound copy
                seen[2][name] = where
                self.child(f"{g}[{self.const(name)}]", item, where, names)
            else:  # a builtin or an attribute name: stays so while no global shadows it
                seen[2][name] = None
                self.fail_unless(f"{self.const(name)} not in {g}")
                if name in fn_builtins:
                    bv = self.var(f"{self.const(fn_builtins)}[{self.const(name)}]")
                    self.identity(bv, fn_builtins[name])


def _has_dict(obj: Any) -> bool:
    try:
        object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return False
    return True


def _library_internal(obj: Any) -> bool:
    """An object in a library closure that is the library's own (not a function, container
    or value the user handed it)."""
    t = type(obj)
    if isinstance(obj, (type, types.ModuleType)) or t in _PLAIN_SCALARS or t in _FLOATS:
        return False
    if isinstance(obj, (types.FunctionType, types.MethodType, functools.partial, _JIT_TYPE)):
        return False
    if isinstance(obj, (tuple, list, dict, set, frozenset, np.ndarray, np.generic, jax.Array)):
        return False
    if t in _CUSTOM_RULES:
        return False
    return _library_class(t)


def _library_callable(obj: Any) -> bool:
    """A library function, or a jit of one."""
    if type(obj) is _JIT_TYPE:
        obj = getattr(obj, "__wrapped__", None)
    return isinstance(obj, types.FunctionType) and _library_code(obj.__code__)


def _at_anchor(path: Path | None) -> bool:
    """Directly in a rebindable function's global or closure cell: such a function (or jit)
    can be replaced by a rebound copy there."""
    return path is not None and not path[1] and path[0][0] in ("global", "cell")


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for c in cls.__mro__:
        slots = c.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


_code_names: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def code_names(code: types.CodeType) -> tuple[str, ...]:
    """Every global and attribute name ``code`` (or a function nested in it) names."""
    names = _code_names.get(code)
    if names is None:
        found: set[str] = set()
        todo = [code]
        while todo:
            c = todo.pop()
            found.update(c.co_names)
            todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        names = tuple(sorted(found))
        _code_names[code] = names
    return names


_REBINDS = {
    "STORE_GLOBAL": "global",
    "DELETE_GLOBAL": "global",
    "STORE_DEREF": "nonlocal",
    "DELETE_DEREF": "nonlocal",
}
_code_rebinds: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = (
    weakref.WeakKeyDictionary()
)


def _rebinds_of(code: types.CodeType) -> tuple[str, ...]:
    """The variables outside its call that ``code`` (or a function nested in it) assigns
    or deletes, as ``global X`` / ``nonlocal X``. A compiled program runs them once, at
    trace time, on the trace's copy of the function's state, never at a call."""
    found = _code_rebinds.get(code)
    if found is None:
        out: set[str] = set()
        todo = [(code, frozenset(code.co_freevars))]
        while todo:
            c, outer = todo.pop()
            # a nested function's free variable is outside the call if it is one of
            # ``code``'s own free variables, passed down (not a variable of a function
            # nested in ``code``, nor a local that shadows one)
            outer = outer & frozenset(c.co_freevars)
            for ins in dis.get_instructions(c):
                kind = _REBINDS.get(ins.opname)
                if kind == "global" or (kind == "nonlocal" and ins.argval in outer):
                    out.add(f"{kind} {ins.argval}")
            todo.extend((k, outer) for k in c.co_consts if isinstance(k, types.CodeType))
        found = tuple(sorted(out))
        _code_rebinds[code] = found
    return found


# -- plans -------------------------------------------------------------------------------------


class Plan:
    """A callable's guard, its hoisting plan, and the guard's generated source (``source``,
    for debugging: ``print(plan.source)`` shows every check the guard makes)."""

    __slots__ = ("functions", "guard", "numpy_hoisted", "paths", "root_kind", "source")

    def __init__(
        self,
        guard: Callable,
        paths: list,
        functions: Callable,
        root_kind: str,
        source: str,
        numpy_hoisted: bool = False,
    ) -> None:
        self.guard = guard
        self.paths = paths
        self.functions = functions
        self.root_kind = root_kind
        self.source = source
        #: a numpy array is hoisted: if a trace fails, it may be because the function uses
        #: it as numpy (a dict key, ``.flags``...): worth one more try with it compared
        self.numpy_hoisted = numpy_hoisted

    def rebind(self, root: Any, values: tuple[Any, ...]) -> Any:
        """``root`` rebuilt so that each hoisted place reads ``values[i]`` instead."""
        if not self.paths:
            return root
        pairs = self.functions(root)
        return _rebind.rebind(
            root,
            self.root_kind,
            [f for f, _ in pairs],
            [r for _, r in pairs],
            self.paths,
            values,
        )

    def explain(self, root: Any) -> str | None:
        """Which place the guard finds changed in ``root``'s state (None: none), written as
        the expression that reads it (``f.__globals__['LR']``), for the message that says
        why a function runs eagerly."""
        try:
            return _explain(self, root)
        except Exception:  # pragma: no cover - a diagnosis never breaks a call
            return None

    def snapshot(self, root: Any) -> Any:
        """``root`` with its functions copied (globals, cells and defaults as they are now),
        for a trace that must read one consistent state: the guard run on the snapshot
        proves what the trace reads, whatever other threads change meanwhile."""
        if self.root_kind not in ("function", "method"):
            return root
        pairs = self.functions(root)
        return _rebind.snapshot(root, self.root_kind, [f for f, _ in pairs], [r for _, r in pairs])


MAX_CONFLICTS = 16


def build(root: Any, hoist: bool = True) -> Plan:
    """Walk ``root`` and generate its guard. Raises :class:`Uncacheable` (with the reason).

    ``hoist=False`` checks every array instead of hoisting it (jax arrays by identity,
    numpy arrays by content: for functions that steer Python control flow with an array).
    """
    nohoist: set[int] = set()
    for _ in range(MAX_CONFLICTS):
        try:
            return _build(root, hoist, nohoist)
        except _Conflict as conflict:
            nohoist.add(conflict.key)
        except RecursionError:  # pragma: no cover - the walk itself is iterative
            raise Uncacheable("its state is nested too deeply to check") from None
    return _build(root, False, nohoist)


def _build(root: Any, hoist: bool, nohoist: set[int]) -> Plan:
    b = _Builder(hoist, nohoist)
    b.lines.append("pass")
    self_path: Path = (("self",), ())
    if _is_user_function(root):
        kind = "function"
        b.function("root", root, "root", rebindable=True, root=True)
    elif isinstance(root, types.MethodType) and _is_user_function(root.__func__):
        kind = "method"
        fv = b.var("root.__func__")
        b.root_function = id(root.__func__)
        b.function(fv, root.__func__, fv, rebindable=True, root=True)
        b.child("root.__self__", root.__self__, self_path, ())
    elif _is_user_function(call := getattr(type(root), "__call__", None)) and not isinstance(
        root, functools.partial
    ):
        kind = "object"
        fv = b.var("type(root).__call__")
        b.root_function = id(call)
        b.function(fv, call, fv, rebindable=True, root=True)  # type: ignore[arg-type]
        b.child("root", root, self_path, ())
    else:
        kind = "opaque"
        b.child("root", root, None, ())
    b.run()
    if (
        b.root_shortcut
        and b.root_function not in nohoist
        and (kind == "object" or getattr(root, "__name__", None) in b.all_names)
    ):
        # the method may be called through its class (``self.method``, ``self(x)``: not
        # found by name), reading its original globals: they cannot be hoisted
        raise _Conflict(b.root_function)
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
    return Plan(ns["guard"], b.paths, fns_ns["functions"], kind, src, b.numpy_hoisted)


def _functions_source(b: _Builder) -> str:
    """``functions(root)``: the rebindable functions, each with the object its copy
    replaces, read the way the guard reads them."""
    assigns = [line for line in b.lines if not line.startswith("if ") and line != "pass"]
    body = "\n    ".join(assigns) or "pass"
    out = "".join(f"({f}, {r}), " for f, r in b.functions)
    return f"def functions(root):\n    {body}\n    return ({out})\n"


_TOKEN = re.compile(r"\b[vk]\d+\b")


def _explain(plan: Plan, root: Any) -> str | None:
    """The guard run check by check (the same lines, numbered): the first failing check's
    place, its variables expanded to what they read."""
    lines = plan.source.splitlines()
    body = lines[lines.index("    try:") + 1 : -3]  # (up to the ``return (...)`` line)
    defs: dict[str, str] = {}
    conds: list[str] = []
    out = ["def explain(root):", "    _at = None", "    try:"]
    for line in body:
        s = line.strip()
        if s.startswith("if not ("):
            out += [
                f"        _at = {len(conds)}",
                f"        {s[: -len('None')]}{len(conds)}, locals()",
            ]
            conds.append(s)
        else:
            out.append(f"        {s}")
            name, _, expr = s.partition(" = ")
            defs[name] = expr
    out += ["        return None, None", "    except Exception:", "        return _at, locals()"]
    ns = dict(plan.guard.__globals__)
    exec(compile("\n".join(out), "<jaxfunc guard explained>", "exec"), ns)
    failed, seen = ns["explain"](root)
    if failed is None:
        return None
    cond = conds[failed]
    first = _TOKEN.search(cond)
    if first is None or not first.group(0).startswith("v"):
        return None
    name = getattr(root, "__name__", None) or type(root).__name__

    def render(expr: str, depth: int) -> str:
        def token(m: re.Match) -> str:
            t = m.group(0)
            if t.startswith("v") and t in defs and depth < 32:
                return render(defs[t], depth + 1)
            return _short(ns[t]) if t in ns else t

        return re.sub(r"\broot\b", name, _TOKEN.sub(token, expr))

    place = render(first.group(0), 0)
    if len(place) > 160:
        place = "..." + place[-157:]
    if re.search(r" is k\d+\(\) and ", cond) is None:
        return f"`{place}` changes"
    if isinstance(seen.get(first.group(0)), jax.Array):  # (no trace can be handed it there)
        return f"`{place}` is replaced, and there it is compared by identity (not passed in)"
    return f"`{place}` is replaced"


def _short(value: Any) -> str:
    """A constant of a guard, as the user would name it."""
    if isinstance(value, weakref.ref):
        value = value()
    if isinstance(value, (type, types.FunctionType)):
        return value.__qualname__
    if isinstance(value, types.ModuleType):
        return value.__name__
    if isinstance(value, (str, int, float, bytes)) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"<{type(value).__name__}>"
