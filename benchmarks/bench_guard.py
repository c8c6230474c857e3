"""Per-call cost of the compile cache's guard, against a hand-written ``jax.jit``.

Cases (CPU, N=10 inputs, float64):

- ``trivial``: ``AF.vjp(x * 2)`` against a jit of ``jax.vjp`` + pullback (target: within
  5 µs);
- ``dict300``: ``func.grad`` of a function reading a 300-entry dict of parameter arrays
  from its closure, against a jit of ``jax.grad`` taking the dict as an argument (target:
  within 15 µs);
- ``numpy16MB``: ``func.grad`` of a function reading a 16 MB numpy global, against a jit
  taking it as an argument.

For each, the guard alone is timed too (``plan.guard(f)``). Timings are interleaved in
rounds; the figure is the median over rounds of the mean per call.

    JAX_PLATFORMS=cpu python benchmarks/bench_guard.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxfunc
from jaxfunc._jit import _cache
from jaxfunc.autograd import functional as AF

jax.config.update("jax_enable_x64", True)


def _per_call(fn: Callable[[], Any], n: int) -> float:
    jax.block_until_ready(fn())
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n


def _bench(variants: dict[str, Callable[[], Any]], rounds: int, n: int) -> dict[str, float]:
    for fn in variants.values():  # warm: the compile, then hits
        for _ in range(4):
            jax.block_until_ready(fn())
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(_per_call(variants[name], n))
    return {k: statistics.median(v) * 1e6 for k, v in times.items()} | {
        f"{k} (best round)": min(v) * 1e6 for k, v in times.items()
    }


def _guard_of(f: Any) -> Callable[[], Any]:
    plan = _cache._slots[f].entries[0].plan
    return lambda: plan.guard(f)


def trivial(rounds: int, n: int) -> dict[str, float]:
    x, v = jnp.arange(10.0), jnp.ones(10)

    def f(x):
        return x * 2

    hand = jax.jit(lambda x, v: jax.vjp(f, x)[1](v))
    AF.vjp(f, x, v)
    return _bench(
        {
            "jaxfunc AF.vjp": lambda: AF.vjp(f, x, v),
            "hand-written jit": lambda: hand(x, v),
            "guard alone": _guard_of(f),
        },
        rounds,
        n,
    )


def dict300(rounds: int, n: int) -> dict[str, float]:
    x = jnp.arange(10.0)
    params = {f"layer{i}.weight": jnp.full(10, 1.0 + i / 300) for i in range(300)}

    def loss(x, p):
        return sum(jnp.sum(w * x) for w in p.values())

    def f(x):
        return loss(x, params)

    hand = jax.jit(jax.grad(loss))
    g = jaxfunc.func.grad(f)
    g(x)
    return _bench(
        {
            "jaxfunc func.grad": lambda: g(x),
            "hand-written jit": lambda: hand(x, params),
            "guard alone": _guard_of(f),
        },
        rounds,
        n,
    )


def numpy16mb(rounds: int, n: int) -> dict[str, float]:
    x = jnp.arange(10.0)
    big = np.ones(1 << 21)  # 16 MB

    def loss(x, b):
        return jnp.sum(x) * b[-1]

    def f(x):
        return loss(x, big)

    hand = jax.jit(jax.grad(loss))
    g = jaxfunc.func.grad(f)
    g(x)
    return _bench(
        {
            "jaxfunc func.grad": lambda: g(x),
            "hand-written jit (array argument)": lambda: hand(x, big),
            "guard alone": _guard_of(f),
        },
        rounds,
        max(1, n // 20),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    rounds, n = (3, 200) if args.quick else (9, 2000)
    for name, case, ref, target in (
        ("trivial", trivial, "hand-written jit", 5.0),
        ("dict300", dict300, "hand-written jit", 15.0),
        ("numpy16MB", numpy16mb, "hand-written jit (array argument)", None),
    ):
        res = case(rounds, n)
        print(f"\n{name}")
        for k, us in res.items():
            print(f"  {k:36s} {us:10.1f} µs/call")
        jf = next(k for k in res if k.startswith("jaxfunc"))
        best = res[f"{jf} (best round)"] - res[f"{ref} (best round)"]
        print(f"  overhead, best rounds: {best:.1f} µs")
        over = res[jf] - res[ref]
        verdict = "" if target is None else ("  PASS" if over <= target else "  MISS")
        limit = "" if target is None else f" (target {target:.0f} µs)"
        print(f"  overhead over the hand-written jit: {over:.1f} µs{limit}{verdict}")


if __name__ == "__main__":
    main()
