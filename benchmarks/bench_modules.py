"""Modules benchmark (issue 12): per-sample gradients and model ensembling through
``functional_call`` on an Equinox MLP, against the hand-written parameter-dict version of the
same jaxfunc calls and against torch.func's tutorials.

- per-sample gradients (torch.func's tutorial): ``vmap(grad(compute_loss), in_dims=(None,
  None, 0, 0))(params, buffers, data, targets)``, ``compute_loss`` calling
  ``functional_call(model, (params, buffers), (sample[None],))``; MLP 784-128-128-10 with
  log-softmax and NLL loss, batch 64;
- ensembling (torch.func's tutorial): ``stack_module_state`` of 10 such MLPs, then
  ``vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)``, minibatch 64.

The "hand-written" variants are the same jaxfunc transforms on a function of a parameter
dict that does the MLP's arithmetic itself (what a port without modules writes). Every
variant's result is checked against the hand-written ``jax.jit`` of the computation. Float64
throughout, as the other benchmarks. Writes ``results/modules_{cpu,gpu}.{md,json}``.

    python benchmarks/bench_modules.py [--quick] [--device cpu]
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import _timing as T
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _timing import Env, Target, Variant

import jaxfunc
from jaxfunc.func import functional_call, grad, named_buffers, named_parameters, vmap

try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F
except ImportError:  # the torch variants are skipped
    torch = None

SIZES = [784, 128, 128, 10]  # the tutorials' MLP: memory-bound, overheads vanish in it
SMALL = [16, 32, 32, 4]  # small enough that per-call overheads would show
BATCH = 64
MODELS = 10

PSG_M = "jaxfunc vmap(grad) through functional_call (Equinox)"
PSG_H = "jaxfunc vmap(grad) on a parameter dict (hand-written)"
PSG_T = "torch.func vmap(grad) through functional_call"
PSG_JIT = "jax.jit(jax.vmap(jax.grad)) on a parameter dict"
ENS_M = "jaxfunc vmap(functional_call) on stack_module_state (Equinox)"
ENS_H = "jaxfunc vmap on stacked parameter dicts (hand-written)"
ENS_T = "torch.func vmap(functional_call) on stack_module_state"
ENS_JIT = "jax.jit(jax.vmap) on stacked parameter dicts"


# -- the model, three ways ------------------------------------------------------------------------


class MLP(eqx.Module):
    """torch's ``nn.Sequential(Linear, ReLU, Linear, ReLU, Linear)`` on a batch, with
    log-softmax: weights stored (out, in) as torch and Equinox store them."""

    layers: list

    def __init__(self, key: Any, sizes: list[int]) -> None:
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = [
            eqx.nn.Linear(m, n, key=k) for (m, n), k in zip(itertools.pairwise(sizes), keys)
        ]

    def __call__(self, x: Any) -> Any:
        for layer in self.layers[:-1]:
            x = jax.nn.relu(x @ layer.weight.T + layer.bias)
        x = x @ self.layers[-1].weight.T + self.layers[-1].bias
        return jax.nn.log_softmax(x, axis=-1)


def forward_dict(params: dict[str, Any], x: Any) -> Any:
    """The same arithmetic from a parameter dict (the port without modules)."""
    n = len(params) // 2
    for i in range(n):
        x = x @ params[f"layers.{i}.weight"].T + params[f"layers.{i}.bias"]
        if i < n - 1:
            x = jax.nn.relu(x)
    return jax.nn.log_softmax(x, axis=-1)


def nll(logp: Any, targets: Any) -> Any:
    return -jnp.take_along_axis(logp, targets[:, None], axis=-1).mean()


def torch_model(params: dict[str, np.ndarray]) -> Any:
    layers: list[Any] = []
    n_layers = len(params) // 2
    for i in range(n_layers):
        n, m = params[f"layers.{i}.weight"].shape
        layers.append(tnn.Linear(m, n))
        if i < n_layers - 1:
            layers.append(tnn.ReLU())
    model = tnn.Sequential(*layers).double()
    with torch.no_grad():
        for i, lin in enumerate(m for m in model if isinstance(m, tnn.Linear)):
            lin.weight.copy_(torch.from_numpy(params[f"layers.{i}.weight"]))
            lin.bias.copy_(torch.from_numpy(params[f"layers.{i}.bias"]))
    return model


def _torch_names(name: str) -> str:
    """``layers.1.weight`` (Equinox's list) -> ``2.weight`` (torch's Sequential, ReLUs between)."""
    _, i, what = name.split(".")
    return f"{2 * int(i)}.{what}"


# -- per-sample gradients ---------------------------------------------------------------------------


def per_sample_variants(env: Env, sizes: list[int]) -> T.Prepared:
    model = jax.device_put(MLP(jax.random.key(0), sizes), env.jax_device)
    model = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), model)
    params, buffers = named_parameters(model), named_buffers(model)
    rng = np.random.default_rng(1)
    data = env.put(rng.normal(size=(BATCH, sizes[0])))
    targets = env.put(rng.integers(0, sizes[-1], BATCH))

    def compute_loss(params, buffers, sample, target):  # the tutorial's, ported
        batch, tgt = sample[None], target[None]
        predictions = functional_call(model, (params, buffers), (batch,))
        return nll(predictions, tgt)

    def loss_dict(params, sample, target):
        return nll(forward_dict(params, sample[None]), target[None])

    psg_m = vmap(grad(compute_loss), in_dims=(None, None, 0, 0))
    psg_h = vmap(grad(loss_dict), in_dims=(None, 0, 0))
    hand = jax.jit(jax.vmap(jax.grad(loss_dict), in_axes=(None, 0, 0)))
    variants = [
        Variant(
            PSG_M, lambda: _leaves(psg_m(params, buffers, data, targets)), "jax", PSG_T, PSG_JIT
        ),
        Variant(PSG_H, lambda: _leaves(psg_h(params, data, targets)), "jax", PSG_T, PSG_JIT),
        Variant(PSG_JIT, lambda: _leaves(hand(params, data, targets)), "jax", PSG_T),
    ]
    if env.torch_device:
        tm = torch_model({k: np.asarray(v) for k, v in params.items()}).to(env.torch_device)
        tparams = {k: v.detach() for k, v in tm.named_parameters()}
        tbuffers = {k: v.detach() for k, v in tm.named_buffers()}
        tdata, ttargets = env.tensor(np.asarray(data)), env.tensor(np.asarray(targets))

        def compute_loss_t(params, buffers, sample, target):  # the tutorial's, as written
            batch, tgt = sample.unsqueeze(0), target.unsqueeze(0)
            predictions = torch.func.functional_call(tm, (params, buffers), (batch,))
            return F.nll_loss(F.log_softmax(predictions, dim=-1), tgt)

        psg_t = torch.func.vmap(torch.func.grad(compute_loss_t), in_dims=(None, None, 0, 0))
        order = [_torch_names(k) for k in sorted(params)]

        def run_t():
            g = psg_t(tparams, tbuffers, tdata, ttargets)
            return [g[k] for k in order]

        variants.append(Variant(PSG_T, run_t, "torch", None, PSG_JIT))
    expected = [np.asarray(a) for a in _leaves(hand(params, data, targets))]

    def warm():  # a throwaway function: compiles the shapes' kernels, not a variant's program
        fresh = vmap(grad(lambda p, s, t: loss_dict(p, s, t)), in_dims=(None, 0, 0))
        return fresh(params, data, targets)

    return variants, expected, warm


def _leaves(d: dict[str, Any]) -> list[Any]:
    """By name: jaxfunc keeps the dict's order, jax.grad sorts it."""
    return [d[k] for k in sorted(d)]


