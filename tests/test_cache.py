"""The guarded compile cache: never stale, no retrace, steps aside under transforms, bounded, weak.

Every staleness scenario first runs the function three times (eager, compile, cached hit,
asserted through the cache's counters), then changes what the function reads, then checks
the next result against the new analytic value. ``test_scenarios_detect_a_blind_cache``
runs the same scenarios with a guard that never looks, and asserts they *do* return the
stale value then: the scenarios really exercise the compiled path.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import functools
import gc
import math
import threading
import types
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc
from jaxfunc import _core
from jaxfunc._jit import _cache, _guard
from jaxfunc.autograd.functional import vjp as af_vjp
from jaxfunc.func import grad, vjp

X = jnp.asarray([0.5, 1.0, 2.0])

# -- module state the scenario functions read ----------------------------------------------------
W = jnp.ones(3)
SCALE = 2.0
NP = np.ones(3)
LST = [1.0, 2.0]
DCT = {"p": 1.0}
T = jnp.asarray(1.0)
MOD = types.ModuleType("usermod")
MOD.K = 2.0


def helper(x):
    return x * 3.0


class Model:
    def __init__(self):
        self.W = jnp.ones(3)
        self.cfg = {"p": 1.0}

    def __call__(self, x):
        return jnp.sum(x * self.W) * self.cfg["p"]

    def loss(self, x):
        return jnp.sum(x**2) * self.cfg["p"]


@pytest.fixture(autouse=True)
def _cold_cache():
    """Each test starts with an empty cache (closures of one code share a slot, so a
    scenario's function would otherwise find the entries an earlier test left)."""
    _cache.clear_cache()


def _grad(f, x=X):
    """The jaxfunc gradient of a scalar function, via autograd.functional.vjp (v=None)."""
    return np.asarray(af_vjp(f, x)[1])


def _warm(f):
    """Run f's gradient three times and check the third call was a compiled hit."""
    hits = _cache.stats().get("hit", 0)
    for _ in range(3):
        out = _grad(f)
    assert _cache.stats().get("hit", 0) > hits, "the cached path was not exercised"
    return out


# Each scenario: (make the function, change the world, expected gradient after, undo).


def _global_array():
    global W

    def f(x):
        return jnp.sum(x * W)

    def change():
        global W
        W = 2 * jnp.ones(3)

    def undo():
        global W
        W = jnp.ones(3)

    return f, change, lambda: 2 * np.ones(3), undo


def _global_scalar():
    def f(x):
        return jnp.sum(x) * SCALE

    def change():
        global SCALE
        SCALE = 5.0

    def undo():
        global SCALE
        SCALE = 2.0

    return f, change, lambda: 5 * np.ones(3), undo


def _helper_redefined():
    def f(x):
        return jnp.sum(helper(x))

    def change():
        global helper

        def helper(x):
            return x * 7.0

    def undo():
        global helper

        def helper(x):
            return x * 3.0

    return f, change, lambda: 7 * np.ones(3), undo


def _numpy_mutated():
    def f(x):
        return jnp.sum(x * NP)

    def change():
        NP[1] = 4.0

    def undo():
        NP[:] = 1.0

    return f, change, lambda: np.array([1.0, 4.0, 1.0]), undo


def _list_mutated():
    def f(x):
        return jnp.sum(x) * LST[1]

    def change():
        LST[1] = 9.0

    def undo():
        LST[1] = 2.0

    return f, change, lambda: 9 * np.ones(3), undo


def _dict_mutated():
    def f(x):
        return jnp.sum(x) * DCT["p"]

    def change():
        DCT["p"] = 6.0

    def undo():
        DCT["p"] = 1.0

    return f, change, lambda: 6 * np.ones(3), undo


def _module_attribute():
    def f(x):
        return jnp.sum(x) * MOD.K

    def change():
        MOD.K = 8.0

    def undo():
        MOD.K = 2.0

    return f, change, lambda: 8 * np.ones(3), undo


def _defaults():
    def f(x, k=2.0):
        return jnp.sum(x) * k

    def change():
        f.__defaults__ = (3.0,)

    return f, change, lambda: 3 * np.ones(3), lambda: None


def _closure_cell():
    k = 2.0

    def f(x):
        return jnp.sum(x) * k

    def change():
        nonlocal k
        k = 4.0

    return f, change, lambda: 4 * np.ones(3), lambda: None


def _closure_array():
    a = jnp.ones(3)

    def f(x):
        return jnp.sum(x * a)

    def change():
        nonlocal a
        a = jnp.asarray([1.0, 2.0, 3.0])

    return f, change, lambda: np.array([1.0, 2.0, 3.0]), lambda: None


def _control_flow_global():
    def f(x):
        if float(T) > 0:  # the value of a global array steers Python
            return jnp.sum(x**2)
        return jnp.sum(-x)

    def change():
        global T
        T = jnp.asarray(-1.0)

    def undo():
        global T
        T = jnp.asarray(1.0)

    return f, change, lambda: -np.ones(3), undo


def _object_attribute():
    model = Model()

    def change():
        model.W = 3 * jnp.ones(3)

    return model, change, lambda: 3 * np.ones(3), lambda: None


def _object_dict_item():
    model = Model()

    def change():
        model.cfg["p"] = 5.0

    return model, change, lambda: 5 * np.ones(3), lambda: None


def _class_method_redefined():
    class Local:
        def __call__(self, x):
            return jnp.sum(x) * 2.0

    obj = Local()

    def change():
        def call(self, x):
            return jnp.sum(x) * 10.0

        Local.__call__ = call

    return obj, change, lambda: 10 * np.ones(3), lambda: None


def _bound_method_state():
    model = Model()

    def change():
        model.cfg["p"] = 3.0

    return model.loss, change, lambda: 3 * 2 * np.asarray(X), lambda: None


class Scaled:
    factor = 2.0  # a class attribute, read through the instance

    def __init__(self):
        self.inner = types.SimpleNamespace(offset=1.0)  # a nested object

    def __call__(self, x):
        return jnp.sum(x) * self.factor + jnp.sum(x) * self.inner.offset


def _class_attribute():
    obj = Scaled()

    def change():
        Scaled.factor = 5.0

    def undo():
        Scaled.factor = 2.0

    return obj, change, lambda: 6 * np.ones(3), undo


def _nested_attribute():
    obj = Scaled()

    def change():
        obj.inner.offset = 4.0

    return obj, change, lambda: 6 * np.ones(3), lambda: None


class Net:  # the nn.Module pattern: __call__ delegates to a method reading self's state
    def __init__(self):
        self.w = 2.0

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        return jnp.sum(x) * self.w


def _module_pattern():
    net = Net()

    def change():
        net.w = 5.0

    return net, change, lambda: 5 * np.ones(3), lambda: None


LAYERS = [types.SimpleNamespace(w=2.0)]


def _object_in_global_list():
    def f(x):
        return jnp.sum(x) * LAYERS[0].w

    def change():
        LAYERS[0].w = 3.0

    def undo():
        LAYERS[0].w = 2.0

    return f, change, lambda: 3 * np.ones(3), undo


def _object_as_default():
    holder = types.SimpleNamespace(k=2.0)

    def f(x, m=holder):
        return jnp.sum(x) * m.k

    def change():
        holder.k = 7.0

    return f, change, lambda: 7 * np.ones(3), lambda: None


class WithProperty:
    def __init__(self):
        self._scale = 2.0

    @property
    def scale(self):
        return self._scale

    def __call__(self, x):
        return jnp.sum(x) * self.scale


def _property_state():
    obj = WithProperty()

    def change():
        obj._scale = 4.0

    return obj, change, lambda: 4 * np.ones(3), lambda: None


class Base:
    k = 2.0


class Derived(Base):
    def __call__(self, x):
        return jnp.sum(x) * self.k


def _inherited_class_attribute():
    obj = Derived()

    def change():
        Base.k = 9.0

    def undo():
        Base.k = 2.0

    return obj, change, lambda: 9 * np.ones(3), undo


class Slotted:
    __slots__ = ("__weakref__", "k")  # no __dict__: the state lives in slots

    def __init__(self):
        self.k = 2.0

    def __call__(self, x):
        return jnp.sum(x) * self.k


@dataclasses.dataclass(slots=True)
class SlottedUnweakable:  # cannot be held weakly: the cache runs it uncompiled
    k: float = 2.0

    def __call__(self, x):
        return jnp.sum(x) * self.k


def _slots_dataclass():
    obj = Slotted()

    def change():
        obj.k = 6.0

    return obj, change, lambda: 6 * np.ones(3), lambda: None


DEEP = types.SimpleNamespace(
    a=types.SimpleNamespace(b=types.SimpleNamespace(c=types.SimpleNamespace(d=2.0)))
)


def _four_levels_deep():
    def f(x):
        return jnp.sum(x) * DEEP.a.b.c.d

    def change():
        DEEP.a.b.c.d = 3.0

    def undo():
        DEEP.a.b.c.d = 2.0

    return f, change, lambda: 3 * np.ones(3), undo


def _partial_of_object():
    cfg = types.SimpleNamespace(k=2.0)

    def base(c, x):
        return jnp.sum(x) * c.k

    def change():
        cfg.k = 4.0

    return functools.partial(base, cfg), change, lambda: 4 * np.ones(3), lambda: None


class WithStatic:
    @staticmethod
    def k():
        return 2.0

    def __call__(self, x):
        return jnp.sum(x) * self.k()


def _staticmethod_replaced():
    obj = WithStatic()

    def change():
        WithStatic.k = staticmethod(lambda: 8.0)

    def undo():
        WithStatic.k = staticmethod(lambda: 2.0)

    return obj, change, lambda: 8 * np.ones(3), undo


S_CUSTOM = 2.0


@jax.custom_jvp
def _cj(x):
    return x * S_CUSTOM


@_cj.defjvp
def _cj_jvp(primals, tangents):
    return _cj(primals[0]), tangents[0] * S_CUSTOM


def _custom_jvp_helper():
    def f(x):
        return jnp.sum(_cj(x))

    def change():
        global S_CUSTOM
        S_CUSTOM = 5.0

    def undo():
        global S_CUSTOM
        S_CUSTOM = 2.0

    return f, change, lambda: 5 * np.ones(3), undo


S_NOGRAD = 2.0


@jaxfunc.no_grad
def _constant_offset(x):
    return x * S_NOGRAD


def _bare_no_grad_helper():
    def f(x):
        return jnp.sum(x * S_NOGRAD + _constant_offset(x))

    def change():
        global S_NOGRAD
        S_NOGRAD = 3.0

    def undo():
        global S_NOGRAD
        S_NOGRAD = 2.0

    return f, change, lambda: 3 * np.ones(3), undo


ODICT = collections.OrderedDict(p=2.0)
DDICT = collections.defaultdict(float, p=2.0)
TKEYS = {("a", 1): 2.0}
FLAGS = {"scale"}


def _container_kinds():
    def f(x):
        return (
            jnp.sum(x)
            * ODICT["p"]
            * DDICT["p"]
            * TKEYS[("a", 1)]
            * (2.0 if "scale" in FLAGS else 1.0)
        )

    def change():
        ODICT["p"] = 3.0
        DDICT["p"] = 5.0
        TKEYS[("a", 1)] = 7.0
        FLAGS.clear()

    def undo():
        ODICT["p"], DDICT["p"], TKEYS[("a", 1)] = 2.0, 2.0, 2.0
        FLAGS.add("scale")

    return f, change, lambda: 105 * np.ones(3), undo


ZERO = 0.0


def _negative_zero():
    def f(x):
        return jnp.sum(x) * math.copysign(2.0, ZERO)

    def change():
        global ZERO
        ZERO = -0.0

    def undo():
        global ZERO
        ZERO = 0.0

    return f, change, lambda: -2 * np.ones(3), undo


def _builtin_patched():
    def f(x):
        return jnp.sum(x) * abs(-2.0)

    original = builtins.abs

    def change():
        builtins.abs = lambda v: 3.0

    def undo():
        builtins.abs = original

    return f, change, lambda: 3 * np.ones(3), undo


SCENARIOS = {
    "global jax array reassigned": _global_array,
    "global scalar reassigned": _global_scalar,
    "helper function redefined": _helper_redefined,
    "numpy array mutated in place": _numpy_mutated,
    "list element mutated": _list_mutated,
    "dict value mutated": _dict_mutated,
    "module attribute reassigned": _module_attribute,
    "__defaults__ reassigned": _defaults,
    "closure cell reassigned": _closure_cell,
    "closed-over array reassigned": _closure_array,
    "global steering Python control flow": _control_flow_global,
    "callable object's array attribute": _object_attribute,
    "callable object's dict item": _object_dict_item,
    "class __call__ redefined": _class_method_redefined,
    "bound method's instance state": _bound_method_state,
    "class attribute read through self": _class_attribute,
    "nested object attribute": _nested_attribute,
    "nn.Module pattern: a method reads self's state": _module_pattern,
    "attribute of an object in a global list": _object_in_global_list,
    "object used as a default": _object_as_default,
    "state read by a property": _property_state,
    "class attribute inherited from a base class": _inherited_class_attribute,
    "object with __slots__": _slots_dataclass,
    "attribute four levels deep": _four_levels_deep,
    "functools.partial over an object": _partial_of_object,
    "staticmethod replaced on the class": _staticmethod_replaced,
    "custom_jvp helper's global": _custom_jvp_helper,
    "bare @no_grad helper's global": _bare_no_grad_helper,
    "OrderedDict, defaultdict, tuple-keyed dict, set": _container_kinds,
    "-0.0 is not 0.0": _negative_zero,
    "a builtin patched": _builtin_patched,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_never_stale(name):
    f, change, expected, undo = SCENARIOS[name]()
    try:
        _warm(f)
        change()
        np.testing.assert_allclose(_grad(f), expected())
        np.testing.assert_allclose(_grad(f), expected())  # and again, now from the cache
    finally:
        undo()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_detect_a_blind_cache(name, monkeypatch):
    """With a guard that checks nothing (and hoists nothing), each scenario goes stale."""
    real_build = _guard.build

    def blind_build(root, hoist=True):
        plan = real_build(root, hoist=False)
        plan.guard = lambda r: ()
        return plan

    monkeypatch.setattr(_guard, "build", blind_build)
    f, change, expected, undo = SCENARIOS[name]()
    try:
        before = _warm(f)
        change()
        stale = _grad(f)
        np.testing.assert_allclose(stale, before)
        assert not np.allclose(stale, expected())
    finally:
        undo()


def test_global_array_reassignment_does_not_recompile():
    global W
    f, change, expected, undo = _global_array()
    try:
        _warm(f)
        traces = _cache.stats().get("trace", 0)
        for k in range(5):
            W = (k + 2) * jnp.ones(3)
            np.testing.assert_allclose(_grad(f), (k + 2) * np.ones(3))
        assert _cache.stats().get("trace", 0) == traces
    finally:
        undo()


def test_no_retrace_for_same_shapes():
    def f(x):
        return jnp.sum(jnp.sin(x) ** 2)

    _warm(f)
    traces = _cache.stats().get("trace", 0)
    for k in range(10):
        _grad(f, X + k)
    assert _cache.stats().get("trace", 0) == traces


def test_func_vjp_compiled_and_vjp_fn_reused():
    def f(x):
        return jnp.sin(x) * 2

    for _ in range(3):
        out, vjp_fn = vjp(f, X)
    assert vjp_fn._meta.compiled
    traces = _cache.stats().get("trace", 0)
    for k in range(5):
        out, vjp_fn = vjp(f, X + k)
        np.testing.assert_allclose(vjp_fn(jnp.ones(3))[0], 2 * np.cos(np.asarray(X) + k), rtol=1e-6)
    assert _cache.stats().get("trace", 0) == traces


def test_compiled_programs_do_not_copy_their_inputs():
    """Residuals that are inputs stay the caller's arrays: a compiled forward returning
    them would copy each (a full extra pass over memory at N=1e6)."""

    def f(x, y):
        return x**2 * jnp.sin(y)

    def g(a, b):
        return a * b

    def identity(a):
        return a

    y = X + 1
    for _ in range(3):
        out, vjp_fn = vjp(f, X, y)
        _, jvp_fn = jaxfunc.func.linearize(g, X, y)
        same = vjp(identity, X)[0]
    assert type(vjp_fn) is _core.VjpFn and vjp_fn._meta.compiled
    assert same is X  # an identity output too
    lin_leaves = jax.tree_util.tree_leaves(jvp_fn)
    assert any(leaf is X for leaf in lin_leaves) and any(leaf is y for leaf in lin_leaves)
    np.testing.assert_allclose(jvp_fn(jnp.ones(3), jnp.ones(3)), X + y)
    leaves = jax.tree_util.tree_leaves(vjp_fn)
    assert any(leaf is X for leaf in leaves) and any(leaf is y for leaf in leaves)
    gx, gy = vjp_fn(jnp.ones(3))
    np.testing.assert_allclose(gx, 2 * X * jnp.sin(y), rtol=1e-6)
    np.testing.assert_allclose(gy, X**2 * jnp.cos(y), rtol=1e-6)
    # the bound vjp_fn crosses jit and vmap as before
    np.testing.assert_allclose(jax.jit(lambda fn, v: fn(v))(vjp_fn, jnp.ones(3))[0], gx)
    np.testing.assert_allclose(jaxfunc.func.vmap(vjp_fn)(jnp.eye(3))[0], jnp.diag(gx))


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # tested in test_warnings
def test_untraceable_function_falls_back_once():
    def f(x):
        if jnp.sum(x) > 0:  # Python control flow on a value: cannot be traced abstractly
            return jnp.sum(x**2)
        return jnp.sum(x)

    results = [_grad(f) for _ in range(4)]
    for r in results:
        np.testing.assert_allclose(r, 2 * np.asarray(X))
    np.testing.assert_allclose(_grad(f, -X), np.ones(3))
    assert _cache._existing_slot(f).entries[0].eager_only
    fallbacks = _cache.stats().get("fallback", 0)
    _grad(f)
    assert _cache.stats().get("fallback", 0) == fallbacks  # decided once, not per call


def test_state_mutated_by_the_function_itself_is_never_cached_stale():
    calls = []

    def f(x):
        calls.append(1)  # the function changes what it reads: every call sees new state
        return jnp.sum(x) * len(calls)

    for k in range(1, 5):
        np.testing.assert_allclose(_grad(f), k * np.ones(3))


COUNT = 0


def test_a_function_assigning_outside_its_call_runs_at_every_call_and_says_why():
    """``global COUNT; COUNT += 1`` (or ``nonlocal``) inside a transformed function runs at
    every call in torch. A compiled program would run it once, when traced (on the trace's
    copy of the state: before, the count stayed 0); such a function runs eagerly, with one
    warning naming the variable. An assignment to a variable of its own call compiles."""
    global COUNT
    COUNT = 0

    def counted(x):
        global COUNT
        COUNT += 1
        return jnp.sum(x**2)

    def make():
        n = 0

        def step(x):
            def bump():
                nonlocal n  # (through ``step``: a variable outside its call)
                n += 1

            bump()
            return jnp.sum(x**2)

        return step, lambda: n

    def local(x):
        acc = 0

        def bump():
            nonlocal acc  # (``local``'s own variable)
            acc += 1

        bump()
        return jnp.sum(x) * acc

    stepped, count = make()
    for f, counter, name in (
        (counted, lambda: COUNT, "global COUNT"),
        (stepped, count, "nonlocal n"),
    ):
        with pytest.warns(jaxfunc.EagerFallbackWarning, match=name):
            for _ in range(4):
                np.testing.assert_allclose(jaxfunc.func.grad(f)(X), 2 * X)
        assert counter() == 4
        assert jaxfunc.cache_info(f)["eager"] == 4
    for _ in range(3):
        np.testing.assert_allclose(jaxfunc.func.grad(local)(X), np.ones(3))
    assert jaxfunc.cache_info(local)["compiles"] == 1


def test_every_call_runs_the_same_compiled_program():
    """The first call compiles too, so calls 1 and 3 give the same values even where XLA's
    fusion differs from op-by-op execution (sqrt(x * x) at 1e200: op by op x * x overflows
    to inf; fused, XLA may simplify it)."""

    def f(x):
        return jnp.sum(x**3)

    traces = _cache.stats().get("trace", 0)
    _grad(f)
    assert _cache.stats().get("trace", 0) == traces + 1

    def g(x):
        return jnp.sum(jnp.sqrt(x * x))

    big = jnp.asarray([1e200, 2.0])
    results = [np.asarray(jaxfunc.func.grad_and_value(g)(big)[1]) for _ in range(3)]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_disabled_cache_never_compiles():
    def f(x):
        return jnp.sum(x**3)

    traces = _cache.stats().get("trace", 0)
    with jaxfunc.cache_disabled():
        for _ in range(4):
            np.testing.assert_allclose(_grad(f), 3 * np.asarray(X) ** 2)
    assert _cache.stats().get("trace", 0) == traces
    assert jaxfunc.cache_enabled()


def test_clear_cache():
    def f(x):
        return jnp.sum(x**3)

    _warm(f)
    assert _cache._existing_slot(f) is not None
    jaxfunc.clear_cache(f)
    assert _cache._existing_slot(f) is None
    _warm(f)
    jaxfunc.clear_cache()
    assert len(_cache._slots) == 0


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_entries_are_bounded():
    def f(x):
        return jnp.sum(x) * SCALE

    global SCALE
    try:
        for k in range(3 * _cache.MAX_ENTRIES):
            SCALE = float(k)
            _grad(f)
            _grad(f)
        assert len(_cache._existing_slot(f).entries) <= _cache.MAX_ENTRIES
    finally:
        SCALE = 2.0


def test_cache_holds_functions_weakly():
    def make(k):
        a = jnp.full(3, float(k))

        def f(x):
            return jnp.sum(x * a)

        return f, weakref.ref(a)

    refs = []
    for k in range(50):
        f, aref = make(k)
        _warm(f)
        refs.append((weakref.ref(f), aref))
        del f
    gc.collect()
    assert all(fr() is None for fr, _ in refs)
    assert all(ar() is None for _, ar in refs)


def test_inside_user_jit_program_is_raw_jax():
    """Inside jax.jit the transform adds nothing: the lowered program equals raw jax.vjp's."""

    def f(x):
        return jnp.sin(x) ** 2

    def with_jaxfunc(x, v):
        out, vjp_fn = vjp(f, x)
        return out, vjp_fn(v)[0]

    def with_jax(x, v):
        out, pullback = jax.vjp(f, x)
        return out, pullback(v)[0]

    def body(text):
        return "\n".join(line for line in text.splitlines() if not line.startswith("module @"))

    v = jnp.ones(3)
    a = jax.jit(with_jaxfunc).lower(X, v).as_text()
    b = jax.jit(with_jax).lower(X, v).as_text()
    assert body(a) == body(b)
    builds = _cache.stats().get("build", 0)
    jax.jit(with_jaxfunc)(X, v)
    assert _cache.stats().get("build", 0) == builds


def test_inside_user_jit_autograd_functional_is_raw_jax():
    def f(x):
        return jnp.sum(jnp.tanh(x))

    def with_jaxfunc(x):
        return af_vjp(f, x, create_graph=True)[1]

    def with_jax(x):
        out, pullback = jax.vjp(f, x)
        return pullback(jnp.ones_like(out))[0]

    def body(text):
        return "\n".join(line for line in text.splitlines() if not line.startswith("module @"))

    assert body(jax.jit(with_jaxfunc).lower(X).as_text()) == body(
        jax.jit(with_jax).lower(X).as_text()
    )


def test_grad_python_scalar_arguments_are_static():
    def f(x, k):
        return jnp.sum(x) * k

    g = grad(f)
    for k in (1.0, 2.0, 1.0, 2.0, 3.0):
        np.testing.assert_allclose(g(X, k), k * np.ones(3))


def test_bound_methods_of_many_instances_each_compile_and_die_with_their_instance():
    models = [Model() for _ in range(3 * _cache.MAX_ENTRIES)]
    for k, m in enumerate(models):
        m.cfg["p"] = float(k)
        for _ in range(3):
            np.testing.assert_allclose(_grad(m.loss), 2 * k * np.asarray(X))
    assert all(len(_cache._method_slots[m]) == 1 for m in models)
    assert not any(slot.uncacheable for m in models for slot in _cache._method_slots[m].values())
    ref = weakref.ref(models[0])
    del models, m
    gc.collect()
    assert ref() is None


def _changing_at_every_call(calls: int):
    """``f`` reading a global that changes before each of ``calls`` calls: ``(f, thrash
    events, builds)``."""
    global SCALE

    def f(x):
        return jnp.sum(x) * SCALE

    thrash = _cache.stats().get("thrash", 0)
    builds = _cache.stats().get("build", 0)
    try:
        for k in range(calls):
            SCALE = float(k)
            np.testing.assert_allclose(_grad(f), k * np.ones(3))
    finally:
        SCALE = 2.0
    stats = _cache.stats()
    return f, stats.get("thrash", 0) - thrash, stats.get("build", 0) - builds


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_a_function_whose_state_changes_at_every_call_stops_being_rebuilt():
    f, tries, builds = _changing_at_every_call(40)
    # Rebuilt THRASH_BUILDS times, then eager for BACKOFF_CALLS calls, tried again, and
    # eager again for twice as long: never a build per call.
    assert (tries, builds) == (2, 2 * _cache.THRASH_BUILDS)
    info = jaxfunc.cache_info(f)
    assert info["eager"] > 0
    assert info["reasons"][0] == (
        "what it reads changes at nearly every call: `f.__globals__['SCALE']` changes"
    )


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_a_function_that_never_settles_builds_the_same_few_times_at_each_try():
    # Each try after an eager stretch is judged on its own calls: a function whose state
    # never settles builds THRASH_BUILDS entries per try, however long the stretch before
    # (9 calls a try, between eager stretches of 16, 32, 64 and 128 calls).
    _, tries, builds = _changing_at_every_call(300)
    assert (tries, builds) == (5, 5 * _cache.THRASH_BUILDS)


class _Scaler:
    def helper(self, x):
        return x * SCALE_ARRAY

    def __call__(self, x):
        return jnp.sum(self.helper(x))


SCALE_ARRAY = jnp.ones(3)


def test_the_eager_reason_names_a_global_array_read_where_it_cannot_be_hoisted():
    # A method reached through its class reads the module's globals, not the rebound copy
    # a trace gets: an array there is compared by identity, so replacing it at every step
    # rebuilds, then runs eagerly (right values); the warning names the place.
    global SCALE_ARRAY
    scaler = _Scaler()
    f = lambda x: scaler(x)
    try:
        with pytest.warns(jaxfunc.EagerFallbackWarning) as caught:
            for k in range(12):
                SCALE_ARRAY = jnp.full(3, float(k))
                np.testing.assert_allclose(_grad(f), k * np.ones(3))
    finally:
        SCALE_ARRAY = jnp.ones(3)
    place = "`_Scaler.__dict__['helper'].__globals__['SCALE_ARRAY']` is replaced"
    assert place in str(caught[0].message)
    assert "compared by identity" in jaxfunc.cache_info(f)["reasons"][0]


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_a_warm_up_schedule_is_compiled_again_once_it_settles():
    """A learning rate that changes for a few steps and then stays: after the back-off the
    function is compiled again, and its calls are hits."""
    global SCALE

    def f(x):
        return jnp.sum(x) * SCALE

    try:
        for k in range(12):  # warm-up: a new value at every step
            SCALE = 0.1 * (k + 1)
            np.testing.assert_allclose(_grad(f), SCALE * np.ones(3))
        SCALE = 1.5
        for _ in range(_cache.BACKOFF_CALLS + 4):
            np.testing.assert_allclose(_grad(f), 1.5 * np.ones(3))
        hits = jaxfunc.cache_info(f)["hits"]
        for _ in range(5):
            np.testing.assert_allclose(_grad(f), 1.5 * np.ones(3))
        assert jaxfunc.cache_info(f)["hits"] == hits + 5
    finally:
        SCALE = 2.0


def test_occasional_changes_keep_the_function_compiled():
    global SCALE

    def f(x):
        return jnp.sum(x) * SCALE

    try:
        for k in range(3 * _cache.THRASH_BUILDS):
            SCALE = float(k)
            for _ in range(_cache.THRASH_RATIO + 2):
                np.testing.assert_allclose(_grad(f), k * np.ones(3))
        assert not _cache._existing_slot(f).uncacheable
        hits = _cache.stats().get("hit", 0)
        _grad(f)
        assert _cache.stats().get("hit", 0) == hits + 1
    finally:
        SCALE = 2.0


def test_transforms_of_transforms_made_at_each_call_are_cached():
    """``hessian(f)(x)`` and ``vmap(grad(f))(xs)`` build new wrappers at every call; the
    cache keys them on ``f`` and the options, so the compiled program is reused."""

    def f(x):
        return jnp.sum(jnp.sin(x) ** 3)

    xs = jnp.stack([X, 2 * X])
    for _ in range(2):
        jaxfunc.func.hessian(f)(X)
        jaxfunc.func.vmap(jaxfunc.func.grad(f))(xs)
    traces = _cache.stats().get("trace", 0)
    for k in range(3):
        np.testing.assert_allclose(jaxfunc.func.hessian(f)(X + k), jax.hessian(f)(X + k))
        np.testing.assert_allclose(
            jaxfunc.func.vmap(jaxfunc.func.grad(f))(xs + k), jax.vmap(jax.grad(f))(xs + k)
        )
    assert _cache.stats().get("trace", 0) == traces


def test_a_kept_transform_of_a_transform_hits_and_retraces_at_a_new_shape():
    """A ``vmap(grad(f))`` kept and called again is a hit without a trip through the locked
    path; at a new shape its jit traces once more, where the trace is watched, and the
    values are right before and after."""

    def f(x):
        return jnp.sum(jnp.cos(x) ** 3)

    g = jaxfunc.func.vmap(jaxfunc.func.grad(f))
    xs, wide = jnp.stack([X, 2 * X]), jnp.stack([X, X, 3 * X])
    for _ in range(2):
        g(xs)
    traces, hits = _cache.stats().get("trace", 0), jaxfunc.cache_info(f)["hits"]
    calls = []
    lookup = _cache._lookup
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_cache, "_lookup", lambda func: calls.append(func) or lookup(func))
        for k in range(3):
            np.testing.assert_allclose(g(xs + k), jax.vmap(jax.grad(f))(xs + k))
        assert calls == [] and jaxfunc.cache_info(f)["hits"] == hits + 3
        for k in range(2):
            np.testing.assert_allclose(g(wide + k), jax.vmap(jax.grad(f))(wide + k))
    assert _cache.stats().get("trace", 0) == traces + 1


def test_wrappers_of_wrappers_and_users_functools_wraps_are_told_apart():
    """``functools.wraps`` copies a function's ``__dict__``: a transform of ``grad(f)`` and a
    user's own ``@functools.wraps(grad(f))`` function must not be taken for ``grad(f)``
    itself (whatever the cache keeps on ``grad(f)`` for its calls)."""

    def f(x):
        return jnp.sum(jnp.sin(x) ** 3)

    F = jaxfunc.func
    xs = jnp.stack([X, 2 * X])
    g = F.grad(f)
    F.vmap(g)(xs)
    h = F.jacfwd(g)
    for _ in range(3):
        np.testing.assert_allclose(F.vmap(h)(xs), jax.vmap(jax.jacfwd(jax.grad(f)))(xs))

    @functools.wraps(g)
    def twice(x):
        return 2 * g(x)

    for _ in range(3):
        np.testing.assert_allclose(F.vmap(twice)(xs), 2 * jax.vmap(jax.grad(f))(xs))


def test_an_error_at_a_retrace_does_not_carry_the_cache_s_own_signal():
    """A call that starts as a hit and then traces (a new shape) is made again where the
    trace is watched; the user's error from that trace must not show the cache's internal
    exception as its context."""

    def bad(x):
        if x.shape[0] == 9:
            raise ValueError("nine")
        return jnp.sum(x**2)

    for _ in range(3):
        jaxfunc.func.grad(bad)(X)
    with pytest.raises(ValueError, match="nine") as info:
        jaxfunc.func.grad(bad)(jnp.ones(9))
    chain, error = [], info.value
    while error is not None:
        chain.append(type(error).__name__)
        error = error.__context__ or error.__cause__
    assert "_NotHere" not in chain, chain


def test_vectorizing_transforms_compile_from_the_first_call():
    def f(x):
        return jnp.sum(jnp.tanh(x) ** 2)

    traces = _cache.stats().get("trace", 0)
    jaxfunc.func.hessian(f)(X)
    assert _cache.stats().get("trace", 0) == traces + 1


def test_callables_that_cannot_be_held_weakly_run_uncompiled_and_correct():
    obj = SlottedUnweakable()
    for k in (2.0, 3.0):
        obj.k = k
        for _ in range(3):
            np.testing.assert_allclose(_grad(obj), k * np.ones(3))


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_mutable_non_array_arguments_are_never_keyed_on():
    class Cfg:
        scale = 2.0

    cfg = Cfg()
    g = grad(lambda x, c: jnp.sum(x) * c.scale)
    for _ in range(3):
        np.testing.assert_allclose(g(X, cfg), 2 * np.ones(3))
    cfg.scale = 5.0
    np.testing.assert_allclose(g(X, cfg), 5 * np.ones(3))
    ref = weakref.ref(cfg)
    del cfg
    gc.collect()
    assert ref() is None  # not kept alive by a compile key


def test_equal_python_scalars_of_different_types_compile_apart():
    g = grad(lambda x, k: jnp.sum(x) * (10.0 if k is True else float(k)))
    for k in (1, 1, 1.0, 1.0, True, True, -0.0):
        np.testing.assert_allclose(g(X, k), (10.0 if k is True else float(k)) * np.ones(3))


def test_programs_are_shared_by_typed_value_only():
    from jaxfunc.func import _Grad

    desc = _core.split_arrays((X,))[1]
    one = _Grad.of(desc=desc, argnums=0, has_aux=False, with_value=False)
    assert _Grad.of(desc=desc, argnums=0, has_aux=False, with_value=False) is one
    for argnums, shared in ((0.0, False), (False, False), ((0,), False), (-0, True)):
        other = _Grad.of(desc=desc, argnums=argnums, has_aux=False, with_value=False)
        assert (other is one) == shared
        assert type(other.argnums) is type(argnums)
    assert _Grad(desc=desc, argnums=0, has_aux=False, with_value=False) == one


def test_alternating_programs_on_one_function_each_get_their_own():
    f = lambda x, y: jnp.sum(x * 2.0 + y**2)
    y = X + 1.0
    for _ in range(4):  # (the entry's last program changes at every call)
        np.testing.assert_allclose(grad(f, argnums=0)(X, y), 2 * np.ones(3))
        np.testing.assert_allclose(grad(f, argnums=1)(X, y), 2 * np.asarray(y))
        np.testing.assert_allclose(grad(f, argnums=(0, 1))(X, y)[1], 2 * np.asarray(y))


@pytest.mark.parametrize(
    "f",
    [
        lambda x: (x[x > 0] ** 2).sum(),  # boolean mask: NonConcreteBooleanIndexError
        lambda x: x.sum() * [1.0, 2.0, 3.0][int(jnp.argmax(x))],  # TracerIntegerConversionError
    ],
    ids=["boolean mask", "int() of a traced value"],
)
@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # tested in test_warnings
def test_functions_that_need_concrete_values_work_on_every_call(f):
    expected = jax.grad(f)(X)
    for _ in range(4):
        np.testing.assert_allclose(grad(f)(X), expected)


def test_errors_raised_while_tracing_do_not_switch_compilation_off():
    def f(x):
        return jnp.sin(x)

    for _ in range(3):
        af_vjp(f, X, jnp.ones(3))
    with pytest.raises(RuntimeError, match="v has invalid size"):
        af_vjp(f, X, jnp.ones(2))  # a user error, found while tracing
    hits = _cache.stats().get("hit", 0)
    af_vjp(f, X, jnp.ones(3))
    assert _cache.stats().get("hit", 0) == hits + 1


def test_callable_objects_with_getattr_are_not_mistaken_for_jaxfunc_callables():
    class AttrDict(dict):
        __getattr__ = dict.__getitem__

        def __call__(self, x):
            return jnp.sum(x) * self["k"]

    obj = AttrDict(k=2.0)
    for _ in range(3):
        np.testing.assert_allclose(_grad(obj), 2 * np.ones(3))


def test_vmap_of_vjp_fn_with_list_out_dims():
    """An unhashable option (a list in out_dims) cannot key a compile: it runs eagerly."""
    for _ in range(3):
        _, vjp_fn = vjp(lambda p: p[0] * 2 + p[1] * 3, [X, X])
        (out,) = jaxfunc.func.vmap(vjp_fn, out_dims=([0, 0],))(jnp.eye(3))
        np.testing.assert_allclose(out[0], 2 * np.eye(3))
        np.testing.assert_allclose(out[1], 3 * np.eye(3))


def test_cache_disabled_is_per_thread():
    inside, leave = threading.Event(), threading.Event()
    seen = {}

    def other():
        with jaxfunc.cache_disabled():
            seen["other"] = jaxfunc.cache_enabled()
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    seen["main"] = jaxfunc.cache_enabled()
    leave.set()
    t.join(10)
    assert seen == {"other": False, "main": True}
    assert jaxfunc.cache_enabled()


def test_clear_cache_of_a_transform_clears_its_function():
    def f(x):
        return jnp.sum(x**2)

    g = grad(f)
    for _ in range(2):
        jaxfunc.func.vmap(g)(jnp.stack([X, X]))
    assert _cache._existing_slot(f) is not None
    jaxfunc.clear_cache(jaxfunc.func.vmap(g))
    assert _cache._existing_slot(f) is None


def test_training_loop_rebinding_an_attribute_array_neither_recompiles_nor_leaks():
    class Linear:
        def __init__(self):
            self.W = jnp.ones(3)

        def __call__(self, x):
            return jnp.sum(jnp.tanh(x * self.W))

    model = Linear()
    old = []
    for _ in range(3):
        _grad(model)
    traces = _cache.stats().get("trace", 0)
    for _ in range(6):
        old.append(weakref.ref(model.W))
        model.W = model.W - 0.1 * jnp.asarray(_grad(model))
        want = np.asarray(jax.grad(lambda x: jnp.sum(jnp.tanh(x * model.W)))(X))
        np.testing.assert_allclose(_grad(model), want)
    assert _cache.stats().get("trace", 0) == traces
    gc.collect()
    assert all(r() is None for r in old)
