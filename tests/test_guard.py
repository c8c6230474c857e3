"""The guard proves by value that what a compiled program read is unchanged (issue 11).

Each test runs the function until the cache serves it compiled, changes what the function
reads (or changes nothing, for the rebuild cases), and checks the next results against the
value computed from scratch. Each case was stale (or crashed, or recompiled at every change)
with the guard before issue 11.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import enum
import functools
import gc
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxfunc
from jaxfunc._jit import _cache, _guard
from jaxfunc.autograd.functional import vjp as af_vjp

X = jnp.asarray([0.5, 1.0, 2.0])


def _grad(f, x=X):
    return np.asarray(af_vjp(f, x)[1])


def _stats():
    return dict(_cache.stats())


def _delta(before, key):
    return _cache.stats().get(key, 0) - before.get(key, 0)


def _warm(f, x=X):
    """Three calls; the third must be a compiled hit."""
    before = _stats()
    for _ in range(3):
        out = _grad(f, x)
    assert _delta(before, "hit") >= 1, "the compiled path was not exercised"
    return out


def _check(f, expected, x=X):
    """Twice: the first call after a change, then again from the cache."""
    np.testing.assert_allclose(_grad(f, x), expected, rtol=1e-6)
    np.testing.assert_allclose(_grad(f, x), expected, rtol=1e-6)


ONES = np.ones(3)

# -- 1. library code decided by where the code lives ---------------------------------------------

GAIN = 2.0


@functools.wraps(jnp.tanh)
def _act(x):
    return jnp.tanh(x) * GAIN


def test_functools_wraps_of_a_library_function_is_user_code():
    global GAIN
    f = lambda x: jnp.sum(_act(x))
    want = lambda g: g * (1 - np.tanh(np.asarray(X)) ** 2)
    try:
        np.testing.assert_allclose(_warm(f), want(2.0), rtol=1e-6)
        GAIN = 5.0
        _check(f, want(5.0))
    finally:
        GAIN = 2.0


def test_functions_made_by_exec_are_user_code():
    ns = {"jnp": jnp, "K": 2.0}
    exec("def f(x):\n    return jnp.sum(x) * K\n", ns)
    f = ns["f"]
    _warm(f)
    ns["K"] = 5.0
    _check(f, 5 * ONES)


def test_make_dataclass_classes_are_user_code():
    Cls = dataclasses.make_dataclass(
        "Cls",
        [("k", float, 2.0)],
        namespace={"factor": 1.0, "__call__": lambda self, x: jnp.sum(x) * self.k * self.factor},
    )
    obj = Cls()
    _warm(obj)
    Cls.factor = 3.0  # a class attribute of the generated class
    _check(obj, 6 * ONES)


RULE_SCALE = 2.0


@jax.custom_jvp
def _twice(x):
    return 2 * x


_twice.defjvps(lambda t, ans, x: t * RULE_SCALE)  # a library closure holds the user rule


def test_custom_jvp_defjvps_rule_reading_a_global():
    global RULE_SCALE
    f = lambda x: jnp.sum(_twice(x))
    try:
        _warm(f)
        RULE_SCALE = 7.0
        _check(f, 7 * ONES)
    finally:
        RULE_SCALE = 2.0


VSCALE = 2.0
_VF = jax.vmap(lambda r: r * VSCALE)  # a jax closure around a user function


def test_user_function_inside_a_library_closure():
    global VSCALE
    f = lambda x: jnp.sum(_VF(x[None]))
    try:
        _warm(f)
        VSCALE = 4.0
        _check(f, 4 * ONES)
    finally:
        VSCALE = 2.0


# -- 2. dicts with keys of any type, containers of any size --------------------------------------


class Part(enum.Enum):
    ENC = 1
    DEC = 2


def test_enum_keyed_parameter_dict_updated_in_place():
    params = {Part.ENC: jnp.ones(3), Part.DEC: jnp.ones(3)}
    f = lambda x: jnp.sum(x * params[Part.ENC]) + jnp.sum(params[Part.DEC])
    _warm(f)
    params[Part.ENC] = 3 * jnp.ones(3)
    _check(f, 3 * ONES)


def test_numpy_scalar_keys_object_keys_and_enum_sets():
    labels = np.unique(np.array([3, 1, 3]))  # np.int64 keys
    by_label = {k: 1.0 for k in labels}
    marker = object()
    by_object = {marker: 1.0}
    flags = {Part.ENC}
    tuple_keys = {(Part.ENC, np.int64(1)): 1.0}

    def f(x):
        s = 2.0 if Part.DEC in flags else 1.0
        return (
            jnp.sum(x)
            * by_label[labels[0]]
            * by_object[marker]
            * s
            * tuple_keys[(Part.ENC, np.int64(1))]
        )

    _warm(f)
    by_label[labels[0]] = 2.0
    _check(f, 2 * ONES)
    by_object[marker] = 3.0
    _check(f, 6 * ONES)
    flags.add(Part.DEC)
    _check(f, 12 * ONES)
    tuple_keys[(Part.ENC, np.int64(1))] = 0.5
    _check(f, 6 * ONES)


def test_int_key_is_not_float_key():
    table = {1: 2.0}
    f = lambda x: jnp.sum(x) * sum(k * 0 + (3.0 if type(k) is float else 1.0) for k in table)
    _warm(f)
    del table[1]
    table[1.0] = 2.0  # equal, same hash: a different key all the same
    _check(f, 3 * ONES)


def test_large_parameter_dict_updated_in_place_is_seen_without_recompiling():
    params = {f"layer{i}.weight": jnp.full(3, 1.0) for i in range(300)}

    def f(x):
        return jnp.sum(x * params["layer7.weight"]) + sum(jnp.sum(p) for p in params.values())

    _warm(f)
    before = _stats()
    for k in range(2, 5):
        params["layer7.weight"] = jnp.full(3, float(k))  # the state-dict pattern
        _check(f, k * ONES)
    assert _delta(before, "trace") == 0  # hoisted: no recompiles


def test_large_dict_of_floats_updated_in_place():
    cfg = {f"c{i}": 1.0 for i in range(400)}
    f = lambda x: jnp.sum(x) * cfg["c399"]
    _warm(f)
    cfg["c399"] = 4.0
    _check(f, 4 * ONES)


# -- 3. state no longer skipped -------------------------------------------------------------------


def test_function_attributes():
    def penalty(x):
        return jnp.sum(x) * penalty.weight

    penalty.weight = 2.0
    f = lambda x: penalty(x)
    _warm(f)
    penalty.weight = 1.0
    _check(f, ONES)


def test_function_attribute_array_is_hoisted():
    def penalty(x):
        return jnp.sum(x * penalty.w)

    penalty.w = jnp.ones(3)
    f = lambda x: penalty(x)
    _warm(f)
    before = _stats()
    penalty.w = 5 * jnp.ones(3)
    _check(f, 5 * ONES)
    assert _delta(before, "trace") == 0


@pytest.mark.parametrize("kind", ["deque", "array.array", "bytearray", "mappingproxy"])
def test_mutable_builtin_containers(kind):
    if kind == "deque":
        box = collections.deque([2.0])
        read, change, want = (lambda: box[0]), (lambda: box.appendleft(5.0)), 5.0
    elif kind == "array.array":
        box = array.array("d", [2.0])
        read, change, want = (lambda: box[0]), (lambda: box.__setitem__(0, 5.0)), 5.0
    elif kind == "bytearray":
        box = bytearray(b"\x02")
        read, change, want = (lambda: float(box[0])), (lambda: box.__setitem__(0, 5)), 5.0
    else:
        inner = {"k": 2.0}
        box = types.MappingProxyType(inner)
        read, change, want = (lambda: box["k"]), (lambda: inner.__setitem__("k", 5.0)), 5.0
    f = lambda x: jnp.sum(x) * read()
    _warm(f)
    change()
    _check(f, want * ONES)


def test_os_environ():
    key = "JAXFUNC_TEST_GUARD_SCALE"
    os.environ[key] = "2"
    f = lambda x: jnp.sum(x) * float(os.environ[key])
    try:
        _warm(f)
        os.environ[key] = "3"
        _check(f, 3 * ONES)
    finally:
        del os.environ[key]


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_masked_array_mask_and_matrix():
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, False, False])
    mat = np.matrix([[1.0, 1.0, 1.0]])

    def f(x):
        return jnp.sum(x * jnp.asarray(masked.filled(0.0)) * jnp.asarray(mat)[0])

    _warm(f)
    masked[1] = np.ma.masked  # only the mask changes
    _check(f, np.array([1.0, 0.0, 3.0]))
    mat[0, 2] = 4.0
    _check(f, np.array([1.0, 0.0, 12.0]))


def test_monkeypatched_library_function():
    f = lambda x: jnp.sum(jax.nn.gelu(x))
    original = jax.nn.gelu
    try:
        _warm(f)
        jax.nn.gelu = lambda x: 3.0 * x
        _check(f, 3 * ONES)
    finally:
        jax.nn.gelu = original


def test_user_module_getattr():
    mod = types.ModuleType("lazy_user_module")
    exec(
        "_CONFIG = {'scale': 2.0}\ndef __getattr__(name):\n    return _CONFIG[name]\n",
        mod.__dict__,
    )
    f = lambda x: jnp.sum(x) * mod.scale
    _warm(f)
    mod._CONFIG["scale"] = 6.0
    _check(f, 6 * ONES)


def test_torch_parameter_updated_in_place():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)

    def f(x):
        return jnp.sum(x * jaxfunc.interop.from_torch(lin.weight)[0])

    _warm(f)
    with torch.no_grad():
        lin.weight.add_(1.0)  # what opt.step() does
    _check(f, 2 * ONES)


def test_torch_tensor_global_updated_in_place():
    torch = pytest.importorskip("torch")
    t = torch.ones(3, dtype=torch.float64)
    f = lambda x: jnp.sum(x * jaxfunc.interop.from_torch(t))
    _warm(f)
    t.mul_(3.0)
    _check(f, 3 * ONES)


# -- 4. never call user hooks while rebuilding ----------------------------------------------------


class _Doubling(collections.namedtuple("_Doubling", "w")):
    __slots__ = ()

    def __new__(cls, w):
        return super().__new__(cls, w * 2)  # converts its input


DOUBLING = _Doubling(jnp.ones(3))  # holds 2.0


def test_namedtuple_with_converting_new_is_not_converted_again():
    f = lambda x: jnp.sum(x * DOUBLING.w)
    for _ in range(4):
        np.testing.assert_allclose(_grad(f), 2 * ONES)


class _SelfCopying:
    def __init__(self):
        self.W = jnp.ones(3)

    def __copy__(self):
        return self


def test_object_whose_copy_is_itself_is_never_written_into():
    obj = _SelfCopying()
    w = obj.W
    f = lambda x: jnp.sum(x * obj.W)
    for _ in range(4):
        np.testing.assert_allclose(_grad(f), ONES)
    assert obj.W is w


_CLOSED: list[int] = []


class _Dataset:
    def __init__(self):
        self.W = jnp.ones(3)

    def __del__(self):
        _CLOSED.append(id(self))  # would close the user's file


def test_copies_never_run_del():
    ds = _Dataset()
    f = lambda x: jnp.sum(x * ds.W)
    _warm(f)
    ds.W = 2 * jnp.ones(3)
    _check(f, 2 * ONES)
    gc.collect()
    assert _CLOSED == []


# -- 5. bounded, iterative walks ------------------------------------------------------------------


def test_a_600_node_object_chain():
    head = types.SimpleNamespace(k=1.0, next=None)
    node = head
    for _ in range(600):
        node.next = types.SimpleNamespace(k=1.0, next=None)
        node = node.next
    tail = node
    tail.k = 2.0

    def f(x):
        n = head
        while n.next is not None:
            n = n.next
        return jnp.sum(x) * n.k

    assert sys.getrecursionlimit() < 5000
    _warm(f)
    tail.k = 3.0
    _check(f, 3 * ONES)


# -- 6. numpy arrays and PRNG keys hoisted --------------------------------------------------------

BIG = np.zeros(20_000)  # 160 KB


def test_negative_zero_in_a_large_numpy_array():
    f = lambda x: jnp.sum(x) * jnp.copysign(1.0, BIG[0])
    try:
        _warm(f)
        BIG[0] = -0.0
        _check(f, -ONES)
    finally:
        BIG[0] = 0.0


def test_large_numpy_global_is_hoisted_not_compared():
    big = np.ones(1 << 18)
    f = lambda x: jnp.sum(x) * big[-1] + 0 * jnp.sum(big)
    _warm(f)
    before = _stats()
    big[-1] = 4.0
    _check(f, 4 * ONES)
    assert _delta(before, "trace") == 0
    assert "tobytes" not in _cache._slots[f].entries[0].plan.source


def test_vjp_fn_and_jvp_fn_after_an_in_place_numpy_change():
    """Compiled: the pullback keeps the forward's values (the hoisted array is an argument
    of the forward, its residuals are the program's), at every call."""
    scale = np.ones(3)

    def f(x):
        return jnp.sin(x * scale) * scale

    for _ in range(3):
        jaxfunc.func.vjp(f, X)
        jaxfunc.func.linearize(f, X)
    scale[:] = 2.0
    _, vjp_fn = jaxfunc.func.vjp(f, X)
    _, jvp_fn = jaxfunc.func.linearize(f, X)
    assert vjp_fn._meta.compiled
    scale[:] = 3.0  # after the forward: the pullback must not see it
    want = 4 * np.cos(2 * np.asarray(X))
    for _ in range(3):
        np.testing.assert_allclose(vjp_fn(jnp.ones(3))[0], want, rtol=1e-6)
        np.testing.assert_allclose(jvp_fn(jnp.ones(3)), want, rtol=1e-6)


