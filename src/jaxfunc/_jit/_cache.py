"""The guarded compile cache: eager calls at jit speed, never a stale result.

Every public transform ends in ``call(func, program, arrays)``. ``program`` is a frozen
:class:`~._keys.Program`: the whole JAX mapping of that transform, with the options and the
non-array parts of the call as its fields; ``arrays`` are the array arguments. Then:

- under any JAX transformation (a user's ``jax.jit``, ``vmap``, ``grad``) the program runs
  as it is: the traced program is exactly what the raw JAX calls give;
- with the cache switched off, the program runs eagerly;
- otherwise the callable's slot is found — a plain function's by its *code*, so closures
  made afresh at each call share compiled programs — and each entry's guard (``_guard``)
  proves that the function still means what it meant when the entry was made: its code,
  defaults, closure values, globals and everything they reach, by value. Arrays found there
  are *hoisted*: passed to one ``jax.jit`` of the program as arguments. ``jax.jit``'s own
  cache handles shapes, dtypes and pytree structure. Every cached call, the first one
  included, runs the compiled program, so a function gives the same values at every call
  (XLA's fusion can round differently from op-by-op execution).
- what cannot be proved runs eagerly, and the function's slot says why
  (:func:`cache_info`); ``on_give_up`` (set by the package) tells the user once. A function
  that cannot be traced abstractly (Python control flow on values, ``.item()``) is found out
  on its first compile and runs eagerly from then on, with the same results; a function
  whose state changes at nearly every call runs eagerly for a while, then is tried again.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import inspect
import os
import sys
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
BACKOFF_CALLS = 16  # ... for this many calls (doubling each time), then is tried again

#: Called once per callable when the cache gives up on it, ``on_give_up(func, reason,
#: error)`` (``error``: JAX's, when tracing needed a concrete value). The package sets it.
on_give_up: Callable[[Any, str, BaseException | None], None] = lambda *_: None


#: Called before every call that is not an inline hit, ``on_call(func)``; an inline hit is
#: made only while ``_pending`` (the list :func:`pending` gives) is empty, for a callable
#: that was called before. The package tells the user about the function there.
on_call: Callable[[Any], None] = lambda _: None

#: ``translate_error(error)``: the error to raise in place of one a call raised, or None to
#: raise it as it is. The package sets it (JAX's device errors as torch's).
translate_error: Callable[[BaseException], BaseException | None] = lambda _: None

_pending: list[Any] = []


def set_hooks(
    give_up: Callable[[Any, str, BaseException | None], None],
    before_call: Callable[[Any], None],
    error: Callable[[BaseException], BaseException | None],
) -> None:
    """Set the package's ``on_give_up``, ``on_call`` and ``translate_error``."""
    global on_give_up, on_call, translate_error
    on_give_up, on_call, translate_error = give_up, before_call, error


def pending() -> list[Any]:
    """A list the package appends to when ``on_call`` has something to say at the next
    call (``on_call`` empties it): while it is not empty, every call runs ``on_call``."""
    return _pending


_lock = threading.RLock()


class _ThreadState(threading.local):
    depth = 0  # programs this thread is tracing for the cache
    disabled = 0  # ``disabled()`` blocks this thread is in
    current: Any = None  # (function, entry) of the compiled call ``_call`` is making
    entry: Any = None  # the entry whose program this thread is tracing
    tainted = False  # the state changed between this call's guard check and its trace


_thread = _ThreadState()


def keep(obj: Any, *, for_life: bool = False) -> Callable[[], Any]:
    """Keep ``obj`` alive as long as the cache entry whose program is being traced, and
    return a weak reference to it. A program's result must not hold heavy things (a compiled
    backward) strongly: JAX's own caches keep the static parts of jit results and arguments
    (up to 4096 of them), which would keep those things alive long after their entry is gone.
    By default only the newest programs' objects are kept (what a result can do without, a
    compiled backward); ``for_life``: as long as the entry, whatever it traces (what a result
    rebuilt from the entry's structures needs)."""
    entry = _thread.entry
    if entry is None:
        return lambda: obj  # not traced for the cache: the result owns it
    with _lock:
        if for_life:
            entry.owned.append(obj)
        else:
            entry.kept.append(obj)
            del entry.kept[: -4 * MAX_STATICS]  # (the newest programs' retraces)
    return weakref.ref(obj)


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


