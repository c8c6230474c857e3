"""Reliability: faults in user code, threads, memory held by the compile cache, numerics.

(a) an exception raised by the user's function comes out unchanged (type, message, the
    user's line in the traceback), eagerly and from inside a compile, and leaves nothing
    behind: the next call works, KeyboardInterrupt included;
(b) many threads on shared and distinct functions: right answers, no deadlock, a consistent
    cache;
(c) the cache never keeps a function (or what it closes over) alive, and stays bounded;
(d) NaN/inf where torch has them, float32 kept float32 (differential, needs torch).
"""

from __future__ import annotations

import gc
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cases import Case
from oracle import JaxSide, assert_same, outcome
from recorded import torch_outcome

import jaxfunc
import jaxfunc.autograd.functional as AF
import jaxfunc.func as TF
from jaxfunc import _compat
from jaxfunc._jit import _cache

X = jnp.asarray([0.5, 1.0, 1.5])
THIS_FILE = __file__


def cache_slot_count() -> int:
    return len(_cache._slots)


def counter(name: str) -> int:
    return _cache.stats().get(name, 0)


# -- (a) faults ------------------------------------------------------------------------------------


class UserError(Exception):
    """A user-defined exception type: it must come out as itself, not wrapped."""


def _raises_on(pred: Callable[[Any], bool]) -> tuple[Callable[[Any], Any], int]:
    """A function that raises UserError when ``pred(x)``, and the line number of the raise."""

    def f(x: Any) -> Any:
        if pred(x):
            raise UserError(f"bad input of shape {x.shape}")  # the user's line
        return jnp.sum(jnp.sin(x))

    raise_line = f.__code__.co_firstlineno + 2
    return f, raise_line


TRANSFORMS: dict[str, Callable[[Callable[[Any], Any], Any], Any]] = {
    "func.grad": lambda f, x: TF.grad(f)(x),
    "func.grad_and_value": lambda f, x: TF.grad_and_value(f)(x),
    "func.vjp": lambda f, x: TF.vjp(f, x)[1](jnp.ones(())),
    "func.jvp": lambda f, x: TF.jvp(f, (x,), (jnp.ones_like(x),)),
    "func.jacrev": lambda f, x: TF.jacrev(f)(x),
    "func.jacfwd": lambda f, x: TF.jacfwd(f)(x),
    "func.hessian": lambda f, x: TF.hessian(f)(x),
    "func.linearize": lambda f, x: TF.linearize(f, x)[1](jnp.ones_like(x)),
    "func.vmap": lambda f, x: TF.vmap(f)(x[None]),
    "AF.vjp": lambda f, x: AF.vjp(f, x),
    "AF.jvp": lambda f, x: AF.jvp(f, x, jnp.ones_like(x)),
    "AF.jacobian": lambda f, x: AF.jacobian(f, x),
    "AF.hessian": lambda f, x: AF.hessian(f, x),
    "AF.hvp": lambda f, x: AF.hvp(f, x, jnp.ones_like(x)),
}


def _expected(name: str, x: Any) -> Any:
    """The same transform of the same math, through a function that never raised."""
    return TRANSFORMS[name](lambda a: jnp.sum(jnp.sin(a)), x)


def _assert_tree_close(got: Any, want: Any) -> None:
    got_leaves = [g for g in jax.tree_util.tree_leaves(got) if not callable(g)]
    want_leaves = [w for w in jax.tree_util.tree_leaves(want) if not callable(w)]
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)


def _user_frame_in(exc: BaseException, line: int) -> bool:
    return any(
        fr.filename == THIS_FILE and fr.lineno == line
        for fr in traceback.extract_tb(exc.__traceback__)
    )


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_user_exception_propagates_unchanged(name: str, path: str) -> None:
    f, line = _raises_on(lambda x: x.shape == (4,))
    traces = counter("trace")
    with pytest.raises(UserError) as info:
        TRANSFORMS[name](f, jnp.ones(4))
    assert type(info.value) is UserError
    assert str(info.value) == "bad input of shape (4,)"
    assert _user_frame_in(info.value, line), (
        "the user's raising line is not in the traceback:\n"
        + "".join(traceback.format_tb(info.value.__traceback__))
    )
    if path == "compiled" and counter("trace") == traces:
        pytest.fail("the failing call was not traced by the cache's jit")
    # no poisoned entry: the same function still works, and is still compiled (a user's
    # error must not demote it to eager for good)
    want = _expected(name, X)
    hits = counter("hit")
    for _ in range(3):
        _assert_tree_close(TRANSFORMS[name](f, X), want)
    if path == "compiled":
        assert counter("hit") > hits, f"no compiled call after the failure: {_cache.stats()}"
    assert _compat.at_top_level(), "a JAX trace was left active"


