"""Transforms benchmark (issue 4): Jacobian, Hessian and per-sample gradients against torch.

- ``autograd.functional.jacobian(vectorize=True)`` of a 3-layer tanh MLP R^128 -> R^128;
- ``autograd.functional.hessian`` of a scalar function of 100 inputs;
- per-sample gradients ``func.vmap(func.grad(loss), in_dims=(None, 0, 0))``, batch 256;
- the torch.func tutorials, with models written as functions of a parameter dict
  (``dict(model.named_parameters())``): per-sample gradients of a cross-entropy loss, model
  ensembling (``vmap`` over stacked parameters), the empirical NTK (``vmap(jacrev)`` and a
  contraction);

each against torch's own function, raw JAX and a hand-written ``jax.jit``, with results
checked against hand-derived derivatives, in float32 and float64 (``--dtype``). Writes ``results/transforms_{cpu,gpu}.md`` and
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
    params_np = _models.rounded(_models.init([MLP_WIDTH] * 4, seed=10), env.rounded)
    x_np = env.rounded(np.random.default_rng(11).normal(size=MLP_WIDTH))
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
    a_np = env.rounded(rng.normal(0.0, 1.0 / np.sqrt(HESS_INPUTS), (HESS_ROWS, HESS_INPUTS)))
    x_np = env.rounded(rng.normal(size=HESS_INPUTS))
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
    params_np = _models.rounded(_models.init(PSG_SIZES, seed=13), env.rounded)
    rng = np.random.default_rng(14)
    x_np = env.rounded(rng.normal(size=(PSG_BATCH, PSG_SIZES[0])))
    y_np = env.rounded(rng.normal(size=(PSG_BATCH, PSG_SIZES[-1])))
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


# -- the torch.func tutorials, models as functions of a parameter dict ---------------------------

TUT_PSG = "jaxfunc func.vmap(func.grad(ce_loss))"
TUT_PSG_T = "torch.func.vmap(torch.func.grad(ce_loss))"
TUT_PSG_SIZES = [64, 128, 10]
TUT_PSG_BATCH = 64
ENS = "jaxfunc func.vmap(model, in_dims=(0, None))"
ENS_T = "torch.func.vmap(model, in_dims=(0, None))"
ENS_MODELS = 10
ENS_SIZES = [64, 128, 128, 10]
ENS_BATCH = 64
NTK = "jaxfunc func.vmap(func.jacrev(f)) + einsum"
NTK_T = "torch.func.vmap(torch.func.jacrev(f)) + einsum"
NTK_SIZES = [32, 64, 64, 8]
NTK_BATCHES = (32, 16)


def _put_dict(params: dict[str, np.ndarray], put: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    return {k: put(v) for k, v in params.items()}


def _ce_jax(params, x, t):
    """Cross-entropy of one sample, as torch's tutorial computes it on a batch of one."""
    z = _models.forward_dict(jnp, params, x[None])[0]
    return -jax.nn.log_softmax(z)[t]


def _ce_torch(params, x, t):
    z = _models.forward_dict(torch, params, x[None])
    return torch.nn.functional.cross_entropy(z, t[None])