IDX = np.array([1, 0])


def test_numpy_array_steering_python_still_works():
    f = lambda x: jnp.sum(x) * [1.0, 2.0, 3.0][int(IDX[0])]
    try:
        np.testing.assert_allclose(_warm(f), 2 * ONES)
        IDX[0] = 2
        _check(f, 3 * ONES)
    finally:
        IDX[0] = 1


KEY = jax.random.key(0)


def test_typed_prng_key_split_every_step_stays_compiled():
    global KEY

    def f(x):
        return jnp.sum(x * jax.random.normal(KEY, (3,)))

    try:
        _warm(f)
        before = _stats()
        for _ in range(12):
            KEY, _ = jax.random.split(KEY)
            _check(f, np.asarray(jax.random.normal(KEY, (3,))))
        assert _delta(before, "trace") == 0 and _delta(before, "thrash") == 0
    finally:
        KEY = jax.random.key(0)


HW = jnp.ones(3)


@jax.jit
def _jit_helper(x):
    return x * HW


_MOD = types.ModuleType("user_weights")
_MOD.W = jnp.ones(3)


@pytest.mark.parametrize("route", ["jit helper's global", "module attribute"])
def test_arrays_behind_jit_helpers_and_module_attributes_are_hoisted(route):
    global HW
    if route == "module attribute":
        f = lambda x: jnp.sum(x * _MOD.W)

        def change(k):
            _MOD.W = k * jnp.ones(3)
    else:
        f = lambda x: jnp.sum(_jit_helper(x))

        def change(k):
            global HW
            HW = k * jnp.ones(3)

    try:
        _warm(f)
        before = _stats()
        for k in range(2, 12):
            change(float(k))
            _check(f, k * ONES)
        assert _delta(before, "trace") == 0 and _delta(before, "thrash") == 0
    finally:
        change(1.0)