def test_failure_then_fix_same_function() -> None:
    """A function that fails while tracing, then stops failing, gives fresh correct results."""
    state = {"fail": True}

    def f(x: Any) -> Any:
        if state["fail"]:
            raise UserError("not yet")
        return jnp.sum(x**2)

    for _ in range(2):
        with pytest.raises(UserError, match="not yet"):
            TF.grad(f)(X)
    state["fail"] = False
    hits = counter("hit")
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(TF.grad(f)(X)), 2 * np.asarray(X))
    assert counter("hit") > hits


def test_failure_inside_vjp_fn_call_keeps_vjp_fn_usable(path: str) -> None:
    out, vjp_fn = TF.vjp(lambda a: jnp.sin(a), X)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        vjp_fn(jnp.ones(2))
    (g,) = vjp_fn(jnp.ones(3))
    np.testing.assert_allclose(np.asarray(g), np.cos(np.asarray(X)))


def test_exception_inside_no_grad_restores_grad_mode(path: str) -> None:
    def f(a: Any) -> Any:
        with jaxfunc.no_grad():
            raise UserError("inside no_grad")

    with pytest.raises(UserError):
        TF.grad(f)(X)

    def g(a: Any) -> Any:  # a^2 - nograd(a^2): gradient 2a if no_grad still works ...
        with jaxfunc.no_grad():
            c = a**2
        return jnp.sum(a**2 - c)

    np.testing.assert_allclose(np.asarray(TF.grad(g)(X)), 2 * np.asarray(X))
    # ... and no_grad is not stuck on: a plain gradient is not zeroed
    np.testing.assert_allclose(np.asarray(TF.grad(lambda a: jnp.sum(a**2))(X)), 2 * np.asarray(X))


def _in_threads(work: Callable[[int], Any], n: int, timeout: float) -> list[Any]:
    """``work(i)`` in ``n`` daemon threads started together; fails (instead of hanging) when
    any is still running after ``timeout`` seconds, e.g. on a lock left held or a deadlock."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = sum(t.is_alive() for t in threads)
    assert not stuck, (
        f"{stuck} of {n} threads still running after {timeout}s: deadlock or lock left held"
    )
    if errors:
        raise errors[0]
    return results


def _call_in_thread(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``fn`` in another thread: a lock left held by this thread would time out there."""
    return _in_threads(lambda i: fn(), 1, timeout)[0]


def test_keyboard_interrupt_leaves_jaxfunc_usable() -> None:
    state = {"interrupt": True}

    def f(x: Any) -> Any:
        if state["interrupt"]:
            raise KeyboardInterrupt
        return jnp.sum(jnp.sin(x))

    traces = counter("trace")
    with pytest.raises(KeyboardInterrupt):
        TF.grad(f)(X)
    with pytest.raises(KeyboardInterrupt):
        AF.hessian(f, X)
    assert counter("trace") > traces, "the interrupt did not happen during a compile"
    assert _compat.at_top_level(), "a JAX trace was left active"
    state["interrupt"] = False
    want = np.cos(np.asarray(X))
    np.testing.assert_allclose(np.asarray(TF.grad(f)(X)), want)
    np.testing.assert_allclose(np.asarray(TF.grad(f)(X)), want)
    np.testing.assert_allclose(np.asarray(AF.hessian(f, X)), np.diag(-np.sin(np.asarray(X))))
    # the cache lock is free for other threads, and other functions work there
    got = _call_in_thread(lambda: TF.grad(f)(X))
    np.testing.assert_allclose(np.asarray(got), want)
    got = _call_in_thread(lambda: TF.grad(lambda a: jnp.sum(a**3))(X))
    np.testing.assert_allclose(np.asarray(got), 3 * np.asarray(X) ** 2)
    assert jax.jit(lambda a: a * 2)(X).shape == (3,)


# -- (b) threads -----------------------------------------------------------------------------------

N_THREADS = 8