# -- ensembling -------------------------------------------------------------------------------------


def ensemble_variants(env: Env, sizes: list[int]) -> T.Prepared:
    models = [
        jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), MLP(k, sizes))
        for k in jax.random.split(jax.random.key(2), MODELS)
    ]
    models = jax.device_put(models, env.jax_device)
    params, buffers = jaxfunc.func.stack_module_state(models)
    base = models[0]
    minibatch = env.put(np.random.default_rng(3).normal(size=(BATCH, sizes[0])))

    def fmodel(params, buffers, x):  # the tutorial's, ported
        return functional_call(base, (params, buffers), (x,))

    ens_m = vmap(fmodel, in_dims=(0, 0, None))
    ens_h = vmap(forward_dict, in_dims=(0, None))
    hand = jax.jit(jax.vmap(forward_dict, in_axes=(0, None)))
    variants = [
        Variant(ENS_M, lambda: ens_m(params, buffers, minibatch), "jax", ENS_T, ENS_JIT),
        Variant(ENS_H, lambda: ens_h(params, minibatch), "jax", ENS_T, ENS_JIT),
        Variant(ENS_JIT, lambda: hand(params, minibatch), "jax", ENS_T),
    ]
    if env.torch_device:
        tms = [
            torch_model({k: np.asarray(v)[i] for k, v in params.items()}).to(env.torch_device)
            for i in range(MODELS)
        ]
        tparams, tbuffers = torch.func.stack_module_state(tms)
        tbase = torch_model({k: np.asarray(v)[0] for k, v in params.items()}).to("meta")
        tmb = env.tensor(np.asarray(minibatch))

        def fmodel_t(params, buffers, x):  # the tutorial's, as written
            return F.log_softmax(torch.func.functional_call(tbase, (params, buffers), (x,)), -1)

        ens_t = torch.func.vmap(fmodel_t, in_dims=(0, 0, None))
        variants.append(
            Variant(ENS_T, lambda: ens_t(tparams, tbuffers, tmb), "torch", None, ENS_JIT)
        )
    expected = [np.asarray(hand(params, minibatch))]

    def warm():  # a throwaway function: compiles the shapes' kernels, not a variant's program
        return vmap(lambda p, x: forward_dict(p, x), in_dims=(0, None))(params, minibatch)

    return variants, expected, warm


