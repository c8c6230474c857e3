"""``python -m jaxfunc``: the reference notebook and the reference pages' examples, checked.

Each case is computed with jaxfunc, checked against its analytic derivative, and timed
against raw ``jax.vjp`` (and torch, when it is installed). Like the reference notebook it
runs in float64 (this demo program turns on ``jax_enable_x64``; importing jaxfunc never
does). Exit status 1 if any check fails.
"""

from __future__ import annotations

import dataclasses
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

    for _ in range(3):  # warm up: the first call compiles
        jax.block_until_ready(fn())
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e6


@dataclasses.dataclass
class Case:
    """One demo row: ``check()`` must be true; ``ours``/``raw``/``theirs`` are timed."""

    name: str
    check: Callable[[], Any]
    ours: Callable[[], Any] | None = None
    raw: Callable[[], Any] | None = None
    theirs: Callable[[], Any] | None = None
    calls: int = 200


def _notebook_cases(jax: Any, jnp: Any, torch: Any, rng: Any, n: int = 1000) -> list[Case]:
    """The reference notebook's four cases: ``jaxfunc``, raw ``jax.vjp`` and torch."""
    from jaxfunc.autograd.functional import vjp as af_vjp
    from jaxfunc.func import vjp, vmap

    def raw_vjp(f: Callable[..., Any], primals: tuple, v: Any) -> Any:
        out, pullback = jax.vjp(f, *primals)
        return out, pullback(v)

    def t(x: Any) -> Any:
        return torch.tensor(np.asarray(x)) if torch else None

    tvjp: Any = torch.autograd.functional.vjp if torch else None
    ones = jnp.ones(n)

    def f1(x):
        return x**2 + jnp.sin(x**2)

    x1 = jnp.linspace(0, 5, n)
    d1 = 2 * x1 + 2 * x1 * jnp.cos(x1**2)

    def f2(x):
        return x[:, 0] * x[:, 1] + jnp.sin(x[:, 0] * x[:, 1] ** 2)

    x2 = jnp.asarray(2 * rng.random((n, 2)) - 1)
    a, b = x2[:, 0], x2[:, 1]
    d2 = jnp.stack((b + b**2 * jnp.cos(a * b**2), a + 2 * a * b * jnp.cos(a * b**2)), axis=1)

    def f3(x, y):
        return x * y + jnp.sin(x * y**2)

    x3, y3 = (jnp.asarray(2 * rng.random(n) - 1) for _ in range(2))
    d3 = (y3 + y3**2 * jnp.cos(x3 * y3**2), x3 + 2 * x3 * y3 * jnp.cos(x3 * y3**2))

    def f4(x, stack=jnp.stack, sin=jnp.sin):
        p, q = x[:, 0], x[:, 1]
        return stack((p * q, sin(p + q**2), p**2 - 3 * q), 1)

    def d4(x):
        p, q = x[:, 0], x[:, 1]
        c = jnp.cos(p + q**2)
        rows = ((q, p), (c, 2 * q * c), (2 * p, -3 * jnp.ones_like(q)))
        return jnp.stack([jnp.stack(r, axis=1) for r in rows], axis=1)

    x4 = jnp.asarray(2 * rng.random((n, 2)) - 1)
    onehots = [jnp.zeros((n, 3)).at[:, k].set(1.0) for k in range(3)]
    basis = jnp.stack(onehots)

    def jac_loop(x):
        return jnp.stack([af_vjp(f4, x, v=v)[1] for v in onehots], axis=1)

    def jac_raw(x):
        pullback = jax.vjp(f4, x)[1]
        return jnp.stack([pullback(v)[0] for v in onehots], axis=1)

    def jac_torch():
        tf = lambda x: f4(x, stack=torch.stack, sin=torch.sin)
        return torch.stack([tvjp(tf, t(x4), v=t(v))[1] for v in onehots], 1)

    def jac_vmap(x):
        return jnp.moveaxis(vmap(vjp(f4, x)[1])(basis)[0], 0, 1)

    return [
        Case(
            "notebook 1: d/dx (x^2 + sin x^2), 1000 points",
            lambda: jnp.allclose(af_vjp(f1, x1, v=ones)[1], d1),
            lambda: af_vjp(f1, x1, v=ones),
            lambda: raw_vjp(f1, (x1,), ones),
            lambda: tvjp(lambda x: x**2 + torch.sin(x**2), t(x1), v=t(ones)),
        ),
        Case(
            "notebook 2: batch (N,2) -> (N,)",
            lambda: jnp.allclose(af_vjp(f2, x2, v=ones)[1], d2),
            lambda: af_vjp(f2, x2, v=ones),
            lambda: raw_vjp(f2, (x2,), ones),
            lambda: tvjp(
                lambda x: x[:, 0] * x[:, 1] + torch.sin(x[:, 0] * x[:, 1] ** 2), t(x2), v=t(ones)
            ),
        ),
        Case(
            "notebook 3: two inputs (x, y) -> (N,)",
            lambda: all(map(jnp.allclose, af_vjp(f3, (x3, y3), v=ones)[1], d3)),
            lambda: af_vjp(f3, (x3, y3), v=ones),
            lambda: raw_vjp(f3, (x3, y3), ones),
            lambda: tvjp(lambda x, y: x * y + torch.sin(x * y**2), (t(x3), t(y3)), v=t(ones)),
        ),
        Case(
            "notebook 4: per-sample Jacobian, loop over one-hot v",
            lambda: jnp.allclose(jac_loop(x4), d4(x4)),
            lambda: jac_loop(x4),
            lambda: jac_raw(x4),
            jac_torch,
            calls=50,
        ),
        Case(
            "notebook 4, the JAX way: vmap(vjp_fn) over one-hot v",
            lambda: jnp.allclose(jac_vmap(x4), d4(x4)),
            lambda: jac_vmap(x4),
            lambda: jax.vmap(jax.vjp(f4, x4)[1])(basis),
            calls=50,
        ),
    ]