# -- sharing: one object by two routes -----------------------------------------------------------


def test_an_object_reached_by_two_routes():
    m = types.SimpleNamespace(W=jnp.ones(3))
    holder = [m]

    def g(x):
        return jnp.sum(x * m.W)

    def f(x):
        return g(x) + jnp.sum(x * holder[0].W)

    _warm(f)
    m.W = 3 * jnp.ones(3)
    _check(f, 6 * ONES)


# -- the guard's failures are eager runs, never crashes ------------------------------------------


@pytest.mark.filterwarnings("ignore::jaxfunc.EagerFallbackWarning")  # deliberate
def test_state_a_guard_cannot_read_runs_eagerly():
    counter = iter(range(100))  # an iterator: its state cannot be read without advancing it
    f = lambda x: jnp.sum(x) * (2.0 if counter else 1.0)
    with pytest.raises(_guard.Uncacheable, match=r"range_iterator.*state"):
        _guard.build(f)
    for _ in range(4):
        np.testing.assert_allclose(_grad(f), 2 * ONES)


def test_guard_source_is_readable():
    params = {"w": jnp.ones(3), "b": jnp.ones(3)}
    f = lambda x: jnp.sum(x * params["w"] + params["b"])
    plan = _guard.build(f)
    assert "list(map(type," in plan.source  # one vectorized check for the array group
    assert len(plan.guard(f)) == 2