def tutorial_per_sample_variants(env: Env) -> T.Prepared:
    params_np = {k: env.rounded(v) for k, v in _models.init_dict(TUT_PSG_SIZES, seed=20).items()}
    rng = np.random.default_rng(21)
    x_np = env.rounded(rng.normal(size=(TUT_PSG_BATCH, TUT_PSG_SIZES[0])))
    t_np = rng.integers(0, TUT_PSG_SIZES[-1], TUT_PSG_BATCH)
    params, x, t = _put_dict(params_np, env.put), env.put(x_np), env.put(t_np)
    psg = jaxfunc.func.vmap(jaxfunc.func.grad(_ce_jax), in_dims=(None, 0, 0))
    raw = jax.vmap(jax.grad(_ce_jax), in_axes=(None, 0, 0))
    hand = jax.jit(raw)
    variants = [
        Variant(TUT_PSG, lambda: psg(params, x, t), "jax", TUT_PSG_T, HAND),
        Variant("jax.vmap(jax.grad) eager", lambda: raw(params, x, t), "jax", TUT_PSG_T, HAND),
        Variant(HAND, lambda: hand(params, x, t), "jax", TUT_PSG_T),
    ]
    if env.torch_device:
        params_t = _put_dict(params_np, env.tensor)
        xt, tt = env.tensor(x_np), env.tensor(t_np)
        psg_t = torch.func.vmap(torch.func.grad(_ce_torch), in_dims=(None, 0, 0))
        variants.append(Variant(TUT_PSG_T, lambda: psg_t(params_t, xt, tt), "torch", None, HAND))
    expected = _models.per_sample_ce_grads_dict(params_np, x_np, t_np)
    return variants, T.leaves(expected), lambda: raw(params, x, t)


def _model_jax(params, x):
    return _models.forward_dict(jnp, params, x)


def _model_torch(params, x):
    return _models.forward_dict(torch, params, x)


def ensemble_variants(env: Env) -> T.Prepared:
    models = [_models.init_dict(ENS_SIZES, seed=30 + i) for i in range(ENS_MODELS)]
    stacked_np = {k: env.rounded(np.stack([m[k] for m in models])) for k in models[0]}
    x_np = env.rounded(np.random.default_rng(31).normal(size=(ENS_BATCH, ENS_SIZES[0])))
    stacked, x = _put_dict(stacked_np, env.put), env.put(x_np)
    ens = jaxfunc.func.vmap(_model_jax, in_dims=(0, None))
    raw = jax.vmap(_model_jax, in_axes=(0, None))
    hand = jax.jit(raw)
    variants = [
        Variant(ENS, lambda: ens(stacked, x), "jax", ENS_T, HAND),
        Variant("jax.vmap eager", lambda: raw(stacked, x), "jax", ENS_T, HAND),
        Variant(HAND, lambda: hand(stacked, x), "jax", ENS_T),
    ]
    if env.torch_device:
        stacked_t, xt = _put_dict(stacked_np, env.tensor), env.tensor(x_np)
        ens_t = torch.func.vmap(_model_torch, in_dims=(0, None))
        variants.append(Variant(ENS_T, lambda: ens_t(stacked_t, xt), "torch", None, HAND))
    expected = np.stack(
        [
            _models.forward_dict(np, {k: v[i] for k, v in stacked_np.items()}, x_np)
            for i in range(ENS_MODELS)
        ]
    )
    return variants, [expected], lambda: raw(stacked, x)


def _f_single_jax(params, x):
    return _models.forward_dict(jnp, params, x[None])[0]


def _f_single_torch(params, x):
    return _models.forward_dict(torch, params, x[None])[0]


def _ntk_from(jac: Callable[..., Any], einsum: Callable[..., Any], params, x1, x2):
    """The tutorial's empirical NTK: per-sample Jacobians, contracted parameter by parameter."""
    j1, j2 = jac(params, x1), jac(params, x2)
    terms = [
        einsum("Naf,Mbf->NMab", a.reshape(a.shape[0], a.shape[1], -1), b.reshape(*b.shape[:2], -1))
        for a, b in zip(j1.values(), j2.values())
    ]
    return sum(terms[1:], terms[0])


