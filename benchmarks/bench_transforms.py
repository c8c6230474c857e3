"""Transforms benchmark (issue 4): Jacobian, Hessian and per-sample gradients against torch.

- ``autograd.functional.jacobian(vectorize=True)`` of a 3-layer tanh MLP R^128 -> R^128;
- ``autograd.functional.hessian`` of a scalar function of 100 inputs;
- per-sample gradients ``func.vmap(func.grad(loss), in_dims=(None, 0, 0))``, batch 256;

each against torch's own function, raw JAX and a hand-written ``jax.jit``, with results
checked against hand-derived derivatives. Writes ``results/transforms_{cpu,gpu}.md`` and
``.json``, and prints PASS/MISS per target.

    JAX_PLATFORMS=cpu python benchmarks/bench_transforms.py [--quick] [--device cpu|gpu]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import _models
import _timing as T
import jax
import jax.numpy as jnp
import numpy as np
from _timing import Env, Target, Variant, torch

import jaxfunc
from jaxfunc.autograd import functional as AF

if torch is not None:
    import torch.autograd.functional as TAF
    import torch.func

HAND = "hand-written jax.jit"
JAC_J = "jaxfunc AF.jacobian(vectorize=True)"
JAC_T = "torch AF.jacobian(vectorize=True)"
JACREV_T = "torch.func.jacrev"
HESS_J = "jaxfunc AF.hessian"
HESS_T = "torch AF.hessian(vectorize=True)"
HESSF_T = "torch.func.hessian"
PSG_J = "jaxfunc func.vmap(func.grad(loss))"
PSG_T = "torch.func.vmap(torch.func.grad(loss))"

MLP_WIDTH = 128
HESS_INPUTS = 100
HESS_ROWS = 64
PSG_SIZES = [32, 64, 64, 1]
PSG_BATCH = 256


# -- Jacobian of an MLP -------------------------------------------------------------------------


def make_mlp(lib: Any, params: Any) -> Callable[[Any], Any]:
    """A new function object each call: each jaxfunc variant gets its own cache entry."""

    def mlp(x):
        return _models.forward(lib, params, x)

    return mlp


def jacobian_variants(env: Env) -> T.Prepared:
    params_np = _models.init([MLP_WIDTH] * 4, seed=10)
    x_np = np.random.default_rng(11).normal(size=MLP_WIDTH)
    params, x = _models.as_jax(params_np, env.put), env.put(x_np)
    f_af, f_jacrev, f_raw = (make_mlp(jnp, params) for _ in range(3))
    hand = jax.jit(jax.jacrev(make_mlp(jnp, params)))
    variants = [
        Variant(JAC_J, lambda: AF.jacobian(f_af, x, vectorize=True), "jax", JAC_T, HAND),
        Variant(
            "jaxfunc func.jacrev(f)(x)",
            lambda: jaxfunc.func.jacrev(f_jacrev)(x),
            "jax",
            JACREV_T,
            HAND,
        ),
        Variant("jax.jacrev eager", lambda: jax.jacrev(f_raw)(x), "jax", JAC_T, HAND),
        Variant(HAND, lambda: hand(x), "jax", JAC_T),
    ]
    if env.torch_device:
        ft = make_mlp(torch, [(env.tensor(W), env.tensor(b)) for W, b in params_np])
        xt = env.tensor(x_np)
        variants += [
            Variant(JAC_T, lambda: TAF.jacobian(ft, xt, vectorize=True), "torch", None, HAND),
            Variant(JACREV_T, lambda: torch.func.jacrev(ft)(xt), "torch", None, HAND),
        ]

    def warm():  # throwaway function objects: their eager calls compile the shapes' kernels
        def fresh():
            return make_mlp(jnp, params)

        return (
            AF.jacobian(fresh(), x, vectorize=True),
            jaxfunc.func.jacrev(fresh())(x),
            jax.jacrev(fresh())(x),
        )

    return variants, [_models.jacobian(params_np, x_np)], warm


# -- Hessian of a scalar function ---------------------------------------------------------------


def make_scalar(lib: Any, a: Any) -> Callable[[Any], Any]:
    """``sum(log cosh(A x)) + sum(x**4) / 4``: a new function object each call."""

    def f(x):
        return lib.log(lib.cosh(a @ x)).sum() + (x**4).sum() / 4

    return f


def hessian_variants(env: Env) -> T.Prepared:
    rng = np.random.default_rng(12)
    a_np = rng.normal(0.0, 1.0 / np.sqrt(HESS_INPUTS), (HESS_ROWS, HESS_INPUTS))
    x_np = rng.normal(size=HESS_INPUTS)
    a, x = env.put(a_np), env.put(x_np)
    f_af, f_once, f_inline, f_raw = (make_scalar(jnp, a) for _ in range(4))
    hessian_once = jaxfunc.func.hessian(f_once)
    hand = jax.jit(jax.hessian(make_scalar(jnp, a)))
    variants = [
        Variant(HESS_J, lambda: AF.hessian(f_af, x), "jax", HESS_T, HAND),
        Variant(
            "jaxfunc func.hessian(f), built once",
            lambda: hessian_once(x),
            "jax",
            HESSF_T,
            HAND,
        ),
        Variant(
            "jaxfunc func.hessian(f)(x), inline",
            lambda: jaxfunc.func.hessian(f_inline)(x),
            "jax",
            HESSF_T,
            HAND,
        ),
        Variant("jax.hessian eager", lambda: jax.hessian(f_raw)(x), "jax", HESS_T, HAND),
        Variant(HAND, lambda: hand(x), "jax", HESS_T),
    ]
    if env.torch_device:
        ft, xt = make_scalar(torch, env.tensor(a_np)), env.tensor(x_np)
        variants += [
            Variant(HESS_T, lambda: TAF.hessian(ft, xt, vectorize=True), "torch", None, HAND),
            Variant("torch AF.hessian (loop)", lambda: TAF.hessian(ft, xt), "torch", None, HAND),
            Variant(HESSF_T, lambda: torch.func.hessian(ft)(xt), "torch", None, HAND),
        ]
    sech2 = 1.0 / np.cosh(a_np @ x_np) ** 2
    expected = a_np.T @ (sech2[:, None] * a_np) + np.diag(3 * x_np**2)

    def warm():  # throwaway function objects: their eager calls compile the shapes' kernels
        def fresh():
            return make_scalar(jnp, a)

        return AF.hessian(fresh(), x), jaxfunc.func.hessian(fresh())(x), jax.hessian(fresh())(x)

    return variants, [expected], warm


# -- per-sample gradients -----------------------------------------------------------------------


def loss_jax(params, x, y):
    return _models.mse(jnp, params, x, y)


def loss_torch(params, x, y):
    return _models.mse(torch, params, x, y)


def per_sample_variants(env: Env) -> T.Prepared:
    params_np = _models.init(PSG_SIZES, seed=13)
    rng = np.random.default_rng(14)
    x_np = rng.normal(size=(PSG_BATCH, PSG_SIZES[0]))
    y_np = rng.normal(size=(PSG_BATCH, PSG_SIZES[-1]))
    params, x, y = _models.as_jax(params_np, env.put), env.put(x_np), env.put(y_np)
    # Built once, as in torch.func's per-sample-gradients tutorial; "rebuilt" is the same
    # transform written inline at the call site (a new grad wrapper object every call).
    psg = jaxfunc.func.vmap(jaxfunc.func.grad(loss_jax), in_dims=(None, 0, 0))
    raw = jax.vmap(jax.grad(loss_jax), in_axes=(None, 0, 0))
    hand = jax.jit(raw)

    def rebuilt():
        return jaxfunc.func.vmap(jaxfunc.func.grad(loss_jax), in_dims=(None, 0, 0))(params, x, y)

    variants = [
        Variant(PSG_J, lambda: psg(params, x, y), "jax", PSG_T, HAND),
        Variant(f"{PSG_J}, rebuilt every call", rebuilt, "jax", PSG_T, HAND),
        Variant("jax.vmap(jax.grad) eager", lambda: raw(params, x, y), "jax", PSG_T, HAND),
        Variant(HAND, lambda: hand(params, x, y), "jax", PSG_T),
    ]
    if env.torch_device:
        params_t = [(env.tensor(W), env.tensor(b)) for W, b in params_np]
        xt, yt = env.tensor(x_np), env.tensor(y_np)
        psg_t = torch.func.vmap(torch.func.grad(loss_torch), in_dims=(None, 0, 0))
        variants.append(Variant(PSG_T, lambda: psg_t(params_t, xt, yt), "torch", None, HAND))
    expected = _models.per_sample_mse_grads(params_np, x_np, y_np)
    return variants, T.leaves(expected), lambda: (rebuilt(), raw(params, x, y))


# -- report -------------------------------------------------------------------------------------


def targets(jac: T.Benchmark, hess: T.Benchmark, psg: T.Benchmark, env: Env) -> list[Target]:
    if not env.torch_device:
        return []
    return [
        Target(
            f"Jacobian, MLP R^{MLP_WIDTH}->R^{MLP_WIDTH}: {JAC_J} vs torch's",
            jac.ratio(JAC_J, JAC_T),
            0.5,
        ),
        Target(
            f"Hessian, {HESS_INPUTS} inputs: {HESS_J} vs torch's hessian(vectorize=True)",
            hess.ratio(HESS_J, HESS_T),
            0.5,
        ),
        Target(
            f"per-sample gradients, batch {PSG_BATCH}: {PSG_J} vs torch.func's",
            psg.ratio(PSG_J, PSG_T),
            0.5,
        ),
    ]


def markdown(benches: list[T.Benchmark], tgts: list[Target], env: Env, info: dict) -> str:
    parts = [T.header("jaxfunc transforms benchmark", env, info), T.targets_section(tgts)]
    if not env.torch_device:
        parts.append(f"Targets against torch skipped: {env.torch_skip_reason}.\n")
    parts += [
        "## Steady state",
        "",
        T.STEADY_NOTE,
        "jaxfunc ignores `vectorize` (it always vectorizes); torch's `AF.hessian (loop)` is its",
        "default `vectorize=False`, one backward pass per row.",
        "",
        T.steady_table(benches),
        "",
        "## First calls of each variant",
        "",
        T.FIRST_CALLS_NOTE,
        "",
        T.first_calls_table(benches),
        "",
    ]
    return "\n".join(parts)


def main() -> None:
    args = T.parser(__doc__.splitlines()[0]).parse_args()
    load_before = os.getloadavg()
    env = T.setup(args)
    jac = T.run(
        f"Jacobian: 3-layer tanh MLP R^{MLP_WIDTH}->R^{MLP_WIDTH}",
        f"{MLP_WIDTH}x{MLP_WIDTH}",
        jacobian_variants(env),
        env,
    )
    hess = T.run(
        "Hessian: sum(log cosh(Ax)) + sum(x^4)/4",
        f"{HESS_INPUTS} inputs",
        hessian_variants(env),
        env,
    )
    psg = T.run(
        f"per-sample gradients: MLP {PSG_SIZES}",
        f"batch {PSG_BATCH}",
        per_sample_variants(env),
        env,
    )
    benches = [jac, hess, psg]
    info = T.environment(env, load_before)
    tgts = targets(jac, hess, psg, env)
    T.RESULTS.mkdir(exist_ok=True)
    out = T.RESULTS / f"transforms_{env.tag}"
    out.with_suffix(".md").write_text(markdown(benches, tgts, env, info))
    T.write_json(
        out.with_suffix(".json"),
        {
            "environment": info,
            "steady": T.steady_json(benches),
            "targets": T.targets_json(tgts),
        },
    )
    T.print_targets(tgts)
    print(f"\nwrote {out}.md, .json")


if __name__ == "__main__":
    main()