_disabled_blocks = 0  # ``disabled()`` blocks open in any thread (the hot path reads this)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the jaxfunc calls this thread makes inside the block uncompiled (eagerly)."""
    global _disabled_blocks
    with _lock:
        _disabled_blocks += 1
    _thread.disabled += 1
    try:
        yield
    finally:
        _thread.disabled -= 1
        with _lock:
            _disabled_blocks -= 1


_NO_LAST = (None, None)


class _Entry:
    """One guard state of one callable, and the compiled programs made under it."""

    __slots__ = (
        "__weakref__",
        "eager_only",
        "jits",
        "kept",
        "last",
        "owned",
        "plan",
        "structures",
    )

    def __init__(self, plan: _guard.Plan) -> None:
        self.plan = plan
        self.last: tuple[Any, Any] = _NO_LAST  # (program, compiled) of the last hit
        self.structures = _boundary.Structures()  # its programs' result structures
        self.jits: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self.eager_only = False
        self.kept: list[Any] = []  # what its programs' results refer to weakly (see keep)
        self.owned: list[Any] = []  # the same, for the entry's whole life


class _Slot:
    """The cache's record for one callable (or one code object): its entries, the policy's
    state, and what it did (counters, and why it ran eagerly)."""

    __slots__ = (
        "backoff",
        "builds",
        "calls",
        "counts",
        "eager_until",
        "entries",
        "hits",
        "reasons",
        "uncacheable",
    )

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.hits = 0
        self.builds = 0
        self.calls = 0
        self.uncacheable = False  # for good: what it reads can never be guarded
        self.eager_until = 0  # eager while ``calls`` is below this (state kept changing)
        self.backoff = BACKOFF_CALLS
        self.counts: collections.Counter[str] = collections.Counter()
        self.reasons: list[str] = []

    def give_up(self, func: Any, reason: str, error: BaseException | None = None) -> None:
        """Note why calls run eagerly; the first reason is told to the user."""
        if reason not in self.reasons:
            first = not self.reasons
            self.reasons.append(reason)
            if first:
                on_give_up(func, reason, error)


class WeakIdTable:
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

    def values(self) -> list[Any]:
        return [value for _, value in self._items.values()]


# Callables are keyed by the object itself, held weakly: a dropped function's slot goes with
# it. Bound methods (a new object at every attribute access) are keyed by their instance,
# then by their function, so that each instance has its own entries and dies with them.
# A new plain function adopts the slot of the last function with the same code, kept in a
# small LRU (``_by_code``): closures made afresh at each call share compiled programs (the
# guard still proves each one's closure values, defaults and globals). The LRU bounds what
# dropped functions can keep: their compiled programs refer to their code (through JAX's
# source locations), so a slot keyed weakly by code would never be freed. Only code that
# can make new functions goes there (see _can_be_made_again): the slot of any other
# function goes with it, compiled programs (~1.5 MB each on CPU) included.
_slots = WeakIdTable()
# (By identity: code objects compare equal across files, the same source at the same lines,
# and unrelated functions must not share a slot's state and what it has told the user. The
# LRU holds each code object, so its id is not reused while it is there.)
_by_code: collections.OrderedDict[int, tuple[types.CodeType, _Slot]] = collections.OrderedDict()
MAX_CODES = 16
_slot_items = _slots._items  # (read directly on the hot path)
_method_slots = WeakIdTable()
_stats = collections.Counter()
_hits = 0  # calls served by a compiled program


def clear_cache(func: Any = None) -> None:
    """Forget compiled programs: all of them, or those of one callable (for a jaxfunc
    transform such as ``grad(f)``, those of ``f``)."""
    if func is not None:
        func = unwrap(func)[0]
    with _lock:
        if func is None:
            _slots.clear()
            _method_slots.clear()
            _by_code.clear()
        elif isinstance(func, types.MethodType):
            (_method_slots.get(func.__self__) or {}).pop(func.__func__, None)
        else:
            _slots.pop(func)
            if type(func) is types.FunctionType:
                _by_code.pop(id(func.__code__), None)


