"""The compile cache's own costs (issue 11's targets), each against raw JAX in the same run.

- overhead of a cached call over a hand-written ``jax.jit`` of the same computation: a
  trivial function (N=10), and a function reading a 300-entry parameter dict;
- the NTK tutorial's pattern, the differentiated function defined inside its caller (a new
  closure at each call), against the same function at module level, from the third call;
- memory: RSS after 400 functions, each with its own code, run through every transform and
  dropped, against the same done with raw ``jax.jit``.

Timings: interleaved rounds, median of per-round means (the machine is shared: ratios, not
absolute numbers). ``--quick`` for a smoke run. Writes ``results/cache_cpu.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np

import jaxfunc
import jaxfunc.autograd.functional as AF
import jaxfunc.func as TF

RESULTS = Path(__file__).resolve().parent / "results"


def interleaved(
    variants: dict[str, Callable[[], Any]], rounds: int, calls: int
) -> dict[str, float]:
    """Median over rounds of the mean µs per call, variants interleaved within each round."""
    for fn in variants.values():
        for _ in range(3):
            jax.block_until_ready(fn())
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = variants[name]
            t0 = time.perf_counter()
            for _ in range(calls):
                jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - t0) / calls * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


def overheads(rounds: int, calls: int) -> list[str]:
    rows = []
    x = jnp.linspace(0.0, 1.0, 10)
    v = jnp.ones(10)

    def f(x):
        return x * 2.0

    def hand_vjp(x, v):  # what AF.vjp returns: the output and the product
        out, pullback = jax.vjp(f, x)
        return out, pullback(v)[0]

    hand = jax.jit(hand_vjp)
    t = interleaved({"jaxfunc": lambda: AF.vjp(f, x, v), "jit": lambda: hand(x, v)}, rounds, calls)
    rows.append(("trivial f, AF.vjp, N=10", t["jaxfunc"], t["jit"]))

    rng = np.random.default_rng(0)
    params = {f"layer{i}.weight": jnp.asarray(rng.normal(size=4)) for i in range(300)}

    def loss(x):
        return sum(jnp.sum(w * x) for w in params.values())

    x4 = jnp.ones(4)
    hand_dict = jax.jit(lambda p, x: jax.grad(lambda x: sum(jnp.sum(w * x) for w in p.values()))(x))
    t = interleaved(
        {"jaxfunc": lambda: TF.grad(loss)(x4), "jit": lambda: hand_dict(params, x4)},
        rounds,
        calls,  # (a ~200 µs call: with 20 calls a round, rounds differed by ±5 µs)
    )
    rows.append(("f reading a 300-entry parameter dict (global), grad", t["jaxfunc"], t["jit"]))
    return [
        f"| {name} | {ours:,.1f} | {jit:,.1f} | {ours - jit:+,.1f} |" for name, ours, jit in rows
    ]


def _mlp(x: Any, p: dict[str, Any]) -> Any:
    return jnp.tanh(x @ p["w1"]) @ p["w2"]


def ntk_inside(params: dict[str, Any], x1: Any, x2: Any) -> Any:
    def f1(p):
        return _mlp(x1, p)

    def f2(p):
        return _mlp(x2, p)

    return _contract(TF.jacrev(f1)(params), TF.jacrev(f2)(params))


def _contract(j1: Any, j2: Any) -> Any:
    return sum(
        jnp.einsum("af,bf->ab", a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1))
        for a, b in zip(jax.tree_util.tree_leaves(j1), jax.tree_util.tree_leaves(j2))
    )


def _f_module(p: dict[str, Any], x: Any) -> Any:
    return _mlp(x, p)


def ntk_module(params: dict[str, Any], x1: Any, x2: Any) -> Any:
    return _contract(TF.jacrev(_f_module)(params, x1), TF.jacrev(_f_module)(params, x2))


def ntk(rounds: int, calls: int) -> list[str]:
    rng = np.random.default_rng(1)
    params = {"w1": jnp.asarray(rng.normal(size=(8, 32))), "w2": jnp.asarray(rng.normal(size=32))}
    x1, x2 = (jnp.asarray(rng.normal(size=(16, 8))) for _ in range(2))
    np.testing.assert_allclose(ntk_inside(params, x1, x2), ntk_module(params, x1, x2), rtol=1e-5)
    t = interleaved(
        {
            "inside": lambda: ntk_inside(params, x1, x2),
            "module": lambda: ntk_module(params, x1, x2),
        },
        rounds,
        calls,
    )
    return [
        f"| NTK, jacrev of a closure made per call | {t['inside']:,.1f} |",
        f"| NTK, jacrev of a module-level function | {t['module']:,.1f} |",
        f"| ratio (target <= 1.2) | {t['inside'] / t['module']:.2f} |",
    ]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _new_function(i: int) -> Any:
    ns: dict[str, Any] = {"jnp": jnp}
    exec(f"def f(x):\n    return jnp.sin(x) * {i + 1}.0 + x ** 2\n", ns)
    return ns["f"]


X = jnp.asarray([0.3, -0.7, 1.1])


def _every_transform(f: Any) -> None:
    s = lambda x: jnp.sum(f(x))
    vjp_fn = TF.vjp(f, X)[1]
    vjp_fn(jnp.ones(3))
    TF.vmap(vjp_fn)(jnp.ones((2, 3)))
    TF.jvp(f, (X,), (X,))
    TF.grad(s)(X)
    TF.jacrev(f)(X)
    TF.jacfwd(f)(X)
    TF.hessian(s)(X)
    TF.linearize(f, X)[1](X)
    TF.vmap(f)(jnp.ones((2, 3)))
    AF.vjp(f, X, X)
    AF.hessian(s, X)


def _raw(f: Any) -> None:
    s = lambda x: jnp.sum(f(x))
    jax.jit(lambda x: jax.vjp(f, x)[1](x))(X)
    jax.jit(jax.grad(s))(X)
    jax.jit(jax.jacrev(f))(X)
    jax.jit(jax.hessian(s))(X)


def memory(n: int) -> list[str]:
    """RSS growth over ``n`` functions after 20 warm-up ones, and over the last three
    quarters alone. The functions are made by ``exec`` in a namespace that holds them: each
    is in a reference cycle (``f.__globals__["f"] is f``), so it and the programs the cache
    keeps for it are freed by the cycle collector, some functions late; the allocator's
    high-water of those rises over the first few dozen functions and then stays. The second
    column shows whether anything grows per function after that."""
    rows = []
    for name, use in (("jaxfunc, every transform", _every_transform), ("raw jax.jit", _raw)):
        for i in range(20):
            use(_new_function(i))
        gc.collect()
        before = _rss_mb()
        quarter = before
        for i in range(20, 20 + n):
            use(_new_function(i))
            if i == 20 + n // 4:
                gc.collect()
                quarter = _rss_mb()
        gc.collect()
        after = _rss_mb()
        rows.append(f"| {name} | {n} | {after - before:+,.1f} | {after - quarter:+,.1f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    rounds, calls, n = (3, 20, 30) if args.quick else (9, 200, 400)
    load = os.getloadavg()
    lines = [
        "# Compile cache costs (benchmarks/bench_cache.py)",
        "",
        f"jaxfunc {jaxfunc.__version__}, jax {jax.__version__}, {jax.devices()[0]}, float64; "
        f"load average before {load[0]:.1f}"
        + (" — QUICK RUN, not for quoting" if args.quick else ""),
        "",
        "| cached call | jaxfunc µs | hand-written jit µs | overhead µs |",
        "|---|---|---|---|",
        *overheads(rounds, calls),
        "",
        "| pattern | µs per call |",
        "|---|---|",
        *ntk(rounds, max(calls // 20, 3)),
        "",
        "| dropped functions | how many | RSS growth MB | over the last three quarters MB |",
        "|---|---|---|---|",
        *memory(n),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "cache_cpu.md").write_text(text)


if __name__ == "__main__":
    main()