def _run_threads(work: Callable[[int], Any], timeout: float = 120.0) -> list[Any]:
    return _in_threads(work, N_THREADS, timeout)


W = jnp.asarray([1.0, -2.0, 3.0])


def shared_loss(x: Any) -> Any:
    return jnp.sum(jnp.sin(W * x) ** 2)


def _shared_grad_np(x: np.ndarray) -> np.ndarray:
    w = np.asarray(W)
    return 2 * np.sin(w * x) * np.cos(w * x) * w


def test_threads_shared_function() -> None:
    _cache.clear_cache(shared_loss)

    def work(i: int) -> int:
        for k in range(6):
            x = jnp.asarray([0.1 * i, 0.2 + 0.01 * k, -0.3])
            np.testing.assert_allclose(
                np.asarray(TF.grad(shared_loss)(x)), _shared_grad_np(np.asarray(x)), rtol=1e-12
            )
            out, vjp_fn = TF.vjp(shared_loss, x)
            np.testing.assert_allclose(
                np.asarray(vjp_fn(jnp.ones(()))[0]), _shared_grad_np(np.asarray(x)), rtol=1e-12
            )
            (g,) = AF.vjp(shared_loss, (x,))[1]
            np.testing.assert_allclose(np.asarray(g), _shared_grad_np(np.asarray(x)), rtol=1e-12)
        return i

    hits = counter("hit")
    assert _run_threads(work) == list(range(N_THREADS))
    slot = _cache._existing_slot(shared_loss)
    assert slot is not None and 1 <= len(slot.entries) <= _cache.MAX_ENTRIES
    assert len(slot.entries) == 1, "the shared function's state never changed: one guard entry"
    for entry in slot.entries:
        assert len(entry.jits) <= _cache.MAX_STATICS
    assert counter("hit") > hits


def test_threads_distinct_functions() -> None:
    def work(i: int) -> list[weakref.ref]:
        refs = []
        for k in range(4):
            c = jnp.asarray(float(i + 1))
            f = lambda x, c=c, k=k: jnp.sum(c * x**2 + k * x)
            refs.append(weakref.ref(f))
            for _ in range(3):  # eager, then compiled
                np.testing.assert_allclose(
                    np.asarray(TF.grad(f)(X)), 2 * (i + 1) * np.asarray(X) + k
                )
                np.testing.assert_allclose(
                    np.asarray(AF.jacobian(f, X)), 2 * (i + 1) * np.asarray(X) + k
                )
        return refs

    refs = [r for rs in _run_threads(work) for r in rs]
    gc.collect()
    assert not [r for r in refs if r() is not None], "thread-local functions kept alive"


def test_threads_vjp_fn_shared_across_threads() -> None:
    out, vjp_fn = TF.vjp(lambda a: jnp.sin(a) * a, X)

    def work(i: int) -> None:
        for k in range(5):
            ct = jnp.full(3, float(i + k))
            (g,) = vjp_fn(ct)
            x = np.asarray(X)
            np.testing.assert_allclose(
                np.asarray(g), (i + k) * (np.cos(x) * x + np.sin(x)), rtol=1e-12
            )

    _run_threads(work)


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_threads_while_guards_change() -> None:
    """Threads take turns (under a lock) setting a global the shared function reads and
    differentiating it: each sees the value it set, never a stale one; entries stay bounded."""
    lock = threading.Lock()

    def work(i: int) -> None:
        global _SCALE
        for k in range(5):
            with lock:  # one writer at a time: set the scale, compute, check
                _SCALE = float(i * 10 + k)
                got = TF.grad(_scaled)(X)
                np.testing.assert_allclose(np.asarray(got), _SCALE * np.cos(np.asarray(X)))

    _run_threads(work)
    slot = _cache._existing_slot(_scaled)
    assert slot is None or len(slot.entries) <= _cache.MAX_ENTRIES


_SCALE = 1.0


def _scaled(x: Any) -> Any:
    return _SCALE * jnp.sum(jnp.sin(x))


# -- (c) memory ------------------------------------------------------------------------------------


def _collect() -> None:
    for _ in range(3):
        gc.collect()