def stats() -> dict[str, int]:
    """Counters of cache events (hit, trace, build, eager...), for tests and benchmarks."""
    return {**_stats, "hit": _hits}


def cache_info(func: Any = None) -> dict[str, Any]:
    """What the cache did: ``hits`` (calls served by a compiled program), ``compiles``
    (traces made to compile) and ``eager`` (calls run uncompiled), for the whole process or
    for one callable (a jaxfunc transform such as ``grad(f)`` reports ``f``); for one
    callable also ``entries`` (guard states held) and ``reasons`` (why calls ran eagerly)."""
    if func is None:
        return {
            "hits": _hits,
            "compiles": _stats["trace"],
            "eager": _stats["eager"],
            "functions": len(_slots) + sum(len(m) for m in _method_slots.values()),
        }
    func = unwrap(func)[0]
    slot = _existing_slot(func)
    counts = slot.counts if slot is not None else collections.Counter()
    return {
        "hits": slot.hits if slot is not None else 0,
        "compiles": counts["trace"],
        "eager": counts["eager"],
        "entries": len(slot.entries) if slot is not None else 0,
        "reasons": list(slot.reasons) if slot is not None else [],
    }


def _existing_slot(func: Any) -> _Slot | None:
    if type(func) is types.MethodType:
        return (_method_slots.get(func.__self__) or {}).get(func.__func__)
    return _slots.get(func)


def _can_be_made_again(code: types.CodeType) -> bool:
    """Can new functions with this code appear: a function defined inside another one (a
    closure made at each call), or by code that is running now (a ``def`` in a module-level
    loop)? Not so a function made once (at module level, by ``exec``)."""
    if code.co_flags & inspect.CO_NESTED:
        return True
    frame = sys._getframe(1)
    while frame is not None:
        if any(c is code for c in frame.f_code.co_consts):
            return True
        frame = frame.f_back
    return False


def _code_slot(code: types.CodeType) -> _Slot:
    """The slot of the last function with this code (a new one if none is remembered)."""
    item = _by_code.get(id(code))
    if item is not None and item[0] is code:
        _by_code.move_to_end(id(code))
        return item[1]
    slot = _Slot()
    if not _can_be_made_again(code):
        return slot  # held by the function only
    _by_code[id(code)] = (code, slot)
    if len(_by_code) > MAX_CODES:
        _by_code.popitem(last=False)
    return slot


def _slot_of(func: Any) -> _Slot | None:
    """The callable's record (created on first use); None if it cannot be held weakly."""
    try:
        if type(func) is types.MethodType:
            methods = _method_slots.setdefault(func.__self__, dict)
            slot = methods.get(func.__func__)
            if slot is None:
                slot = methods[func.__func__] = _Slot()
            return slot
        if type(func) is types.FunctionType:
            return _slots.setdefault(func, lambda: _code_slot(func.__code__))
        return _slots.setdefault(func, _Slot)
    except TypeError:  # not weak-referenceable, or not hashable
        return None


# -- jaxfunc's own wrappers (grad(f), jacrev(f), vmap(f), ...) -------------------------------

#: The code objects of jaxfunc's own wrappers, by id (held: they are its functions' constants).
_wrapper_codes: dict[int, types.CodeType] = {}


def register_wrapper(wrapper: Any, func: Any, transform: Transform) -> None:
    """Note that ``wrapper`` is ``transform.wrap(func)`` (see :func:`unwrap`). What it keeps
    replaces anything ``functools.wraps`` copied into it from ``func``'s ``__dict__``."""
    _wrapper_codes[id(wrapper.__code__)] = wrapper.__code__
    base, transforms = unwrap(func)
    wrapper._jaxfunc_unwrapped = (base, (transform, *transforms))


def unwrap(func: Any) -> tuple[Any, tuple[Transform, ...]]:
    """``(innermost user function, the transforms around it, outermost first)``: for one of
    jaxfunc's wrappers (known by its code: a user's ``functools.wraps`` of one is not), the
    same tuple at each call, so ``_Rewrapped.of`` knows a repeated call by identity."""
    if type(func) is types.FunctionType and id(func.__code__) in _wrapper_codes:
        return func.__dict__["_jaxfunc_unwrapped"]
    return func, ()