# -- report -----------------------------------------------------------------------------------------


def targets(benches: list[T.Benchmark]) -> list[Target]:
    out = []
    for b in benches:
        psg = PSG_M in b.timings
        mine, ref = (PSG_M, PSG_H) if psg else (ENS_M, ENS_H)
        what = "per-sample gradients" if psg else "ensembling"
        out.append(
            Target(
                f"{what}, {b.case.split(': ', 1)[1]}: functional_call (Equinox) vs "
                "hand-written parameter dicts",
                b.ratio(mine, ref),
                1.1,
            )
        )
    return out


def against_torch(benches: list[T.Benchmark]) -> list[str]:
    lines = []
    for b in benches:
        mine, ref = (PSG_M, PSG_T) if PSG_M in b.timings else (ENS_M, ENS_T)
        r = b.ratio(mine, ref)
        if r is not None:
            lines.append(f"{b.case}: jaxfunc {r:.2f}× torch.func")
    return lines


def markdown(benches: list[T.Benchmark], tgts: list[Target], env: Env, info: dict) -> str:
    torch_lines = against_torch(benches) or [f"(torch skipped: {env.torch_skip_reason})"]
    parts = [
        T.header("jaxfunc modules benchmark", env, info),
        "One run on a shared 2-core machine that other jobs were using at the same time: the",
        "ratios between variants of one run are what to read, not the absolute times.",
        "",
        T.targets_section(tgts),
        "## Against torch.func (printed, no target)",
        "",
        "```",
        *torch_lines,
        "```",
        "",
        "## Steady state",
        "",
        T.STEADY_NOTE,
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
    env.use_dtype("float64")  # the models here are float64 (torch's default follows)
    benches = []
    for sizes in (SMALL, SIZES):
        benches.append(
            T.run(
                f"per-sample gradients: Equinox MLP {sizes}",
                f"batch {BATCH}",
                per_sample_variants(env, sizes),
                env,
            )
        )
        benches.append(
            T.run(
                f"ensembling: {MODELS} Equinox MLPs {sizes}",
                f"minibatch {BATCH}",
                ensemble_variants(env, sizes),
                env,
            )
        )
    info = T.environment(env, load_before)
    tgts = targets(benches)
    T.RESULTS.mkdir(exist_ok=True)
    out = T.RESULTS / f"modules_{env.tag}"
    out.with_suffix(".md").write_text(markdown(benches, tgts, env, info))
    T.write_json(
        out.with_suffix(".json"),
        {
            "environment": info,
            "steady": T.steady_json(benches),
            "targets": T.targets_json(tgts),
            "against_torch": against_torch(benches),
        },
    )
    T.print_targets(tgts)
    print("\nAgainst torch.func:")
    for line in against_torch(benches):
        print("  " + line)
    print(f"\nwrote {out}.md, .json")


if __name__ == "__main__":
    main()
