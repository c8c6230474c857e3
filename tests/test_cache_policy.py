"""The compile cache's policy: what it keys on, what it keeps, what it tells.

- a plain function is keyed on its code: closures made afresh at each call (the NTK
  tutorial's ``def f1(p): ...`` inside ``get_ntk``) share one compiled program;
- nothing per compiled program outlives its entry (``func.vjp``'s backward, programs of
  transforms of a ``vjp_fn``), so dropped functions give their memory back;
- ``jaxfunc.cache_info()`` counts hits, compiles and eager runs, per function with the
  reasons; every give-up is said once, as a warning.
"""

from __future__ import annotations

import gc
import resource
import threading
import time
import warnings

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc
import jaxfunc.autograd.functional as AF
import jaxfunc.func as TF
from jaxfunc._jit import _cache

X = jnp.asarray([0.3, -0.7, 1.1])


@pytest.fixture(autouse=True)
def _cold_cache():
    _cache.clear_cache()


def traces() -> int:
    return _cache.stats().get("trace", 0)


# -- keyed on what a function is ------------------------------------------------------------


def get_ntk(params, x1, x2):
    """The NTK tutorial's shape: the differentiated functions are made at each call."""

    def f1(p):
        return jnp.tanh(x1 @ p["w"]) @ p["v"]

    def f2(p):
        return jnp.tanh(x2 @ p["w"]) @ p["v"]

    j1 = TF.jacrev(f1)(params)
    j2 = TF.jacrev(f2)(params)
    return sum(
        jnp.einsum("af,bf->ab", a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))
        for a, b in zip(jax.tree_util.tree_leaves(j1), jax.tree_util.tree_leaves(j2))
    )


def test_closures_made_per_call_share_one_compiled_program():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(4, 8))), "v": jnp.asarray(rng.normal(size=8))}
    batches = [jnp.asarray(rng.normal(size=(5, 4))) for _ in range(4)]
    get_ntk(params, batches[0], batches[1])
    before = traces()
    for k in range(1, 4):
        ntk = get_ntk(params, batches[k], batches[k - 1])
        want = jnp.einsum(
            "af,bf->ab",
            jax.jacrev(lambda p: jnp.tanh(batches[k] @ p["w"]) @ p["v"])(params)["w"].reshape(
                5, -1
            ),
            jax.jacrev(lambda p: jnp.tanh(batches[k - 1] @ p["w"]) @ p["v"])(params)["w"].reshape(
                5, -1
            ),
        ) + jnp.einsum(
            "af,bf->ab",
            jax.jacrev(lambda p: jnp.tanh(batches[k] @ p["w"]) @ p["v"])(params)["v"],
            jax.jacrev(lambda p: jnp.tanh(batches[k - 1] @ p["w"]) @ p["v"])(params)["v"],
        )
        np.testing.assert_allclose(ntk, want, rtol=1e-10)
    assert traces() == before, "a closure made per call was compiled again"


def test_closures_of_one_code_with_different_values_are_told_apart():
    def make(scale):
        return lambda x: jnp.sum(x) * scale

    for scale in (1.0, 2.0, 3.0, 2.0):
        g = make(scale)
        for _ in range(2):
            np.testing.assert_allclose(TF.grad(g)(X), scale * np.ones(3))


# -- nothing kept per compiled program beyond its entry -----------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _new_function(i: int):
    """A function with its own code object (each is a new cache slot and a new compile)."""
    ns: dict = {"jnp": jnp}
    exec(f"def f(x):\n    return jnp.sin(x) * {i + 1}.0 + x ** 2\n", ns)
    return ns["f"]


def _use(f) -> None:
    out, vjp_fn = TF.vjp(f, X)
    vjp_fn(jnp.ones(3))
    TF.vmap(vjp_fn)(jnp.ones((2, 3)))


def test_dropped_functions_give_their_memory_back():
    """func.vjp + vjp_fn (its compiled backward) and vmap of the vjp_fn, for functions with
    their own code, dropped as they go. Each kept ~4.5 MB (compiled backward and programs
    pinned by JAX's caches through the result's structure); now what stays is JAX's own
    per-jit bookkeeping (~0.2 MB a function, raw ``jax.jit`` ~0.06 MB). These functions are
    in reference cycles (``f.__globals__["f"] is f``): the cycle collector frees them, and
    the programs the cache holds for them, whenever it runs, so RSS would measure its timing
    (the rest of the suite changes it); it is run every 10 functions here."""
    for i in range(40):  # warm up JAX's own caches and the allocator
        _use(_new_function(i))
    gc.collect()
    before = _rss_mb()
    for i in range(40, 190):
        _use(_new_function(i))
        if i % 10 == 0:
            gc.collect()
    gc.collect()
    grown = _rss_mb() - before
    assert grown < 20, f"RSS grew by {grown:.1f} MB over 150 dropped functions"


# -- a trace is kept only if what it read stayed put ------------------------------------------

SCALE = 1.0
STARTED, RESUME = threading.Event(), threading.Event()
SIGNALS = ("STA" + "RTED", "RES" + "UME")


