"""Composition: every transform under jax.jit, jax.vmap, jax.grad and nested in itself;
returned callables as pytrees; numerical gradient checks (jax.test_util.check_grads)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import jaxfunc
import jaxfunc.autograd.functional as AF
import jaxfunc.func as TF

X = jnp.asarray([0.3, -0.7, 1.1])
V = jnp.asarray([1.0, 2.0, -1.0])
XB = jnp.stack([X, 2 * X, -X])  # a batch of three inputs


def f(x):
    return jnp.sin(x) * x**2


def loss(x):
    return jnp.sum(jnp.tanh(x) ** 2)


# Each transform, written as a function of arrays only (so jit/vmap/grad can wrap it).
TRANSFORMS = {
    "func.vjp": lambda x: TF.vjp(f, x)[1](V)[0],
    "func.jvp": lambda x: TF.jvp(f, (x,), (V,))[1],
    "func.grad": lambda x: TF.grad(loss)(x),
    "func.grad_and_value": lambda x: TF.grad_and_value(loss)(x)[0],
    "func.jacrev": lambda x: TF.jacrev(f)(x),
    "func.jacfwd": lambda x: TF.jacfwd(f)(x),
    "func.hessian": lambda x: TF.hessian(loss)(x),
    "func.linearize": lambda x: TF.linearize(f, x)[1](V),
    "func.vmap": lambda x: TF.vmap(lambda a, b: a * b)(x, V),
    "AF.vjp": lambda x: AF.vjp(f, x, V, create_graph=True)[1],
    "AF.jvp": lambda x: AF.jvp(f, x, V, create_graph=True)[1],
    "AF.jacobian": lambda x: AF.jacobian(f, x, create_graph=True),
    "AF.jacobian forward": lambda x: AF.jacobian(f, x, vectorize=True, strategy="forward-mode"),
    "AF.hessian": lambda x: AF.hessian(loss, x, create_graph=True),
    "AF.vhp": lambda x: AF.vhp(loss, x, V, create_graph=True)[1],
    "AF.hvp": lambda x: AF.hvp(loss, x, V, create_graph=True)[1],
}

# The same quantities from raw JAX.
REFERENCE = {
    "func.vjp": lambda x: jax.vjp(f, x)[1](V)[0],
    "func.jvp": lambda x: jax.jvp(f, (x,), (V,))[1],
    "func.grad": jax.grad(loss),
    "func.grad_and_value": jax.grad(loss),
    "func.jacrev": jax.jacrev(f),
    "func.jacfwd": jax.jacfwd(f),
    "func.hessian": jax.hessian(loss),
    "func.linearize": lambda x: jax.jvp(f, (x,), (V,))[1],
    "func.vmap": lambda x: x * V,
    "AF.vjp": lambda x: jax.vjp(f, x)[1](V)[0],
    "AF.jvp": lambda x: jax.jvp(f, (x,), (V,))[1],
    "AF.jacobian": jax.jacrev(f),
    "AF.jacobian forward": jax.jacfwd(f),
    "AF.hessian": jax.hessian(loss),
    "AF.vhp": lambda x: jax.hessian(loss)(x) @ V,
    "AF.hvp": lambda x: jax.hessian(loss)(x) @ V,
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_eager_matches_jax(name):
    np.testing.assert_allclose(TRANSFORMS[name](X), REFERENCE[name](X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_under_jit(name):
    np.testing.assert_allclose(
        jax.jit(TRANSFORMS[name])(X), REFERENCE[name](X), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_under_vmap(name):
    got = jax.vmap(TRANSFORMS[name])(XB)
    want = jnp.stack([REFERENCE[name](x) for x in XB])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_under_grad(name):
    """create_graph=True (and every torch.func transform) stays differentiable; the
    forward-mode jacobian cannot take create_graph=True (as in torch), so it is a constant."""
    got = jax.grad(lambda x: jnp.sum(TRANSFORMS[name](x) ** 2))(X)
    want = jax.grad(lambda x: jnp.sum(REFERENCE[name](x) ** 2))(X)
    if name == "AF.jacobian forward":
        want = jnp.zeros_like(want)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# the forward-mode jacobian is a constant to outer transforms (test_under_grad checks that)
@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "AF.jacobian forward"])
def test_check_grads(name):
    check_grads(TRANSFORMS[name], (X,), order=1, modes=("fwd", "rev"))


def test_create_graph_false_is_a_constant():
    # torch: d/dx sum(vjp(x^3, v=1)) = 6x with create_graph=True, nothing without it.
    with_graph = jax.grad(
        lambda x: jnp.sum(AF.vjp(lambda a: a**3, x, jnp.ones(3), create_graph=True)[1])
    )(X)
    np.testing.assert_allclose(with_graph, 6 * X)
    without = jax.grad(lambda x: jnp.sum(AF.vjp(lambda a: a**3, x, jnp.ones(3))[1]))(X)
    np.testing.assert_allclose(without, jnp.zeros(3))
    # ... and differentiable with respect to v: d/dv sum(vjp(x^3, v)) = 3x^2
    dv = jax.grad(lambda v: jnp.sum(AF.vjp(lambda a: a**3, X, v, create_graph=True)[1]))(V)
    np.testing.assert_allclose(dv, 3 * X**2)


def test_nested_transforms():
    np.testing.assert_allclose(TF.grad(TF.grad(lambda x: x**4))(jnp.asarray(1.5)), 12 * 1.5**2)
    np.testing.assert_allclose(TF.hessian(loss)(X), TF.jacfwd(TF.jacrev(loss))(X))
    np.testing.assert_allclose(TF.hessian(loss)(X), TF.jacrev(TF.jacrev(loss))(X), rtol=1e-12)
    # jvp of grad is a Hessian-vector product
    hvp_by_jvp = TF.jvp(TF.grad(loss), (X,), (V,))[1]
    np.testing.assert_allclose(hvp_by_jvp, AF.hvp(loss, X, V)[1])
    np.testing.assert_allclose(hvp_by_jvp, AF.vhp(loss, X, V)[1])


def test_per_sample_gradients():
    w = jnp.asarray([0.5, -1.0, 2.0])

    def sample_loss(w, x, y):
        return (jnp.dot(w, x) - y) ** 2

    ys = jnp.asarray([1.0, 0.0, -1.0])
    got = TF.vmap(TF.grad(sample_loss), in_dims=(None, 0, 0))(w, XB, ys)
    want = jnp.stack([jax.grad(sample_loss)(w, x, y) for x, y in zip(XB, ys)])
    np.testing.assert_allclose(got, want)


def test_vjp_fn_is_a_pytree_that_crosses_jit_without_retracing():
    traces = []

    @jax.jit
    def make(x):
        return TF.vjp(f, x)

    @jax.jit
    def apply(vjp_fn, v):
        traces.append(1)
        return vjp_fn(v)

    for k in range(4):
        out, vjp_fn = make(X + k)
        np.testing.assert_allclose(apply(vjp_fn, V)[0], jax.vjp(f, X + k)[1](V)[0])
    assert len(traces) == 1
    leaves = jax.tree_util.tree_leaves(vjp_fn)
    assert leaves and all(isinstance(leaf, jax.Array) for leaf in leaves)


def test_vjp_fn_from_the_cache_crosses_jit_without_retracing():
    traces = []

    @jax.jit
    def apply(vjp_fn, v):
        traces.append(1)
        return vjp_fn(v)

    for k in range(4):  # the first call compiles, later ones reuse it: same pytree structure
        _, vjp_fn = TF.vjp(f, X + k)
        apply(vjp_fn, V)
    assert len(traces) <= 2


def test_vmap_of_vjp_fn_is_the_jacobian():
    _, vjp_fn = TF.vjp(f, X)
    rows = jax.vmap(vjp_fn)(jnp.eye(3))[0]
    np.testing.assert_allclose(rows, jax.jacrev(f)(X))


def test_vjp_fn_accepts_torch_keywords():
    _, vjp_fn = TF.vjp(f, X)
    np.testing.assert_allclose(vjp_fn(V, retain_graph=True, create_graph=False)[0], vjp_fn(V)[0])


def test_linearize_jvp_fn_is_a_pytree():
    @jax.jit
    def make(x):
        return TF.linearize(f, x)

    out, jvp_fn = make(X)
    np.testing.assert_allclose(jax.jit(lambda fn, t: fn(t))(jvp_fn, V), jax.jvp(f, (X,), (V,))[1])


def test_linearize_evaluates_once_and_has_aux():
    calls = []

    def g(x):
        calls.append(1)
        return jnp.sin(x), jnp.cos(x)

    with jaxfunc.cache_disabled():
        out, jvp_fn, aux = TF.linearize(g, X, has_aux=True)
    assert len(calls) == 1
    np.testing.assert_allclose(aux, jnp.cos(X))
    np.testing.assert_allclose(jvp_fn(V), jnp.cos(X) * V)


def test_hessian_has_aux():
    h, aux = TF.hessian(lambda x: (loss(x), x * 2), has_aux=True)(X)
    np.testing.assert_allclose(h, jax.hessian(loss)(X))
    np.testing.assert_allclose(aux, 2 * X)


def test_strict_with_vectorize_beyond_torch():
    # torch refuses strict=True with vectorize=True; jaxfunc gives the same answer as
    # vectorize=False (here: an unused input is an error in strict mode).
    with pytest.raises(RuntimeError, match="is independent of input 1"):
        AF.jacobian(lambda a, b: a * 2, (X, V), strict=True, vectorize=True)
    np.testing.assert_allclose(
        AF.jacobian(f, X, strict=True, vectorize=True), AF.jacobian(f, X, strict=True)
    )


def test_strict_under_jit():
    with pytest.raises(RuntimeError, match="does not require gradients"):
        jax.jit(lambda x: AF.vjp(lambda a: jax.lax.stop_gradient(a), x, V, strict=True)[1])(X)


def test_numpy_inputs_give_jax_arrays():
    out, g = AF.vjp(f, np.asarray(X), np.asarray(V))
    assert isinstance(out, jax.Array) and isinstance(g, jax.Array)
    np.testing.assert_allclose(g, jax.vjp(f, X)[1](V)[0])


# -- no_grad inside control flow and jitted helpers ---------------------------------------------


def _stopped(x):
    with jaxfunc.no_grad():
        c = x**2
    return x - c


@jax.jit
def _jitted_helper(x):
    return _stopped(x)


def _in_scan(x):
    def body(carry, xi):
        return carry, _stopped(xi)

    return lax.scan(body, 0.0, x)[1]


def _in_cond(x):
    return lax.cond(jnp.sum(x) > -10, _stopped, lambda a: a, x)


def _around_jitted(x):
    with jaxfunc.no_grad():
        c = jax.jit(lambda a: a**2)(x)
    return x - c


@pytest.mark.parametrize("g", [_stopped, _jitted_helper, _in_scan, _in_cond, _around_jitted])
def test_no_grad_everywhere(g):
    # x - nograd(x^2): reverse mode sees the identity; forward mode ignores no_grad.
    for _ in range(3):  # compiled from the first call, then reused
        np.testing.assert_allclose(TF.vjp(g, X)[1](V)[0], V)
        np.testing.assert_allclose(AF.vjp(g, X, V)[1], V)
    np.testing.assert_allclose(jax.jit(lambda x: TF.vjp(g, x)[1](V)[0])(X), V)
    np.testing.assert_allclose(TF.jvp(g, (X,), (V,))[1], (1 - 2 * X) * V)


def test_no_grad_under_vmap_and_second_order():
    np.testing.assert_allclose(
        jax.vmap(TF.grad(lambda x: jnp.sum(_stopped(x))))(XB), jnp.ones((3, 3))
    )

    def g(x):
        with jaxfunc.no_grad():
            c = x**2
        return x**2 - c

    np.testing.assert_allclose(TF.grad(TF.grad(g))(jnp.asarray(1.5)), 2.0)


def test_no_grad_as_decorator():
    @jaxfunc.no_grad()
    def constant_square(x):
        return x**2

    @jaxfunc.no_grad
    def constant_cube(x):
        return x**3

    g = TF.grad(lambda x: jnp.sum(x - constant_square(x) - constant_cube(x)))(X)
    np.testing.assert_allclose(g, jnp.ones(3))