class _State(collections.namedtuple("_State", "mu nu")):
    __slots__ = ()

    def total(self):  # only a _State has it: a rebuilt plain tuple would fail
        return jnp.sum(self.nu)


def test_array_groups_in_lists_and_namedtuples_are_rebuilt_with_their_types():
    layers = [jnp.ones(3), jnp.ones(3)]
    box = {"state": _State(jnp.ones(3), jnp.ones(3))}

    def f(x):
        return jnp.sum(x * layers[1]) * box["state"].total() / 3

    _warm(f)
    before = _stats()
    layers[1] = 2 * jnp.ones(3)
    box["state"] = _State(jnp.ones(3), 3 * jnp.ones(3))
    _check(f, 6 * ONES)
    assert _delta(before, "trace") == 0
    assert "list(map(type," in _cache._slots[f].entries[0].plan.source


RW = jnp.ones(3)


class _Recursive:
    def loss(self, x, depth=1):
        if depth:  # calls itself through the instance: the original function, its globals
            return self.loss(x, depth - 1) + jnp.sum(x * RW)
        return jnp.sum(x * RW)


def test_a_root_method_calling_itself_reads_no_stale_global():
    global RW
    obj = _Recursive()
    try:
        _warm(obj.loss)
        RW = 2 * jnp.ones(3)
        _check(obj.loss, 4 * ONES)
    finally:
        RW = jnp.ones(3)
