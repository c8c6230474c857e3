"""``python -m jaxfunc``: the reference notebook and the reference pages' examples, checked.

Each case is computed with jaxfunc, checked against its analytic derivative, and timed
against raw ``jax.vjp`` (and torch, when it is installed). Like the reference notebook it
runs in float64 (this demo program turns on ``jax_enable_x64``; importing jaxfunc never
does). Exit status 1 if any check fails.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _optional_torch() -> Any:
    try:
        import torch  # pyright: ignore[reportMissingImports] - optional dependency
    except ImportError:
        return None
    torch.set_default_dtype(torch.float64)  # the reference notebook's setting
    return torch


def _median_us(fn: Callable[[], Any], calls: int) -> float:
    import jax

    for _ in range(3):  # warm up: first call eager, then compiled
        jax.block_until_ready(fn())
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


def main() -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import jaxfunc
    from jaxfunc.autograd.functional import vjp as af_vjp
    from jaxfunc.func import jvp, vjp

    torch = _optional_torch()

    rng = np.random.default_rng(0)
    n = 1000
    rows: list[tuple[Any, ...]] = []

    def case(
        name: str,
        check: Callable[[], Any],
        ours: Callable[[], Any] | None = None,
        raw: Callable[[], Any] | None = None,
        theirs: Callable[[], Any] | None = None,
        calls: int = 200,
    ) -> None:
        ok = bool(check())
        timings = [
            _median_us(fn, calls) if fn is not None else None
            for fn in (ours, raw, theirs if torch is not None else None)
        ]
        rows.append((name, ok, *timings))

    def raw_vjp(f: Callable[..., Any], primals: tuple, v: Any) -> Any:
        out, pullback = jax.vjp(f, *primals)
        return out, pullback(v)

    # 1. scalar function on 1,000 points
    def f1(x):
        return x**2 + jnp.sin(x**2)

    x1 = jnp.linspace(0, 5, n)
    v1 = jnp.ones_like(x1)
    d1 = 2 * x1 + 2 * x1 * jnp.cos(x1**2)
    tf1 = (lambda x: x**2 + torch.sin(x**2)) if torch else None
    tx1 = torch.linspace(0, 5, n) if torch else None
    case(
        "notebook 1: d/dx (x^2 + sin x^2), 1000 points",
        lambda: jnp.allclose(af_vjp(f1, x1, v=v1)[1], d1),
        lambda: af_vjp(f1, x1, v=v1),
        lambda: raw_vjp(f1, (x1,), v1),
        lambda: torch.autograd.functional.vjp(tf1, tx1, v=torch.ones(n)),
    )

    # 2. a batch (N, 2) -> (N,)
    def f2(x):
        return x[:, 0] * x[:, 1] + jnp.sin(x[:, 0] * x[:, 1] ** 2)

    x2 = jnp.asarray(2 * rng.random((n, 2)) - 1)
    a, b = x2[:, 0], x2[:, 1]
    d2 = jnp.stack((b + b**2 * jnp.cos(a * b**2), a + 2 * a * b * jnp.cos(a * b**2)), axis=1)
    tx2 = torch.tensor(np.asarray(x2)) if torch else None
    case(
        "notebook 2: batch (N,2) -> (N,)",
        lambda: jnp.allclose(af_vjp(f2, x2, v=jnp.ones(n))[1], d2),
        lambda: af_vjp(f2, x2, v=jnp.ones(n)),
        lambda: raw_vjp(f2, (x2,), jnp.ones(n)),
        lambda: torch.autograd.functional.vjp(
            lambda x: x[:, 0] * x[:, 1] + torch.sin(x[:, 0] * x[:, 1] ** 2), tx2, v=torch.ones(n)
        ),
    )

    # 3. two inputs
    def f3(x, y):
        return x * y + jnp.sin(x * y**2)

    x3 = jnp.asarray(2 * rng.random(n) - 1)
    y3 = jnp.asarray(2 * rng.random(n) - 1)

    def check3() -> bool:
        _, (gx, gy) = af_vjp(f3, (x3, y3), v=jnp.ones(n))
        return bool(
            jnp.allclose(gx, y3 + y3**2 * jnp.cos(x3 * y3**2))
            and jnp.allclose(gy, x3 + 2 * x3 * y3 * jnp.cos(x3 * y3**2))
        )

    tx3, ty3 = (
        (torch.tensor(np.asarray(x3)), torch.tensor(np.asarray(y3))) if torch else (None, None)
    )
    case(
        "notebook 3: two inputs (x, y) -> (N,)",
        check3,
        lambda: af_vjp(f3, (x3, y3), v=jnp.ones(n)),
        lambda: raw_vjp(f3, (x3, y3), jnp.ones(n)),
        lambda: torch.autograd.functional.vjp(
            lambda x, y: x * y + torch.sin(x * y**2), (tx3, ty3), v=torch.ones(n)
        ),
    )

    # 4. the full per-sample Jacobian (N,2) -> (N,3), looping vjp over one-hot v
    def f4(x):
        x1_, x2_ = x[:, 0], x[:, 1]
        return jnp.stack((x1_ * x2_, jnp.sin(x1_ + x2_**2), x1_**2 - 3 * x2_), axis=1)

    def d4(x):
        x1_, x2_ = x[:, 0], x[:, 1]
        c = jnp.cos(x1_ + x2_**2)
        return jnp.stack(
            (
                jnp.stack((x2_, x1_), axis=1),
                jnp.stack((c, 2 * x2_ * c), axis=1),
                jnp.stack((2 * x1_, -3 * jnp.ones_like(x2_)), axis=1),
            ),
            axis=1,
        )

    x4 = jnp.asarray(2 * rng.random((n, 2)) - 1)
    onehots = [jnp.zeros((n, 3)).at[:, k].set(1.0) for k in range(3)]

    def jac_loop(x):
        return jnp.stack([af_vjp(f4, x, v=v)[1] for v in onehots], axis=1)

    def jac_raw(x):
        _out, pullback = jax.vjp(f4, x)
        return jnp.stack([pullback(v)[0] for v in onehots], axis=1)

    def jac_torch():
        tx = torch.tensor(np.asarray(x4))
        tf = lambda x: torch.stack(
            (x[:, 0] * x[:, 1], torch.sin(x[:, 0] + x[:, 1] ** 2), x[:, 0] ** 2 - 3 * x[:, 1]),
            dim=1,
        )
        js = torch.zeros(n, 3, 2)
        for k in range(3):
            v = torch.zeros(n, 3)
            v[:, k] = 1.0
            js[:, k, :] = torch.autograd.functional.vjp(tf, tx, v=v)[1]
        return js

    case(
        "notebook 4: per-sample Jacobian, loop over one-hot v",
        lambda: jnp.allclose(jac_loop(x4), d4(x4)),
        lambda: jac_loop(x4),
        lambda: jac_raw(x4),
        jac_torch,
        calls=50,
    )

    basis = jnp.stack(onehots)

    def jac_vmap(x):
        _, vjp_fn = vjp(f4, x)
        return jnp.moveaxis(jaxfunc.func.vmap(vjp_fn)(basis)[0], 0, 1)

    case(
        "notebook 4, the JAX way: vmap(vjp_fn) over one-hot v",
        lambda: jnp.allclose(jac_vmap(x4), d4(x4)),
        lambda: jac_vmap(x4),
        lambda: jax.vmap(jax.vjp(f4, x4)[1])(basis),
        calls=50,
    )

    # The reference pages' examples.
    x5 = jnp.asarray(rng.standard_normal(5))
    case(
        "torch.func.vjp doc: vjp of sum(sin x) == grad",
        lambda: jnp.allclose(
            vjp(lambda x: jnp.sin(x).sum(), x5)[1](jnp.asarray(1.0))[0], jnp.cos(x5)
        ),
    )
    case(
        "torch.func.vjp doc: (sin x, cos x) with tuple cotangents",
        lambda: jnp.allclose(
            vjp(lambda x: (jnp.sin(x), jnp.cos(x)), x5)[1]((jnp.ones(5), jnp.ones(5)))[0],
            jnp.cos(x5) - jnp.sin(x5),
        ),
    )
    case(
        "torch.func.vjp doc: dict output",
        lambda: jnp.allclose(
            vjp(lambda x: {"first": jnp.sin(x), "second": jnp.cos(x)}, x5)[1](
                {"first": jnp.ones(5), "second": jnp.ones(5)}
            )[0],
            jnp.cos(x5) - jnp.sin(x5),
        ),
    )
    xm, ym, ct = (jnp.asarray(rng.standard_normal(s)) for s in ((5, 4), (4, 5), (5, 5)))
    case(
        "torch.func.vjp doc: matmul, both partials",
        lambda: all(
            jnp.allclose(g, w)
            for g, w in zip(vjp(jnp.matmul, xm, ym)[1](ct), (ct @ ym.T, xm.T @ ct))
        ),
    )
    case(
        "torch.func.vjp doc: f(x, scale=4.) uses its default",
        lambda: jnp.allclose(vjp(lambda x, scale=4.0: x * scale, x5)[1](jnp.ones(5))[0], 4.0),
    )
    xs = jnp.asarray(rng.standard_normal(()))
    case(
        "torch.func.jvp doc: x * [1, 2, 3]",
        lambda: jnp.allclose(
            jvp(lambda x: x * jnp.asarray([1.0, 2, 3]), (xs,), (jnp.asarray(1.0),))[1],
            jnp.asarray([1.0, 2, 3]),
        ),
    )
    y5 = jnp.asarray(rng.standard_normal(5))
    case(
        "torch.func.jvp doc: x * y with tangents (1, 1)",
        lambda: jnp.allclose(
            jvp(lambda x, y: x * y, (x5, y5), (jnp.ones(5), jnp.ones(5)))[1], x5 + y5
        ),
    )
    x44 = jnp.asarray(rng.random((4, 4)))
    case(
        "autograd.functional.vjp doc: exp_reducer",
        lambda: jnp.allclose(
            af_vjp(lambda x: jnp.exp(x).sum(1), x44, jnp.ones(4))[1], jnp.exp(x44)
        ),
    )
    case(
        "autograd.functional.vjp doc: adder(x, y) = 2x + 3y",
        lambda: all(
            jnp.allclose(g, w)
            for g, w in zip(
                af_vjp(lambda x, y: 2 * x + 3 * y, (x5[:2], y5[:2]), jnp.ones(2))[1],
                (2 * jnp.ones(2), 3 * jnp.ones(2)),
            )
        ),
    )

    _print_table(rows, jax.devices()[0], torch is not None, jaxfunc.__version__)
    return 0 if all(ok for _, ok, *_ in rows) else 1


def _print_table(rows: list, device: Any, have_torch: bool, version: str) -> None:
    def us(t: float | None) -> str:
        return "-" if t is None else f"{t:,.0f}"

    head = ("case", "check", "jaxfunc us", "raw jax.vjp us", "torch us" if have_torch else "torch")
    body = [(name, "ok" if ok else "FAILED", us(a), us(b), us(c)) for name, ok, a, b, c in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(f"jaxfunc {version} on {device}: float64, median time per call after warm-up")
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for r in body:
        print(line.format(*r))
    if not have_torch:
        print("(torch is not installed: its column is left empty; pip install torch==2.13.0)")
    failed = sum(1 for r in body if r[1] != "ok")
    print(f"{len(body) - failed}/{len(body)} checks passed")


if __name__ == "__main__":
    sys.exit(main())