@dataclasses.dataclass(frozen=True, eq=False)
class _Rewrapped(Program):
    """``program`` applied to ``transforms`` (outermost first) of the cached function: a
    transform of a transform made afresh at each call is cached on the user's function."""

    program: Program
    transforms: tuple[Transform, ...]

    def __call__(self, func: Any, arrays: Any) -> Any:
        for transform in reversed(self.transforms):
            func = transform.wrap(func)
        return self.program(func, arrays)


#: jaxfunc's own callables (``vjp_fn``, ``jvp_fn``): pure pytrees that ride along as jit
#: arguments when they come out of a compiled program (their structure is stable then); their
#: ``jaxfunc_jits()`` gives the dict for the programs compiled for them (``Jits``, made with
#: :func:`keep`), or None.
PYTREE_CALLABLES: set[type] = set()


def call(func: Callable[..., Any], program: Program, arrays: Any) -> Any:
    """``program(func, arrays)``: eagerly, compiled, or as it is under a trace; errors as
    ``translate_error`` makes them."""
    global _hits
    try:
        # A hit, inline (it is most calls): at top level, nothing pending for ``on_call``,
        # the callable seen before, its newest entry holds, and that entry ran this very
        # program (interned by ``Program.of``) last time, so its jit has traced. Should
        # the jit trace anyway (new shapes), the trace stops at once (``_NotHere``) and the
        # call is made again below, where a trace can be watched. A transform of a
        # transform made afresh at each call is unwrapped first, as ``_call`` did for it.
        if (
            _enabled
            and not _pending
            and not _disabled_blocks
            and type(_compat.TRACE.value) is _compat.EVAL_TRACE
        ):
            item = _slot_items.get(id(func))
            if (
                item is None
                and type(func) is types.FunctionType
                and id(func.__code__) in _wrapper_codes
            ):
                on_call(func)
                func, transforms = func.__dict__["_jaxfunc_unwrapped"]
                program = _Rewrapped.of(program=program, transforms=transforms)
                item = _slot_items.get(id(func))
            if item is not None and item[0]() is func:
                slot = item[1]
                entries = slot.entries
                if entries:
                    entry = entries[0]
                    last = entry.last
                    if last[0] is program and last[1][1]:
                        hoisted = entry.plan.guard(func)
                        if hoisted is not None:
                            slot.calls += 1
                            try:
                                out = last[1][0](hoisted, arrays)
                            except _NotHere:  # (made again after the handler: its
                                out = _NotHere  # errors must not carry this one)
                            if out is _NotHere:
                                slot.calls -= 1
                                return _call(func, program, arrays)
                            _hits += 1  # (plain ints: a Counter's item costs more, each hit)
                            slot.hits += 1
                            if type(out) is dict:
                                return _boundary.decode(out, arrays, entry.structures)
                            return out
        return _call(func, program, arrays)
    except Exception as error:
        translated = translate_error(error)
        if translated is None:
            raise
        raise translated from error


class _NotHere(Exception):
    """A compiled program started to trace on the inline hit path, where the trace could
    not be watched (see ``call``)."""


def _call(func: Callable[..., Any], program: Program, arrays: Any) -> Any:
    """``call`` past its inline hit: every case."""
    global _hits
    on_call(func)
    if not _enabled or (_disabled_blocks and _thread.disabled) or not _compat.at_top_level():
        return program(func, arrays)
    t = type(func)
    if t is types.FunctionType:
        if id(func.__code__) in _wrapper_codes:  # a transform of a transform, made per call
            base, transforms = unwrap(func)
            return _call(base, _Rewrapped.of(program=program, transforms=transforms), arrays)
    elif t in PYTREE_CALLABLES and (jits := func.jaxfunc_jits()) is not None:  # type: ignore[attr-defined]
        try:
            key = program.typed()
            jitted = jits.get(key)
        except TypeError:  # an unkeyable option: no compile can be keyed on it
            return _eager(None, func, program, arrays)
        if jitted is None:
            jitted = _pytree_callable_jit(program, jits.structures)
            _remember(jits, key, jitted)
        out = jitted(func, arrays)
        _hits += 1
        return _boundary.decode(out, arrays, jits.structures)
    slot, entry, hoisted = _lookup(func)
    if entry is None:
        return _eager(slot, func, program, arrays)
    last = entry.last
    if last[0] is program:
        compiled = last[1]
    else:
        compiled = _find_compiled(slot, entry, func, program)
        if compiled is None:
            return _eager(slot, func, program, arrays)
    thread = _thread
    outer, thread.current = thread.current, (func, entry)
    try:
        out = compiled[0](hoisted, arrays)
    except Exception as error:
        thread.tainted = False
        return _cannot_trace(slot, entry, func, program, arrays, hoisted, error)
    finally:
        thread.current = outer
    if not compiled[1] or thread.tainted:
        # A trace that read a state other than the entry's (another thread changed it, or
        # the function itself did while its first trace ran) gives this call's result, but
        # its program may hold a mix of old and new: it is not kept.
        if thread.tainted or entry.plan.guard(func) is None:
            thread.tainted = False
            _forget(entry, program)
        else:
            compiled[1] = True
    _hits += 1
    slot.hits += 1
    return _boundary.decode(out, arrays, entry.structures)