def _make_functions(n: int, kind: str) -> tuple[list[Callable], list[Any]]:
    """``n`` distinct closures ``x -> sum(c_i * sin(x))`` with ``c_i = i``: jax or numpy ``c_i``
    (``mixed``: alternating)."""
    fns, arrays = [], []
    for i in range(n):
        if kind == "jax" or (kind == "mixed" and i % 2 == 0):
            c = jnp.full(3, float(i))  # hoisted by the guard (passed to the jit as an argument)
        else:
            c = np.full(3, float(i))  # guarded by content and baked into the program
        fns.append(lambda x, c=c: jnp.sum(c * jnp.sin(x)))
        arrays.append(c)
    return fns, arrays


class _Box:
    """A weak-referenceable holder (numpy and jax arrays are not all weak-referenceable)."""

    def __init__(self, value: Any) -> None:
        self.value = value


@pytest.mark.parametrize(("kind", "n", "compiled_calls"), [("mixed", 300, 0), ("mixed", 80, 2)])
@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_dropped_functions_leave_nothing_alive(kind: str, n: int, compiled_calls: int) -> None:
    """Hundreds of distinct closures through the cache: once dropped, all are collected.
    (Closures of one code share a slot, held by the code object, which lives on.)"""
    _collect()
    slots_before = cache_slot_count()
    fns, arrays = _make_functions(n, kind)
    boxes = [_Box(a) for a in arrays]
    # the functions capture boxes too, so anything the cache keeps shows up as a live box
    fns = [
        lambda x, f=f, b=b: f(x) + 0.0 * jnp.sum(jnp.asarray(b.value)) for f, b in zip(fns, boxes)
    ]
    fn_refs = [weakref.ref(f) for f in fns]
    box_refs = [weakref.ref(b) for b in boxes]
    for i, f in enumerate(fns):
        for _ in range(1 + compiled_calls):
            g = TF.grad(f)(X)
        if i % 50 == 0:
            np.testing.assert_allclose(np.asarray(g), i * np.cos(np.asarray(X)))
    assert cache_slot_count() > slots_before, "the functions did not go through the cache"
    del fns, arrays, boxes, f, g
    _collect()
    alive_fns = sum(r() is not None for r in fn_refs)
    alive_boxes = sum(r() is not None for r in box_refs)
    assert alive_fns == 0, f"{alive_fns} of {n} dropped functions are still alive"
    assert alive_boxes == 0, f"{alive_boxes} of {n} closed-over objects are still alive"
    assert cache_slot_count() <= slots_before + 2, "cache slots of dead functions remain"


def test_vjp_fn_does_not_keep_the_function_alive() -> None:
    f = lambda a: jnp.sum(jnp.sin(a))
    ref = weakref.ref(f)
    out, vjp_fn = TF.vjp(f, X)
    out, vjp_fn = TF.vjp(f, X)
    del f
    _collect()
    assert ref() is None, "vjp_fn keeps the user's function alive"
    np.testing.assert_allclose(np.asarray(vjp_fn(jnp.ones(()))[0]), np.cos(np.asarray(X)))


def test_cache_does_not_keep_bound_method_instance_alive() -> None:
    class Model:
        def __init__(self) -> None:
            self.w = jnp.asarray([1.0, 2.0, 3.0])

        def loss(self, x: Any) -> Any:
            return jnp.sum(self.w * x**2)

    m = Model()
    for _ in range(3):
        np.testing.assert_allclose(
            np.asarray(TF.grad(m.loss)(X)), 2 * np.asarray([1.0, 2.0, 3.0]) * np.asarray(X)
        )
    ref = weakref.ref(m)
    del m
    _collect()
    assert ref() is None, "the cache keeps a bound method's instance alive"


def _scalable() -> tuple[Callable[[Any], Any], Callable[[float], None]]:
    """``f(x) = scale * sum(sin x)`` and a setter for its closure cell ``scale``."""
    scale = 0.0

    def f(x: Any) -> Any:
        return scale * jnp.sum(jnp.sin(x))

    def set_scale(v: float) -> None:
        nonlocal scale
        scale = v

    return f, set_scale


