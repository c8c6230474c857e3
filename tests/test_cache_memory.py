"""What the compile cache leaves behind once functions are dropped (issue 11's memory target).

A ``vjp_fn`` from a compiled program is a pytree whose static part (its meta) is part of the
structure of any jit it is passed to, ``vmap(vjp_fn)`` included; JAX's own caches keep such
structures (up to 4096 of them) long after the call. The meta must therefore hold nothing
heavy: the pullback's structure (its linearized program) is owned by the cache entry and by
the ``vjp_fn``s, and goes with them.
"""

from __future__ import annotations

import gc
import weakref

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc.func as TF
from jaxfunc._jit import _cache

X = jnp.asarray([0.3, -0.7, 1.1])


@pytest.fixture(autouse=True)
def _cold_cache():
    _cache.clear_cache()


def _new_function(i: int):
    """A function with its own code object (a new cache slot and a new compile)."""
    ns: dict = {"jnp": jnp}
    exec(f"def f(x):\n    return jnp.sin(x) * {i + 1}.0 + x ** 2\n", ns)
    return ns["f"]


def _vjp_and_vmap_of_vjp_fn(f) -> None:
    vjp_fn = TF.vjp(f, X)[1]
    vjp_fn(jnp.ones(3))
    TF.vmap(vjp_fn)(jnp.ones((2, 3)))


def _live_jaxprs() -> int:
    gc.collect()
    jaxpr = jax.extend.core.Jaxpr  # (type(), not isinstance: no object's __class__ is asked)
    return sum(type(o) is jaxpr for o in gc.get_objects())


def test_dropped_vjp_fns_passed_to_vmap_leave_no_program_behind():
    """Before the meta let go of the pullback, each function left ~10 jaxprs (its linearized
    program, ~60 KB) in JAX's caches, up to 4096 functions' worth."""
    n_warm = _cache.MAX_CODES + 4  # JAX's own caches warm (and the code LRU, were they in it)
    for i in range(n_warm):
        _vjp_and_vmap_of_vjp_fn(_new_function(i))
    before = _live_jaxprs()
    for i in range(n_warm, n_warm + 30):
        _vjp_and_vmap_of_vjp_fn(_new_function(i))
    grown = _live_jaxprs() - before
    assert grown < 30, f"{grown} jaxprs more after 30 dropped functions"


def test_the_check_above_sees_programs_kept_alive():
    """The same count does grow when the ``vjp_fn``s are kept."""
    kept = []
    for i in range(_cache.MAX_CODES + 4):
        kept.append(TF.vjp(_new_function(i), X)[1])
    before = _live_jaxprs()
    for i in range(100, 130):
        kept.append(TF.vjp(_new_function(i), X)[1])
    assert _live_jaxprs() - before >= 30


def _g(x):
    return jnp.sum(jnp.sin(x) * x)


def _vjp_expected(x):
    x = np.asarray(x)
    return np.sin(x) + x * np.cos(x)


def test_a_vjp_fn_outlives_its_function_and_its_cache_entry():
    ns: dict = {"jnp": jnp}
    exec("def f(x):\n    return jnp.sum(jnp.sin(x) * x)\n", ns)
    f = ns.pop("f")
    vjp_fn = TF.vjp(f, X)[1]
    assert _cache.cache_info(f)["compiles"] == 1, "the vjp did not go through the cache"
    del f
    _cache.clear_cache()
    gc.collect()
    ct = jnp.ones(())
    np.testing.assert_allclose(np.asarray(vjp_fn(ct)[0]), _vjp_expected(X), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(TF.vmap(vjp_fn)(jnp.ones(2))[0]), np.stack([_vjp_expected(X)] * 2), rtol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(jax.jit(lambda v, c: v(c))(vjp_fn, ct)[0]), _vjp_expected(X), rtol=1e-6
    )


def test_vjp_fns_of_an_early_trace_work_after_many_retraces(monkeypatch):
    """The entry keeps the pullback of every trace whose result structure it keeps (a
    compiled program called again at an early shape rebuilds that trace's ``vjp_fn``), not
    only the newest ones' objects, as it does for their compiled backwards."""
    monkeypatch.setattr(_cache, "MAX_STATICS", 1)  # (the newest 4 objects kept)
    shapes = [(n,) for n in range(1, 9)]
    for shape in shapes:  # one entry, one program, retraced by jax.jit at each shape
        TF.vjp(_g, jnp.ones(shape))
    assert _cache.cache_info(_g)["compiles"] == len(shapes)
    x = jnp.linspace(0.1, 0.9, 1)  # the first shape again: no trace, rebuilt from the entry
    vjp_fn = TF.vjp(_g, x)[1]
    assert _cache.cache_info(_g)["compiles"] == len(shapes)
    np.testing.assert_allclose(np.asarray(vjp_fn(jnp.ones(()))[0]), _vjp_expected(x), rtol=1e-6)


# -- a function made once takes its compiled programs with it ------------------------------------


def test_a_dropped_function_made_once_frees_its_programs_at_once():
    """A function that nothing can make again (module level, ``exec``) keeps no slot by its
    code: once dropped, its entries and their compiled programs (~1.5 MB each on CPU) go."""
    f = _new_function(0)
    TF.jacrev(f)(X)
    TF.vjp(f, X)[1](jnp.ones(3))
    slot = _cache._existing_slot(f)
    assert slot is not None and slot.counts["trace"] == 2
    entries = [weakref.ref(e) for e in slot.entries]
    del f, slot
    gc.collect()
    assert [e() for e in entries] == [None], "a dropped function's entry is still alive"


def test_functions_made_again_by_running_code_still_share_programs():
    """A ``def`` in a loop that is running (here at the top level of an ``exec``) makes new
    functions of one code: they share one compiled program, as closures made per call do."""
    ns = {"TF": TF, "jnp": jnp, "X": X}
    before = _cache.stats().get("trace", 0)
    exec(
        "for i in range(4):\n    def f(x):\n        return jnp.sum(jnp.sin(x))\n    TF.grad(f)(X)\n",
        ns,
    )
    assert _cache.stats().get("trace", 0) - before == 1