def _find_compiled(slot: _Slot, entry: _Entry, func: Any, program: Program) -> list | None:
    """The entry's compiled ``program`` (compiling it if needed; None: run eagerly), and
    remembered as the entry's last."""
    try:
        key = program.typed()
        compiled = entry.jits.get(key)
    except TypeError:  # a non-array argument no compile can be keyed on
        slot.give_up(func, "an argument that is neither an array nor a plain value")
        return None
    if compiled is None:
        if entry.eager_only:
            return None
        if len(entry.jits) >= MAX_STATICS:
            slot.give_up(func, f"more than {MAX_STATICS} option/argument combinations")
            return None
        compiled = _compile(slot, entry, program, key)
    entry.last = (program, compiled)
    return compiled


def _forget(entry: _Entry, program: Program | None = None) -> None:
    """Drop the entry's compiled ``program`` (all of them if None)."""
    with _lock:
        entry.last = _NO_LAST
        if program is None:
            entry.jits.clear()
        else:
            entry.jits.pop(program.typed(), None)


def _eager(slot: _Slot | None, func: Any, program: Program, arrays: Any) -> Any:
    _stats["eager"] += 1
    if slot is not None:
        slot.counts["eager"] += 1
    return program(func, arrays)


def _compile(slot: _Slot, entry: _Entry, program: Program, key: Any) -> list:
    with _lock:
        compiled = entry.jits.get(key)
        if compiled is None:
            compiled = _make_jit(slot.counts, entry, program)
            _remember(entry.jits, key, compiled)
        return compiled


def _cannot_trace(
    slot: _Slot,
    entry: _Entry,
    func: Any,
    program: Program,
    arrays: Any,
    hoisted: Any,
    error: Exception,
) -> Any:
    """The compiled call failed. If it had never run, run the program eagerly: when that
    works, the function needs concrete values (Python ``if`` on an array, ``float(x)``,
    boolean masks) and runs eagerly from now on; when it fails too, its error is the user's
    (a bad argument, a bug in ``f``) and propagates, leaving the entry as it was."""
    if entry.jits.get(program.typed(), [None, False])[1]:
        raise error  # it compiled and ran before: a real error at run time
    if hoisted and (isinstance(error, _compat.CONCRETIZATION_ERRORS) or entry.plan.numpy_hoisted):
        # A hoisted array steers Python control flow (``if float(T) > 0``): check arrays by
        # value and compile their values in instead, then try once more.
        with _lock:
            entry.plan = _guard.build(func, hoist=False)
        _forget(entry)
        _stats["unhoisted"] += 1
        return _call(func, program, arrays)
    result = _eager(slot, func, program, arrays)  # raises the user's own error, if it is one
    entry.eager_only = True
    _forget(entry)
    _stats["fallback"] += 1
    slot.give_up(func, _needs_values(error), error)
    return result


def _needs_values(error: Exception) -> str:
    """The reason a function cannot be compiled: the first line of JAX's error, which names
    the operation that needed a concrete value."""
    first = str(error).strip().split("\n")[0]
    return f"it needs concrete values ({type(error).__name__}: {first})"


class Jits(dict):
    """Programs compiled for one of jaxfunc's pytree callables (weakly referable), and
    their result structures."""

    def __init__(self) -> None:
        super().__init__()
        self.structures = _boundary.Structures()