@pytest.mark.parametrize("calls_per_state", [1, 5])
@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_entries_per_function_stay_bounded(calls_per_state: int) -> None:
    """A closure cycling through more states than MAX_ENTRIES (a new guard entry each): never
    stale, entries bounded; with one call per state it is eventually left to run eagerly."""
    f, set_scale = _scalable()
    n_states = _cache.MAX_ENTRIES + 4
    max_entries = 0
    for i in range(3 * n_states):
        scale = float(i % n_states)
        set_scale(scale)
        for _ in range(calls_per_state):
            got = TF.grad(f)(X)
            np.testing.assert_allclose(np.asarray(got), scale * np.cos(np.asarray(X)))
        slot = _cache._existing_slot(f)
        if slot is not None:
            max_entries = max(max_entries, len(slot.entries))
    assert 1 <= max_entries <= _cache.MAX_ENTRIES


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_statics_per_entry_stay_bounded() -> None:
    """Many distinct non-array arguments (each a new compile key): the programs kept per entry
    stay bounded, and every result is right."""

    def f(x: Any, k: int) -> Any:
        return jnp.sum(jnp.sin(x)) * k

    for k in range(_cache.MAX_STATICS + 8):
        np.testing.assert_allclose(np.asarray(TF.grad(f)(X, k)), k * np.cos(np.asarray(X)))
    slot = _cache._existing_slot(f)
    assert slot is not None
    for entry in slot.entries:
        assert len(entry.jits) <= _cache.MAX_STATICS


def test_memory_check_would_catch_a_leak() -> None:
    """The liveness assertions above trip when something does keep the functions."""
    keep: list[Any] = []
    fns, arrays = _make_functions(20, "jax")
    boxes = [_Box(a) for a in arrays]
    fns = [
        lambda x, f=f, b=b: f(x) + 0.0 * jnp.sum(jnp.asarray(b.value)) for f, b in zip(fns, boxes)
    ]
    refs = [weakref.ref(f) for f in fns]
    keep.append(fns[3])  # a deliberate leak
    del fns, boxes
    _collect()
    assert sum(r() is not None for r in refs) == 1


# -- (d) numerics (differential) -------------------------------------------------------------------


Z = [0.0, 1.0, 4.0]  # includes the singular point 0
NUMERIC: list[Case] = []


def num(label: str, body: Callable[[Any], Any]) -> None:
    NUMERIC.append(Case("numerics", label, body))


num("grad sqrt at 0 (inf)", lambda s: s.TF.grad(lambda a: s.sum(s.sqrt(a)))(s.t(Z)))
num("grad log at 0 (inf)", lambda s: s.TF.grad_and_value(lambda a: s.sum(s.log(a)))(s.t(Z)))
num("grad -log at 0 (-inf)", lambda s: s.TF.grad(lambda a: -s.sum(s.log(a)))(s.t(Z)))
num("grad 0/0 (nan)", lambda s: s.TF.grad(lambda a: s.sum(a / a))(s.t(Z)))
num("grad x log x at 0 (nan)", lambda s: s.TF.grad(lambda a: s.sum(a * s.log(a)))(s.t(Z)))
num(
    "grad where(x>0, sqrt x, 0) (nan)",
    lambda s: s.TF.grad(lambda a: s.sum(s.where(a > 0, s.sqrt(a), s.zeros(3))))(s.t(Z)),
)
num("func.vjp sqrt at 0", lambda s: s.TF.vjp(s.sqrt, s.t(Z))[1](s.t([1.0, -1.0, 2.0])))
num("func.vjp sqrt at 0, zero cotangent", lambda s: s.TF.vjp(s.sqrt, s.t(Z))[1](s.zeros(3)))
num("func.jvp log at 0", lambda s: s.TF.jvp(s.log, (s.t(Z),), (s.t([1.0, 1.0, -1.0]),)))
num("func.jvp 0/0", lambda s: s.TF.jvp(lambda a: a / a, (s.t(Z),), (s.ones(3),)))
num("func.jacrev sqrt at 0", lambda s: s.TF.jacrev(s.sqrt)(s.t(Z)))
num("func.jacfwd log at 0", lambda s: s.TF.jacfwd(s.log)(s.t(Z)))
num("func.hessian sqrt at 0", lambda s: s.TF.hessian(lambda a: s.sum(s.sqrt(a)))(s.t(Z)))
num("AF.vjp log at 0", lambda s: s.AF.vjp(s.log, s.t(Z), s.ones(3)))
num("AF.jvp sqrt at 0", lambda s: s.AF.jvp(s.sqrt, s.t(Z), s.ones(3)))
num("AF.jacobian 0/0", lambda s: s.AF.jacobian(lambda a: a / a, s.t(Z)))
num(
    "AF.jacobian sqrt forward-mode",
    lambda s: s.AF.jacobian(s.sqrt, s.t(Z), vectorize=True, strategy="forward-mode"),
)
num("AF.hessian log at 0", lambda s: s.AF.hessian(lambda a: s.sum(s.log(a)), s.t(Z)))
num("AF.hvp sqrt at 0", lambda s: s.AF.hvp(lambda a: s.sum(s.sqrt(a)), s.t(Z), s.ones(3)))
num("AF.vhp x log x", lambda s: s.AF.vhp(lambda a: s.sum(a * s.log(a)), s.t(Z), s.ones(3)))
num("inf input", lambda s: s.TF.grad(lambda a: s.sum(s.exp(-a)))(s.t([float("inf"), 0.0, -1.0])))
num("nan input", lambda s: s.AF.vjp(lambda a: a * 2, s.t([float("nan"), 1.0]), s.ones(2)))
num("overflow exp", lambda s: s.TF.jvp(s.exp, (s.t([1000.0, 0.0]),), (s.ones(2),)))
num(
    "float32 mixed ops",
    lambda s: s.TF.grad(lambda a: s.sum(s.tanh(a) * s.exp(a) / (1 + a * a)))(s.t([0.3, -1.2, 2.5])),
)
num(
    "float32 matmul vjp",
    lambda s: s.TF.vjp(lambda m: s.matmul(m, m), s.t([[0.1, 0.2], [0.3, 0.4]]))[1](s.ones(2, 2)),
)
num("float32 jacobian", lambda s: s.AF.jacobian(lambda a: s.sin(a) * a, s.t([0.3, 0.7])))
num("float32 hessian", lambda s: s.AF.hessian(lambda a: s.sum(s.sin(a) ** 2), s.t([0.3, 0.7])))
num(
    "float32 jvp, float32 tangent",
    lambda s: s.TF.jvp(s.exp, (s.t([0.5, 1.5]),), (s.t([1.0, 2.0]),)),
)
num("float32 vmap(grad)", lambda s: s.TF.vmap(s.TF.grad(lambda a: s.sum(s.sin(a))))(s.ones(2, 3)))


