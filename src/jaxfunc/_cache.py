"""The guarded compile cache: eager calls at jit speed, never a stale result.

Every public transform ends in ``call(func, program, static, arrays)``. ``program`` is the
whole JAX mapping of that transform (see ``_core``); ``static`` holds the options and the
non-array parts of the call; ``arrays`` are the array arguments. Then:

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
import functools
import os
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import jax

from . import _checks, _compat, _guard, _tree, _warnings

MAX_ENTRIES = 8  # per callable: guard states kept (most recent first)
MAX_STATICS = 32  # per entry: distinct option/static-argument combinations compiled
THRASH_BUILDS = 8  # a callable rebuilt this often, for a quarter or more of its calls ...
THRASH_RATIO = 4  # ... changes what it reads at nearly every call: it then runs eagerly

#: Run the first call of each new (function, options) eagerly, for the programs that
#: declare themselves cheap to run eagerly (see :func:`eager_first`). Tests switch it off
#: to push every call through the compiled path.
EAGER_FIRST_CALL = True
_eager_first_programs: set[Callable[..., Any]] = set()


def eager_first(program: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a program whose eager run costs about one forward and backward pass (vjp, jvp,
    grad): a one-off call of a new function then pays no compile. Programs that vectorize
    or nest derivatives (jacobians, hessians, vmap) run op by op far slower than their
    compile, and are compiled from the first call."""
    _eager_first_programs.add(program)
    return program


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
    if func is not None and type(func) is types.FunctionType:
        unwrapped = _unwrap(func)
        if unwrapped is not None:
            func = unwrapped[0]
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


def register_wrapper(
    wrapper: Any, func: Any, transform: Callable[..., Any], options: tuple[Any, ...]
) -> None:
    """Note that ``wrapper`` is ``transform(func, *options)`` (see :func:`_unwrap`)."""
    wrapper._jaxfunc_wraps = (func, transform, options)
    _wrapper_codes.add(wrapper.__code__)