def _pytree_callable_jit(program: Program, structures: _boundary.Structures) -> Any:
    """``program`` compiled for jaxfunc's own pytree callables (a ``vjp_fn`` from a compiled
    program), which ride along as arguments; kept by the callable's meta, dying with it."""

    def traced(func: Any, arrays: Any) -> Any:
        _stats["trace"] += 1
        return _boundary.encode(program(func, arrays), arrays, structures)

    return jax.jit(traced)


def _remember(d: collections.OrderedDict, key: Any, value: Any) -> None:
    d[key] = value
    if len(d) > MAX_STATICS:
        d.popitem(last=False)


def _lookup(func: Any) -> tuple[Any, Any, Any]:
    """The callable's slot, the entry whose guard holds (building one if needed) and its
    hoisted values. No entry: the call runs eagerly; no slot either: the callable cannot be
    held weakly. (``call`` tries the newest entry of a plain function first, inline.)"""
    with _lock:
        slot = _slot_of(func)
        if slot is None:
            return None, None, None
        slot.calls += 1
        if slot.uncacheable or slot.calls < slot.eager_until:
            return slot, None, None
        if slot.eager_until:  # an eager stretch ends: this try is judged on its own calls
            slot.eager_until = 0
            slot.calls = 1
        for i, entry in enumerate(slot.entries):
            hoisted = entry.plan.guard(func)
            if hoisted is not None:
                if i:
                    slot.entries.insert(0, slot.entries.pop(i))
                return slot, entry, hoisted
        if slot.builds >= THRASH_BUILDS and slot.builds * THRASH_RATIO >= slot.calls:
            # What it reads changes at nearly every call: eager for a while, then again.
            changed = slot.entries[0].plan.explain(func) if slot.entries else None
            slot.entries.clear()  # (their programs hold the old values)
            slot.builds = slot.calls = 0
            slot.eager_until = slot.backoff
            slot.backoff *= 2
            _stats["thrash"] += 1
            reason = "what it reads changes at nearly every call"
            slot.give_up(func, f"{reason}: {changed}" if changed else reason)
            return slot, None, None
        slot.builds += 1
        try:
            plan = _guard.build(func)
        except _guard.Uncacheable as e:
            slot.uncacheable = True
            slot.give_up(func, f"its state cannot be guarded: {e}")
            return slot, None, None
        hoisted = plan.guard(func)
        if hoisted is None:  # the state moved while we looked (or cannot be read twice)
            slot.give_up(func, "its state changed while it was being read")
            return slot, None, None
        entry = _Entry(plan)
        slot.entries.insert(0, entry)
        del slot.entries[MAX_ENTRIES:]
        _stats["build"] += 1
        return slot, entry, hoisted


def _make_jit(counts: collections.Counter[str], entry: _Entry, program: Program) -> list:
    """``[jitted, has_run]``; ``has_run`` is set once the compiled program ran. The trace
    rebinds the function of the call that traces (closures of one code share an entry)."""
    entry_ref = weakref.ref(entry)

    def traced(hoisted: tuple[Any, ...], arrays: Any) -> Any:
        current = _thread.current  # (func, entry) of the call being made, from ``_call``
        if current is None or current[1] is not entry_ref():  # from ``call``'s inline hit
            raise _NotHere
        f, e = current
        _stats["trace"] += 1
        counts["trace"] += 1
        # The trace reads a snapshot, proved by the guard to be the state the entry stands
        # for; if it is not (another thread changed it since this call's check), the
        # program is this call's only.
        snap = e.plan.snapshot(f)
        if e.plan.guard(snap) is None:
            # Either the state moved, or the snapshot cannot pass for the function (helpers
            # it shares globals with, wrapped in jax.jit): then the trace reads the live
            # state and only the check after it stands.
            if e.plan.guard(f) is None:
                _thread.tainted = True
        else:
            f = snap
        _thread.depth += 1
        outer, _thread.entry = _thread.entry, e
        try:
            out = program(e.plan.rebind(f, hoisted), arrays)
        finally:
            _thread.depth -= 1
            _thread.entry = outer
        return _boundary.encode(out, arrays, e.structures)

    return [jax.jit(traced), False]