def _reference_page_cases(jnp: Any, rng: Any) -> list[Case]:
    """The examples of the torch.func.vjp/jvp and autograd.functional.vjp doc pages."""
    from jaxfunc.autograd.functional import vjp as af_vjp
    from jaxfunc.func import jvp, vjp

    x5, y5 = (jnp.asarray(rng.standard_normal(5)) for _ in range(2))
    xm, ym, ct = (jnp.asarray(rng.standard_normal(s)) for s in ((5, 4), (4, 5), (5, 5)))
    xs = jnp.asarray(rng.standard_normal(()))
    x44 = jnp.asarray(rng.random((4, 4)))
    one, ones5, ones2 = jnp.asarray(1.0), jnp.ones(5), jnp.ones(2)
    table: list[tuple[str, Callable[[], Any], Any]] = [
        (
            "torch.func.vjp doc: vjp of sum(sin x) == grad",
            lambda: vjp(lambda x: jnp.sin(x).sum(), x5)[1](one)[0],
            jnp.cos(x5),
        ),
        (
            "torch.func.vjp doc: (sin x, cos x) with tuple cotangents",
            lambda: vjp(lambda x: (jnp.sin(x), jnp.cos(x)), x5)[1]((ones5, ones5))[0],
            jnp.cos(x5) - jnp.sin(x5),
        ),
        (
            "torch.func.vjp doc: dict output",
            lambda: vjp(lambda x: {"first": jnp.sin(x), "second": jnp.cos(x)}, x5)[1](
                {"first": ones5, "second": ones5}
            )[0],
            jnp.cos(x5) - jnp.sin(x5),
        ),
        (
            "torch.func.vjp doc: matmul, both partials",
            lambda: jnp.stack([g.ravel() for g in vjp(jnp.matmul, xm, ym)[1](ct)]),
            jnp.stack([(ct @ ym.T).ravel(), (xm.T @ ct).ravel()]),
        ),
        (
            "torch.func.vjp doc: f(x, scale=4.) uses its default",
            lambda: vjp(lambda x, scale=4.0: x * scale, x5)[1](ones5)[0],
            4.0,
        ),
        (
            "torch.func.jvp doc: x * [1, 2, 3]",
            lambda: jvp(lambda x: x * jnp.asarray([1.0, 2, 3]), (xs,), (one,))[1],
            jnp.asarray([1.0, 2, 3]),
        ),
        (
            "torch.func.jvp doc: x * y with tangents (1, 1)",
            lambda: jvp(lambda x, y: x * y, (x5, y5), (ones5, ones5))[1],
            x5 + y5,
        ),
        (
            "autograd.functional.vjp doc: exp_reducer",
            lambda: af_vjp(lambda x: jnp.exp(x).sum(1), x44, jnp.ones(4))[1],
            jnp.exp(x44),
        ),
        (
            "autograd.functional.vjp doc: adder(x, y) = 2x + 3y",
            lambda: jnp.stack(af_vjp(lambda x, y: 2 * x + 3 * y, (x5[:2], y5[:2]), ones2)[1]),
            jnp.stack([2 * ones2, 3 * ones2]),
        ),
    ]
    return [
        Case(name, lambda got=got, want=want: jnp.allclose(got(), want))
        for name, got, want in table
    ]


def main() -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import jaxfunc

    torch = _optional_torch()
    rng = np.random.default_rng(0)
    cases = _notebook_cases(jax, jnp, torch, rng) + _reference_page_cases(jnp, rng)
    rows = []
    for c in cases:
        timed = (c.ours, c.raw, c.theirs if torch is not None else None)
        rows.append((c.name, bool(c.check()), *(fn and _median_us(fn, c.calls) for fn in timed)))
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