def _unwrap(func: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """``(innermost user function, how to rebuild the wrappers)`` for a jaxfunc wrapper,
    or None when its options cannot key a compile (unhashable)."""
    specs = []
    while type(func) is types.FunctionType and func.__code__ in _wrapper_codes:
        func, transform, options = func._jaxfunc_wraps  # type: ignore[attr-defined]
        specs.append((transform, options))
    specs_t = tuple(specs)
    try:
        hash(specs_t)
    except TypeError:
        return None
    return func, specs_t


def _rewrapped(func: Any, static: Any, arrays: Any) -> Any:
    program, specs, inner_static = static
    for transform, options in reversed(specs):
        func = transform(func, *options)
    return program(func, inner_static, arrays)


#: jaxfunc's own callables (``vjp_fn``, ``jvp_fn``): pure pytrees that ride along as jit
#: arguments when they come out of a compiled program (their structure is stable then).
PYTREE_CALLABLES: set[type] = set()


def call(func: Callable[..., Any], program: Callable[..., Any], static: Any, arrays: Any) -> Any:
    """``program(func, static, arrays)``: eagerly, compiled, or as it is under a trace."""
    _warnings.check_call(func)
    with _checks.torch_device_errors:
        return _call(func, program, static, arrays)


def _call(func: Callable[..., Any], program: Callable[..., Any], static: Any, arrays: Any) -> Any:
    if not _enabled or _thread.disabled or not _compat.at_top_level():
        return program(func, static, arrays)
    t = type(func)
    if t is types.FunctionType:
        if func.__code__ in _wrapper_codes:  # a transform of a transform, made at each call
            unwrapped = _unwrap(func)
            if unwrapped is not None:
                base, specs = unwrapped
                return call(base, _rewrapped, (program, specs, static), arrays)
    elif t in PYTREE_CALLABLES and func.jaxfunc_compiled:  # type: ignore[attr-defined]
        try:
            out = _call_pytree_callable(program, static, func, arrays)
        except ValueError as e:  # an unhashable option: no compile can be keyed on it
            if "static" not in str(e):
                raise
            return program(func, static, arrays)
        _stats["hit"] += 1
        return _tree.thaw_order(out)
    found = _lookup(func)
    if found is None:
        _stats["eager"] += 1
        return program(func, static, arrays)
    entry, hoisted, fresh = found
    key = (program, static)
    try:
        compiled = entry.jits.get(key)
    except TypeError:  # a non-array argument no compile can be keyed on (see _core)
        _stats["eager"] += 1
        return program(func, static, arrays)
    if compiled is None:
        seen_before = _first_seen(entry, key)  # records the key: the next call compiles
        eager = EAGER_FIRST_CALL and (fresh or not seen_before)
        if entry.eager_only or (eager and program in _eager_first_programs):
            _stats["eager"] += 1  # a one-off call pays no compile
            return program(func, static, arrays)
        if len(entry.jits) >= MAX_STATICS:
            _stats["eager"] += 1  # too many variants already compiled under this entry
            return program(func, static, arrays)
        compiled = _compile(entry, func, program, static, key)
    try:
        out = compiled[0](hoisted, arrays)
    except Exception as error:
        return _cannot_trace(entry, func, program, static, arrays, hoisted, key, error)
    if type(out) is _WithoutInputs:
        out = out.rebuild(arrays)
    compiled[2] = True
    _stats["hit"] += 1
    return _tree.thaw_order(out) if compiled[1] else out


def _first_seen(entry: _Entry, key: Any) -> bool:
    """True when ``key`` was called before under this entry (so it is worth compiling)."""
    with _lock:
        if key in entry.seen:
            return True
        _remember(entry.seen, key, None)
        return False


def _compile(entry: _Entry, func: Any, program: Callable[..., Any], static: Any, key: Any) -> list:
    with _lock:
        compiled = entry.jits.get(key)
        if compiled is None:
            compiled = _make_jit(entry, func, program, static)
            _remember(entry.jits, key, compiled)
        return compiled


def _cannot_trace(
    entry: _Entry,
    func: Any,
    program: Callable[..., Any],
    static: Any,
    arrays: Any,
    hoisted: Any,
    key: Any,
    error: Exception,
) -> Any:
    """The compiled call failed. If it had never run, run the program eagerly: when that
    works, the function needs concrete values (Python ``if`` on an array, ``float(x)``,
    boolean masks) and runs eagerly from now on; when it fails too, its error is the user's
    (a bad argument, a bug in ``f``) and propagates, leaving the entry as it was."""
    if entry.jits.get(key, [None, None, False])[2]:
        raise error  # it compiled and ran before: a real error at run time
    if hoisted and isinstance(error, _compat.CONCRETIZATION_ERRORS):
        # A hoisted array steers Python control flow (``if float(T) > 0``): check arrays by
        # identity and compile their values in instead, then try once more.
        with _lock:
            entry.plan = _guard.build(func, hoist=False)
            entry.jits.clear()
        _stats["unhoisted"] += 1
        return call(func, program, static, arrays)
    result = program(func, static, arrays)  # raises the user's own error, if it is one
    with _lock:
        entry.eager_only = True
        entry.jits.clear()
    _stats["fallback"] += 1
    _warnings.eager_fallback(func, error)
    return result


@functools.partial(jax.jit, static_argnums=(0, 1))
def _call_pytree_callable(program: Callable[..., Any], static: Any, func: Any, arrays: Any) -> Any:
    _stats["trace"] += 1
    return _tree.freeze_order(program(func, static, arrays))


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


def _make_jit(entry: _Entry, func: Any, program: Callable[..., Any], static: Any) -> list:
    """``[jitted, needs_thaw, has_run]``; ``needs_thaw`` is set while tracing if the result
    holds dicts, ``has_run`` once the compiled program ran."""
    entry_ref = weakref.ref(entry)
    func_ref = _weak(func)
    compiled: list[Any] = [None, False, False]

    def traced(hoisted: tuple[Any, ...], arrays: Any) -> Any:
        _stats["trace"] += 1
        e, f = entry_ref(), func_ref()
        if e is None or f is None:  # pragma: no cover - dropped while a call was running
            raise RuntimeError("jaxfunc: the cached function was garbage-collected")
        _thread.depth += 1
        try:
            out = program(e.plan.rebind(f, hoisted), static, arrays)
        finally:
            _thread.depth -= 1
        if _tree.contains_dict(out):
            compiled[1] = True
            out = _tree.freeze_order(out)
        return _WithoutInputs.strip(out, arrays)

    compiled[0] = jax.jit(traced)
    return compiled


class _WithoutInputs:
    """A compiled program's result less the leaves that are its own array arguments (a
    ``vjp_fn``'s residuals, an identity output): ``jax.jit`` would copy each one it returns.
    ``slots``: per leaf of the result, the index of the argument leaf it is, or -1. A pytree
    whose structure is static, so every trace of a jit keeps its own."""

    __slots__ = ("kept", "slots", "treedef")

    def __init__(self, kept: tuple[Any, ...], treedef: Any, slots: tuple[int, ...]) -> None:
        self.kept, self.treedef, self.slots = kept, treedef, slots

    @classmethod
    def strip(cls, out: Any, arrays: Any) -> Any:
        leaves, treedef = jax.tree_util.tree_flatten(out)
        index = {id(a): i for i, a in enumerate(jax.tree_util.tree_leaves(arrays))}
        slots = tuple(index.get(id(leaf), -1) for leaf in leaves)
        if max(slots, default=-1) < 0:
            return out
        return cls(tuple(x for x, i in zip(leaves, slots) if i < 0), treedef, slots)

    def rebuild(self, arrays: Any) -> Any:
        """The whole result, the stripped leaves taken from the call's own ``arrays``."""
        args = jax.tree_util.tree_leaves(arrays)
        kept = iter(self.kept)
        return self.treedef.unflatten(
            [next(kept) if i < 0 else _as_jax(args[i]) for i in self.slots]
        )


def _as_jax(x: Any) -> Any:
    """What jit would have returned for argument ``x``: a jax array (numpy and Python
    scalars converted as jit converts them)."""
    return x if isinstance(x, jax.Array) else jax.numpy.asarray(x)


jax.tree_util.register_pytree_node(
    _WithoutInputs,
    lambda w: (w.kept, (w.treedef, w.slots)),
    lambda aux, kept: _WithoutInputs(tuple(kept), *aux),
)


def _weak(obj: Any) -> Callable[[], Any]:
    if isinstance(obj, types.MethodType):
        fn_ref, self_ref = weakref.ref(obj.__func__), weakref.ref(obj.__self__)

        def method() -> Any:
            fn, self = fn_ref(), self_ref()
            return None if fn is None or self is None else types.MethodType(fn, self)

        return method
    return weakref.ref(obj)