def _arrays(plain: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(plain, tuple) and plain and plain[0] == "array":
        return [(plain[1], plain[3])]
    if isinstance(plain, tuple) and plain and plain[0] in ("tuple", "list"):
        return [a for p in plain[1] for a in _arrays(p)]
    if isinstance(plain, tuple) and plain and plain[0] == "dict":
        return [a for _, p in plain[1] for a in _arrays(p)]
    return []


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", NUMERIC, ids=[c.id for c in NUMERIC])
def test_numerics(case: Case, dtype: str, path: str) -> None:
    want = torch_outcome("numerics", case, dtype)
    got = outcome(case.body, JaxSide(dtype))
    tol = {"float64": (1e-12, 1e-12), "float32": (2e-6, 1e-6)}[dtype]
    assert_same(got, want, rtol=tol[0], atol=tol[1])  # NaN/inf positions and signs included
    arrays = _arrays(got)
    assert arrays, f"no arrays in {got}"
    assert all(dt == dtype for dt, _ in arrays), (
        f"dtypes {[dt for dt, _ in arrays]} for {dtype} inputs"
    )


def test_numerics_cases_have_nonfinite_values() -> None:
    """The NaN/inf cases really produce NaN/inf (else they would test nothing special)."""
    labels = [c for c in NUMERIC if "at 0" in c.label or "0/0" in c.label or "(nan)" in c.label]
    for c in labels:
        plain = torch_outcome("numerics", c)
        assert any(not np.all(np.isfinite(a)) for _, a in _arrays(plain)), c.label


def test_numerics_assertion_catches_misplaced_nan() -> None:
    """assert_same tells NaN from inf and from a finite value, position by position."""
    sqrt_at_0 = next(c for c in NUMERIC if c.label == "grad sqrt at 0 (inf)")
    want = torch_outcome("numerics", sqrt_at_0)
    wrong = ("array", want[1], want[2], np.where(np.isinf(want[3]), np.nan, want[3]))
    with pytest.raises(AssertionError):
        assert_same(wrong, want)
    wrong = ("array", want[1], want[2], np.where(np.isinf(want[3]), -np.inf, want[3]))
    with pytest.raises(AssertionError):
        assert_same(wrong, want)