@pytest.mark.parametrize("when", ["first compile", "retrace at a new shape"])
def test_state_changed_by_another_thread_while_compiling_is_never_baked_in(when):
    """Another thread changes a global the function reads while its program is traced
    (after this call's guard check): that program must not be kept under the old state.
    Today's cache baked the new value into a program stored under the old guard: once the
    value was back, every call returned twice the right answer. The trace is either the
    first compile, or ``jax.jit``'s retrace at a new shape of a program that has run (a
    call that starts as a hit)."""
    global SCALE
    x = X if when == "first compile" else jnp.concatenate([X, X])
    STARTED.clear()
    RESUME.clear()

    def f(x):
        # The signals are reached dynamically (no guard may see them: they are not state).
        started, resume = (globals()[n] for n in SIGNALS)
        if jax_under_jit() and x.shape == shape and not started.is_set():  # the trace
            started.set()
            resume.wait(10)  # another thread changes SCALE now
        return jnp.sum(jnp.sin(x) * SCALE)

    def other() -> None:
        global SCALE
        STARTED.wait(10)
        SCALE = 2.0
        RESUME.set()

    shape = x.shape
    if when != "first compile":
        for _ in range(3):  # compiled, and run: the next call is a hit until jit retraces
            AF.vjp(f, X)
    thread = threading.Thread(target=other)
    thread.start()
    try:
        first = [AF.vjp(f, x)[1] for _ in range(2)]
        thread.join()
        assert STARTED.is_set()  # (the trace did wait for the change)
        SCALE = 1.0
        for _ in range(3):
            np.testing.assert_allclose(AF.vjp(f, x)[1], np.cos(np.asarray(x)), rtol=1e-12)
        for g in first:  # each call saw one consistent state
            assert np.allclose(g, np.cos(np.asarray(x))) or np.allclose(
                g, 2 * np.cos(np.asarray(x))
            )
    finally:
        RESUME.set()
        thread.join()
        SCALE = 1.0


@pytest.mark.parametrize("when", ["first compile", "retrace at a new shape"])
def test_state_changed_between_the_check_and_the_trace_is_not_kept(monkeypatch, when):
    """The narrow window of the race above: the state changes after the call's guard check
    and before its trace takes the snapshot it reads (here, the change is made as the
    snapshot is taken). The trace then reads the new state: this call's result, not a
    program to keep under the entry's old state. At a retrace of a program that has run,
    the call starts as a hit and is made again where its trace can be watched."""
    global SCALE
    from jaxfunc._jit import _guard

    x = X if when == "first compile" else jnp.concatenate([X, X])

    def f(x):
        return jnp.sum(jnp.sin(x) * SCALE)

    if when != "first compile":
        for _ in range(3):  # compiled, and run: the next call is a hit until jit retraces
            AF.vjp(f, X)
    snapshot = _guard.Plan.snapshot
    armed = [True]

    def changed_first(self, root):
        global SCALE
        if armed[0]:
            armed[0] = False
            SCALE = 2.0  # (as if another thread had changed it just now)
        return snapshot(self, root)

    monkeypatch.setattr(_guard.Plan, "snapshot", changed_first)
    try:
        np.testing.assert_allclose(AF.vjp(f, x)[1], 2 * np.cos(np.asarray(x)), rtol=1e-12)
        assert not armed[0]  # (the trace did happen)
        SCALE = 1.0
        for _ in range(3):
            np.testing.assert_allclose(AF.vjp(f, x)[1], np.cos(np.asarray(x)), rtol=1e-12)
    finally:
        SCALE = 1.0


def jax_under_jit() -> bool:
    return jax.extend.core.unsafe_am_i_under_a_jit_DO_NOT_USE()


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_many_threads_flipping_state_leave_no_wrong_program():
    """A stress version: a global flipped continually while the function compiles over and
    over; once it stops, calls are right."""
    global SCALE

    def f(x):
        return jnp.sum(jnp.sin(x) * SCALE)

    stop = threading.Event()

    def flipper() -> None:
        global SCALE
        while not stop.is_set():
            SCALE = 2.0
            time.sleep(0.0002)
            SCALE = 1.0
            time.sleep(0.0002)

    thread = threading.Thread(target=flipper)
    thread.start()
    try:
        deadline = time.monotonic() + 2.0
        k = 0
        while time.monotonic() < deadline:
            jaxfunc.clear_cache(f)  # compile again and again: the window the race needs
            for _ in range(2):
                AF.vjp(f, X + k)
            k += 1
    finally:
        stop.set()
        thread.join()
        SCALE = 1.0
    for _ in range(3):
        np.testing.assert_allclose(AF.vjp(f, X)[1], np.cos(np.asarray(X)), rtol=1e-12)


# -- saying what it did ---------------------------------------------------------------------


def test_cache_info_counts_hits_compiles_and_eager_runs():
    def f(x):
        return jnp.sum(x**3)

    total = jaxfunc.cache_info()
    for _ in range(3):
        TF.grad(f)(X)
    info = jaxfunc.cache_info(TF.grad(f))  # a transform reports the function it wraps
    assert info["compiles"] == 1 and info["hits"] == 3 and info["eager"] == 0
    assert info["entries"] == 1 and info["reasons"] == []
    after = jaxfunc.cache_info()
    assert after["hits"] - total["hits"] == 3 and after["compiles"] - total["compiles"] == 1

    def g(x):
        if jnp.sum(x) > 0:  # needs a concrete value: runs eagerly
            return jnp.sum(x**2)
        return jnp.sum(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            TF.grad(g)(X)
    info = jaxfunc.cache_info(g)
    assert info["hits"] == 0 and info["eager"] == 3
    assert len(info["reasons"]) == 1 and "concrete" in info["reasons"][0]