def ntk_variants(env: Env) -> T.Prepared:
    params_np = {k: env.rounded(v) for k, v in _models.init_dict(NTK_SIZES, seed=40).items()}
    rng = np.random.default_rng(41)
    x1_np, x2_np = (env.rounded(rng.normal(size=(n, NTK_SIZES[0]))) for n in NTK_BATCHES)
    params, x1, x2 = _put_dict(params_np, env.put), env.put(x1_np), env.put(x2_np)
    jac_jf = jaxfunc.func.vmap(jaxfunc.func.jacrev(_f_single_jax), in_dims=(None, 0))
    jac_raw = jax.vmap(jax.jacrev(_f_single_jax), in_axes=(None, 0))
    hand = jax.jit(lambda p, a, b: _ntk_from(jac_raw, jnp.einsum, p, a, b))
    variants = [
        Variant(NTK, lambda: _ntk_from(jac_jf, jnp.einsum, params, x1, x2), "jax", NTK_T, HAND),
        Variant(
            "jax.vmap(jax.jacrev) eager + einsum",
            lambda: _ntk_from(jac_raw, jnp.einsum, params, x1, x2),
            "jax",
            NTK_T,
            HAND,
        ),
        Variant(HAND, lambda: hand(params, x1, x2), "jax", NTK_T),
    ]
    if env.torch_device:
        params_t = _put_dict(params_np, env.tensor)
        x1t, x2t = env.tensor(x1_np), env.tensor(x2_np)
        jac_t = torch.func.vmap(torch.func.jacrev(_f_single_torch), in_dims=(None, 0))
        variants.append(
            Variant(
                NTK_T,
                lambda: _ntk_from(jac_t, torch.einsum, params_t, x1t, x2t),
                "torch",
                None,
                HAND,
            )
        )
    expected = _models.ntk(
        _models.param_jacobian_dict(params_np, x1_np),
        _models.param_jacobian_dict(params_np, x2_np),
    )
    return variants, [expected], lambda: _ntk_from(jac_raw, jnp.einsum, params, x1, x2)


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


def run_dtype(env: Env) -> tuple[list[T.Benchmark], list[Target]]:
    """Every benchmark of this script in ``env.dtype``: (benchmarks, targets)."""
    tag = f", {env.dtype}"
    jac = T.run(
        f"Jacobian: 3-layer tanh MLP R^{MLP_WIDTH}->R^{MLP_WIDTH}",
        f"{MLP_WIDTH}x{MLP_WIDTH}{tag}",
        jacobian_variants(env),
        env,
    )
    hess = T.run(
        "Hessian: sum(log cosh(Ax)) + sum(x^4)/4",
        f"{HESS_INPUTS} inputs{tag}",
        hessian_variants(env),
        env,
    )
    psg = T.run(
        f"per-sample gradients: MLP {PSG_SIZES}",
        f"batch {PSG_BATCH}{tag}",
        per_sample_variants(env),
        env,
    )
    tutorials = [
        T.run(
            f"tutorial, per-sample gradients: MLP {TUT_PSG_SIZES}, cross-entropy, param dict",
            f"batch {TUT_PSG_BATCH}{tag}",
            tutorial_per_sample_variants(env),
            env,
        ),
        T.run(
            f"tutorial, ensembling: {ENS_MODELS} MLPs {ENS_SIZES}, stacked param dicts",
            f"batch {ENS_BATCH}{tag}",
            ensemble_variants(env),
            env,
        ),
        T.run(
            f"tutorial, empirical NTK: MLP {NTK_SIZES}, param dict",
            f"{NTK_BATCHES[0]}x{NTK_BATCHES[1]} samples{tag}",
            ntk_variants(env),
            env,
        ),
    ]
    tgts = targets(jac, hess, psg, env)
    for t in tgts:
        t.description = f"[{env.dtype}] {t.description}"
    return [jac, hess, psg, *tutorials], tgts


def main() -> None:
    args = T.parser(__doc__.splitlines()[0]).parse_args()
    load_before = os.getloadavg()
    env = T.setup(args)
    benches: list[T.Benchmark] = []
    tgts: list[Target] = []
    for dtype in env.dtypes:
        env.use_dtype(dtype)
        b, t = run_dtype(env)
        benches += b
        tgts += t
    info = T.environment(env, load_before)
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
