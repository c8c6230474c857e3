"""The guarded compile cache: eager calls at jit speed, never a stale result.

Every public transform ends in ``call(func, program, arrays)``. ``program`` is a frozen
:class:`~._keys.Program`: the whole JAX mapping of that transform, with the options and the
non-array parts of the call as its fields; ``arrays`` are the array arguments. Then:

- under any JAX transformation (a user's ``jax.jit``, ``vmap``, ``grad``) the program runs
  as it is: the traced program is exactly what the raw JAX calls give;
- with the cache switched off, the program runs eagerly;
- otherwise the callable's entries are looked up (held weakly: the cache never keeps a
  user's function alive), and each entry's guard (``_guard``) proves the function still
  means what it meant when the entry was made. The first call through a new entry runs
  eagerly (a one-off notebook cell pays no compile), later calls run one ``jax.jit`` of
  the program that takes the hoisted globals as arguments. ``jax.jit``'s own cache handles
  shapes, dtypes and pytree structure.
- a function that cannot be traced abstractly (Python control flow on values, ``.item()``)
  is found out on its first compile and runs eagerly from then on, with the same results.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import jax

from .. import _compat
from . import _boundary, _guard
from ._keys import Program, Transform

MAX_ENTRIES = 8  # per callable: guard states kept (most recent first)
MAX_STATICS = 32  # per entry: distinct option/static-argument combinations compiled
THRASH_BUILDS = 8  # a callable rebuilt this often, for a quarter or more of its calls ...
THRASH_RATIO = 4  # ... changes what it reads at nearly every call: it then runs eagerly

#: Run the first call of each new (function, program) eagerly, for programs that declare
#: themselves cheap to run eagerly (``Program.eager_first``). Tests switch it off to push
#: every call through the compiled path.
EAGER_FIRST_CALL = True


_lock = threading.RLock()


class _ThreadState(threading.local):
    depth = 0  # programs this thread is tracing for the cache
    disabled = 0  # ``disabled()`` blocks this thread is in


_thread = _ThreadState()


def tracing() -> bool:
    """True while this thread traces a program for the cache (not a user's own jit)."""
    return _thread.depth > 0


_enabled = os.environ.get("JAXFUNC_COMPILE_CACHE", "1").strip().lower() not in (
    "0",
    "false",
    "off",
    "no",
)


def set_enabled(enabled: bool) -> None:
    """Switch the compile cache on or off for the whole process (default: on).

    The environment variable ``JAXFUNC_COMPILE_CACHE=0`` switches it off at import.
    """
    global _enabled
    _enabled = bool(enabled)


def is_enabled() -> bool:
    """Is the cache on for calls made from this thread?"""
    return _enabled and not _thread.disabled


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the jaxfunc calls this thread makes inside the block uncompiled (eagerly)."""
    _thread.disabled += 1
    try:
        yield
    finally:
        _thread.disabled -= 1


class _Entry:
    """One guard state of one callable, and the compiled programs made under it."""

    __slots__ = ("__weakref__", "eager_only", "jits", "plan", "seen")

    def __init__(self, plan: _guard.Plan) -> None:
        self.plan = plan
        self.jits: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self.seen: collections.OrderedDict[Any, None] = collections.OrderedDict()
        self.eager_only = False


class _Slot:
    """The cache's record for one callable."""

    __slots__ = ("builds", "calls", "entries", "uncacheable")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.builds = 0
        self.calls = 0
        self.uncacheable = False


class _WeakIdTable:
    """``object -> value`` held weakly and looked up by ``id`` (no hashing of the object,
    no weak reference made per lookup); an entry goes when its object is collected."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, obj: Any) -> Any:
        item = self._items.get(id(obj))
        if item is not None and item[0]() is obj:
            return item[1]
        return None

    def setdefault(self, obj: Any, make: Callable[[], Any]) -> Any:
        """The value for ``obj``, made by ``make()`` if missing (TypeError: not weakable)."""
        found = self.get(obj)
        if found is not None:
            return found
        key = id(obj)
        items = self._items

        def forget(_: Any, key: int = key) -> None:
            items.pop(key, None)

        value = make()
        items[key] = (weakref.ref(obj, forget), value)
        return value

    def pop(self, obj: Any) -> None:
        if self.get(obj) is not None:
            del self._items[id(obj)]

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, obj: Any) -> bool:
        return self.get(obj) is not None

    def __getitem__(self, obj: Any) -> Any:
        found = self.get(obj)
        if found is None:
            raise KeyError(obj)
        return found

    def __len__(self) -> int:
        return len(self._items)


# Functions, callable objects, partials: keyed by the object itself. Bound methods (a new
# object at every attribute access) are keyed by their instance, then by their function,
# so that each instance has its own entries and dies with them.
_slots = _WeakIdTable()
_method_slots = _WeakIdTable()
_stats = collections.Counter()


def clear_cache(func: Any = None) -> None:
    """Forget compiled programs: all of them, or those of one callable (for a jaxfunc
    transform such as ``grad(f)``, those of ``f``)."""
    if func is not None:
        func = _unwrap(func)[0]
    with _lock:
        if func is None:
            _slots.clear()
            _method_slots.clear()
        elif isinstance(func, types.MethodType):
            (_method_slots.get(func.__self__) or {}).pop(func.__func__, None)
        else:
            _slots.pop(func)


def stats() -> dict[str, int]:
    """Counters of cache events (hits, compiles, eager runs...), for tests and benchmarks."""
    return dict(_stats)


def _slot_of(func: Any) -> _Slot | None:
    """The callable's record (created on first use); None if it cannot be held weakly."""
    try:
        if type(func) is types.MethodType:
            methods = _method_slots.setdefault(func.__self__, dict)
            slot = methods.get(func.__func__)
            if slot is None:
                slot = methods[func.__func__] = _Slot()
            return slot
        return _slots.setdefault(func, _Slot)
    except TypeError:  # not weak-referenceable, or not hashable
        return None


# -- jaxfunc's own wrappers (grad(f), jacrev(f), vmap(f), ...) -------------------------------

_wrapper_codes: set[types.CodeType] = set()


def register_wrapper(wrapper: Any, func: Any, transform: Transform) -> None:
    """Note that ``wrapper`` is ``transform.wrap(func)`` (see :func:`_unwrap`)."""
    wrapper._jaxfunc_wraps = (func, transform)
    _wrapper_codes.add(wrapper.__code__)


def _unwrap(func: Any) -> tuple[Any, tuple[Transform, ...]]:
    """``(innermost user function, the transforms around it, outermost first)``."""
    transforms = []
    while type(func) is types.FunctionType and func.__code__ in _wrapper_codes:
        func, transform = func._jaxfunc_wraps  # type: ignore[attr-defined]
        transforms.append(transform)
    return func, tuple(transforms)


@dataclasses.dataclass(frozen=True, eq=False)
class _Rewrapped(Program):
    """``program`` applied to ``transforms`` (outermost first) of the cached function: a
    transform of a transform made afresh at each call is cached on the user's function."""

    program: Program
    transforms: tuple[Transform, ...]

    @property
    def eager_first(self) -> bool:  # type: ignore[override]
        return self.program.eager_first

    def __call__(self, func: Any, arrays: Any) -> Any:
        for transform in reversed(self.transforms):
            func = transform.wrap(func)
        return self.program(func, arrays)


#: jaxfunc's own callables (``vjp_fn``, ``jvp_fn``): pure pytrees that ride along as jit
#: arguments when they come out of a compiled program (their structure is stable then).
PYTREE_CALLABLES: set[type] = set()


def call(func: Callable[..., Any], program: Program, arrays: Any) -> Any:
    """``program(func, arrays)``: eagerly, compiled, or as it is under a trace."""
    if not _enabled or _thread.disabled or not _compat.at_top_level():
        return program(func, arrays)
    t = type(func)
    if t is types.FunctionType:
        if func.__code__ in _wrapper_codes:  # a transform of a transform, made at each call
            base, transforms = _unwrap(func)
            return call(base, _Rewrapped(program, transforms), arrays)
    elif t in PYTREE_CALLABLES and func.jaxfunc_compiled:  # type: ignore[attr-defined]
        try:
            hash(program)
        except TypeError:  # an unkeyable option: no compile can be keyed on it
            return program(func, arrays)
        out = _call_pytree_callable(program, func, arrays)
        _stats["hit"] += 1
        return _boundary.decode(out, arrays)
    found = _lookup(func)
    if found is None:
        _stats["eager"] += 1
        return program(func, arrays)
    entry, hoisted, fresh = found
    try:
        compiled = entry.jits.get(program)
    except TypeError:  # a non-array argument no compile can be keyed on
        _stats["eager"] += 1
        return program(func, arrays)
    if compiled is None:
        seen_before = _first_seen(entry, program)  # records the key: the next call compiles
        eager = EAGER_FIRST_CALL and (fresh or not seen_before)
        if entry.eager_only or (eager and program.eager_first):
            _stats["eager"] += 1  # a one-off call pays no compile
            return program(func, arrays)
        if len(entry.jits) >= MAX_STATICS:
            _stats["eager"] += 1  # too many variants already compiled under this entry
            return program(func, arrays)
        compiled = _compile(entry, func, program)
    try:
        out = compiled[0](hoisted, arrays)
    except Exception as error:
        return _cannot_trace(entry, func, program, arrays, hoisted, error)
    compiled[1] = True
    _stats["hit"] += 1
    return _boundary.decode(out, arrays)


def _first_seen(entry: _Entry, key: Any) -> bool:
    """True when ``key`` was called before under this entry (so it is worth compiling)."""
    with _lock:
        if key in entry.seen:
            return True
        _remember(entry.seen, key, None)
        return False


def _compile(entry: _Entry, func: Any, program: Program) -> list:
    with _lock:
        compiled = entry.jits.get(program)
        if compiled is None:
            compiled = _make_jit(entry, func, program)
            _remember(entry.jits, program, compiled)
        return compiled


def _cannot_trace(
    entry: _Entry, func: Any, program: Program, arrays: Any, hoisted: Any, error: Exception
) -> Any:
    """The compiled call failed. If it had never run, run the program eagerly: when that
    works, the function needs concrete values (Python ``if`` on an array, ``float(x)``,
    boolean masks) and runs eagerly from now on; when it fails too, its error is the user's
    (a bad argument, a bug in ``f``) and propagates, leaving the entry as it was."""
    if entry.jits.get(program, [None, False])[1]:
        raise error  # it compiled and ran before: a real error at run time
    if hoisted and (isinstance(error, _compat.CONCRETIZATION_ERRORS) or entry.plan.numpy_hoisted):
        # A hoisted array steers Python control flow (``if float(T) > 0``): check arrays by
        # identity and compile their values in instead, then try once more.
        with _lock:
            entry.plan = _guard.build(func, hoist=False)
            entry.jits.clear()
        _stats["unhoisted"] += 1
        return call(func, program, arrays)
    result = program(func, arrays)  # raises the user's own error, if it is one
    with _lock:
        entry.eager_only = True
        entry.jits.clear()
    _stats["fallback"] += 1
    return result


@functools.partial(jax.jit, static_argnums=0)
def _call_pytree_callable(program: Program, func: Any, arrays: Any) -> Any:
    _stats["trace"] += 1
    return _boundary.encode(program(func, arrays), arrays)


def _remember(d: collections.OrderedDict, key: Any, value: Any) -> None:
    d[key] = value
    if len(d) > MAX_STATICS:
        d.popitem(last=False)


def _lookup(func: Any) -> tuple[_Entry, tuple[Any, ...], bool] | None:
    """The entry whose guard holds (building one if needed), its hoisted values, and
    whether it was just built. None: the callable cannot be cached."""
    if type(func) is not types.MethodType:  # the hot path: no lock, the newest entry holds
        slot = _slots.get(func)
        if slot is not None and slot.entries:
            entry = slot.entries[0]
            hoisted = entry.plan.guard(func)
            if hoisted is not None:
                slot.calls += 1
                return entry, hoisted, False
    with _lock:
        slot = _slot_of(func)
        if slot is None or slot.uncacheable:
            return None
        slot.calls += 1
        for i, entry in enumerate(slot.entries):
            hoisted = entry.plan.guard(func)
            if hoisted is not None:
                if i:
                    slot.entries.insert(0, slot.entries.pop(i))
                return entry, hoisted, False
        if slot.builds >= THRASH_BUILDS and slot.builds * THRASH_RATIO >= slot.calls:
            slot.uncacheable = True  # what it reads changes at nearly every call
            slot.entries.clear()  # (their programs hold the old values)
            _stats["thrash"] += 1
            return None
        slot.builds += 1
        try:
            plan = _guard.build(func)
        except _guard.Uncacheable:
            slot.uncacheable = True
            return None
        hoisted = plan.guard(func)
        if hoisted is None:  # the state moved while we looked (or cannot be read twice)
            slot.uncacheable = True
            return None
        entry = _Entry(plan)
        slot.entries.insert(0, entry)
        del slot.entries[MAX_ENTRIES:]
        _stats["build"] += 1
        return entry, hoisted, True


def _make_jit(entry: _Entry, func: Any, program: Program) -> list:
    """``[jitted, has_run]``; ``has_run`` is set once the compiled program ran."""
    entry_ref = weakref.ref(entry)
    func_ref = _weak(func)

    def traced(hoisted: tuple[Any, ...], arrays: Any) -> Any:
        _stats["trace"] += 1
        e, f = entry_ref(), func_ref()
        if e is None or f is None:  # pragma: no cover - dropped while a call was running
            raise RuntimeError("jaxfunc: the cached function was garbage-collected")
        _thread.depth += 1
        try:
            out = program(e.plan.rebind(f, hoisted), arrays)
        finally:
            _thread.depth -= 1
        return _boundary.encode(out, arrays)

    return [jax.jit(traced), False]


def _weak(obj: Any) -> Callable[[], Any]:
    if isinstance(obj, types.MethodType):
        fn_ref, self_ref = weakref.ref(obj.__func__), weakref.ref(obj.__self__)

        def method() -> Any:
            fn, self = fn_ref(), self_ref()
            return None if fn is None or self is None else types.MethodType(fn, self)

        return method
    return weakref.ref(obj)
