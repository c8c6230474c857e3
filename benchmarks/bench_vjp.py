"""vjp benchmark (issue 3): jaxfunc against torch, raw JAX and a hand-written jax.jit.

Measures, in one process (see benchmarks/README.md):

- the reference notebook's four cases at N=1000, and case 1 swept over N = 1e2 .. 1e6;
- a trivial function (``x * 2``, N=10): jaxfunc's per-call overhead over a hand-written jit;
- case 1 at N=1000 with the hand-written jit called after gaps of 1-20 µs of Python: what a
  gap between calls costs on its own (XLA's worker threads go to sleep), so that it is not
  read as jaxfunc's overhead;
- the first call with a new function object (a re-run notebook cell), and the compile;
- a small MLP training step inside a user's ``jax.jit``: jaxfunc must equal raw ``jax.grad``.

Writes ``results/{cpu,gpu}.md``, ``.json`` and ``_vs_n.png``, and prints PASS/MISS per target.

    JAX_PLATFORMS=cpu python benchmarks/bench_vjp.py [--quick] [--device cpu|gpu]
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from typing import Any

import _models
import _timing as T
import jax
import jax.numpy as jnp
import numpy as np
from _timing import ColdVariant, Env, Target, Variant, torch

import jaxfunc
from jaxfunc._jit import _cache  # only for its event counters (which call compiled)
from jaxfunc.autograd import functional as AF

if torch is not None:
    import torch.autograd.functional as TAF
    import torch.func

# Variant names. "AF" is autograd.functional.
AF_J = "jaxfunc AF.vjp"
FUNC_J = "jaxfunc func.vjp + vjp_fn"
RAW = "jax.vjp eager"
HAND = "hand-written jax.jit"
GAPS_US = (1, 2, 5, 20)
GAP = "gap"
AF_T = "torch AF.vjp"
FUNC_T = "torch.func.vjp + vjp_fn"
LOOP_T = "torch AF.vjp loop (notebook)"
LOOP_J = "jaxfunc AF.vjp loop"
VMAP_T = "torch.func.vjp + torch.func.vmap(vjp_fn)"
VMAP_J = "jaxfunc func.vjp + jax.vmap(vjp_fn)"
VMAP_JF = "jaxfunc func.vjp + jaxfunc.func.vmap(vjp_fn)"
VMAP_JIT = "jaxfunc func.vjp + jax.jit(jax.vmap)(vjp_fn)"
VMAP_RAW = "jax.vjp + jax.vmap eager"

SWEEP = [100, 1_000, 10_000, 100_000, 1_000_000]
N_CASES = 1_000
N_TRIVIAL = 10
CASE4 = "case 4"
COLD_CALLS = 3  # calls of a new function timed one by one (jaxfunc compiles on one of them)


# -- the notebook's cases ---------------------------------------------------------------------
#
# Each ``make_*(lib)`` returns a *new* function object written with ``lib`` = jax.numpy or
# torch: every jaxfunc variant gets its own, so no variant reuses another's cache entry.


def make_case1(lib: Any) -> Callable[..., Any]:
    def f(x):
        return x**2 + lib.sin(x**2)

    return f


def make_case2(lib: Any) -> Callable[..., Any]:
    def f(x):
        return x[:, 0] * x[:, 1] + lib.sin(x[:, 0] * x[:, 1] ** 2)

    return f


def make_case3(lib: Any) -> Callable[..., Any]:
    def f(x, y):
        return x * y + lib.sin(x * y**2)

    return f


def make_case4(lib: Any) -> Callable[..., Any]:
    def f(x):
        x1, x2 = x[:, 0], x[:, 1]
        return lib.stack((x1 * x2, lib.sin(x1 + x2**2), x1**2 - 3 * x2), 1)  # (N, 3)

    return f


def make_trivial(lib: Any) -> Callable[..., Any]:
    def f(x):
        return x * 2

    return f


def _uniform(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape)


@dataclasses.dataclass(frozen=True)
class Case:
    """A vjp problem: ``inputs(N)`` and ``v(N)`` as numpy; ``expected`` = [output, grads...]."""

    key: str
    title: str
    make: Callable[[Any], Callable[..., Any]]
    inputs: Callable[[int], list[np.ndarray]]
    v: Callable[[int], np.ndarray]
    expected: Callable[[list[np.ndarray], np.ndarray], list[np.ndarray]]


def _expected1(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    (x,) = xs
    return [x**2 + np.sin(x**2), v * (2 * x + 2 * x * np.cos(x**2))]


def _expected2(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    (x,) = xs
    x0, x1 = x[:, 0], x[:, 1]
    c = np.cos(x0 * x1**2)
    grad = np.stack((x1 + x1**2 * c, x0 + 2 * x0 * x1 * c), axis=1)
    return [x0 * x1 + np.sin(x0 * x1**2), v[:, None] * grad]


def _expected3(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    x, y = xs
    c = np.cos(x * y**2)
    return [x * y + np.sin(x * y**2), v * (y + y**2 * c), v * (x + 2 * x * y * c)]


def _expected_trivial(xs: list[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    return [2 * xs[0], 2 * v]


CASE1 = Case(
    "case 1",
    "x²+sin(x²)",
    make_case1,
    lambda n: [np.linspace(0.0, 5.0, n)],
    np.ones,
    _expected1,
)
CASE2 = Case(
    "case 2",
    "batch (N,2)->(N,)",
    make_case2,
    lambda n: [_uniform((n, 2), 1)],
    np.ones,
    _expected2,
)
CASE3 = Case(
    "case 3",
    "two inputs (x, y)",
    make_case3,
    lambda n: [_uniform((n,), 2), _uniform((n,), 3)],
    np.ones,
    _expected3,
)
TRIVIAL = Case(
    "trivial",
    "x*2",
    make_trivial,
    lambda n: [np.linspace(0.0, 1.0, n)],
    np.ones,
    _expected_trivial,
)


def case4_jacobian(x: np.ndarray) -> np.ndarray:
    """The analytic per-sample Jacobian of case 4: ``(N, 3, 2)``."""
    x1, x2 = x[:, 0], x[:, 1]
    c = np.cos(x1 + x2**2)
    rows = [(x2, x1), (c, 2 * x2 * c), (2 * x1, -3 * np.ones_like(x2))]
    return np.stack([np.stack(r, axis=1) for r in rows], axis=1)


# -- variants -----------------------------------------------------------------------------


def _fwd_and_vjp(f: Callable[..., Any], xs: list[Any], v: Any) -> tuple[Any, Any]:
    """The hand-written baseline, to be wrapped in ``jax.jit``: what jaxfunc should compile to."""
    out, pullback = jax.vjp(f, *xs)
    return out, pullback(v)


def _after_python(gap_us: int, call: Callable[[], Any]) -> Any:
    """``call()`` after ``gap_us`` of Python (a busy wait): the gap any caller leaves between
    calls, in which XLA's idle CPU worker threads go to sleep."""
    until = time.perf_counter_ns() + gap_us * 1_000
    while time.perf_counter_ns() < until:
        pass
    return call()


def _gap_name(gap_us: int) -> str:
    return f"{HAND} after {gap_us} µs of Python"


def _two_step(vjp: Callable[..., Any], f: Callable[..., Any], xs: list[Any], v: Any) -> Any:
    """torch.func's form: ``out, vjp_fn = vjp(f, *xs); vjp_fn(v)``."""
    out, vjp_fn = vjp(f, *xs)
    return out, vjp_fn(v)


def vjp_variants(case: Case, n: int, env: Env) -> T.Prepared:
    xs_np, v_np = [env.rounded(a) for a in case.inputs(n)], env.rounded(case.v(n))
    xs, v = [env.put(a) for a in xs_np], env.put(v_np)
    af_inputs = tuple(xs) if len(xs) > 1 else xs[0]  # autograd.functional's convention
    f_af, f_func, f_raw = case.make(jnp), case.make(jnp), case.make(jnp)
    hand = jax.jit(functools.partial(_fwd_and_vjp, case.make(jnp)))
    variants = [
        Variant(AF_J, lambda: AF.vjp(f_af, af_inputs, v), "jax", AF_T, HAND),
        Variant(FUNC_J, lambda: _two_step(jaxfunc.func.vjp, f_func, xs, v), "jax", FUNC_T, HAND),
        Variant(RAW, lambda: _two_step(jax.vjp, f_raw, xs, v), "jax", AF_T, HAND),
        Variant(HAND, lambda: hand(xs, v), "jax", AF_T),
    ]
    if env.torch_device:
        ts, tv, ft = [env.tensor(a) for a in xs_np], env.tensor(v_np), case.make(torch)
        t_inputs = tuple(ts) if len(ts) > 1 else ts[0]
        variants += [
            Variant(AF_T, lambda: TAF.vjp(ft, t_inputs, tv), "torch", None, HAND),
            Variant(FUNC_T, lambda: _two_step(torch.func.vjp, ft, ts, tv), "torch", None, HAND),
        ]

    def warm():  # throwaway function objects: their eager calls compile the shape's kernels
        return (
            AF.vjp(case.make(jnp), af_inputs, v),
            _two_step(jaxfunc.func.vjp, case.make(jnp), xs, v),
            _two_step(jax.vjp, case.make(jnp), xs, v),
        )

    return variants, case.expected(xs_np, v_np), warm


def gap_variants(n: int, env: Env) -> T.Prepared:
    """Case 1: the hand-written jit called after gaps of Python, beside jaxfunc's AF.vjp."""
    variants, expected, warm = vjp_variants(CASE1, n, env)
    af, hand = (next(v for v in variants if v.name == name) for name in (AF_J, HAND))
    gaps = [
        Variant(_gap_name(g), functools.partial(_after_python, g, hand.fn), "jax", None, HAND)
        for g in GAPS_US
    ]
    return [af, hand, *gaps], expected, warm


@jax.jit
def _jit_vmap(vjp_fn: Any, basis: Any) -> Any:
    """The user-side fix: jaxfunc's vjp_fn is a pytree, so the vmap over it can be jitted."""
    return jax.vmap(vjp_fn, out_axes=1)(basis)


def jacobian_variants(n: int, env: Env) -> T.Prepared:
    """Case 4: the per-sample Jacobian, by the notebook's loop and by vmap over one-hot v."""
    x_np = env.rounded(_uniform((n, 2), 4))
    basis_np = np.zeros((3, n, 3))
    for k in range(3):
        basis_np[k, :, k] = 1.0  # the notebook's v[:, k] = 1
    x, basis = env.put(x_np), env.put(basis_np)
    f_loop, f_vmap, f_func_vmap, f_jit_vmap, f_raw = (make_case4(jnp) for _ in range(5))

    def jaxfunc_loop(f):
        return jnp.stack([AF.vjp(f, x, basis[k])[1] for k in range(3)], axis=1)

    def jaxfunc_vmap(f, how):
        _, vjp_fn = jaxfunc.func.vjp(f, x)
        if how == "jax":
            return jax.vmap(vjp_fn, out_axes=1)(basis)  # out dim 1: (N, 3, 2) directly
        if how == "jaxfunc":
            return jaxfunc.func.vmap(vjp_fn, out_dims=1)(basis)
        return _jit_vmap(vjp_fn, basis)

    def raw_vmap(f, x, basis):
        _, pullback = jax.vjp(f, x)
        return jax.vmap(pullback, out_axes=1)(basis)

    hand = jax.jit(functools.partial(raw_vmap, make_case4(jnp)))
    variants = [
        Variant(LOOP_J, lambda: jaxfunc_loop(f_loop), "jax", LOOP_T, HAND),
        Variant(VMAP_J, lambda: jaxfunc_vmap(f_vmap, "jax"), "jax", VMAP_T, HAND),
        Variant(VMAP_JF, lambda: jaxfunc_vmap(f_func_vmap, "jaxfunc"), "jax", VMAP_T, HAND),
        Variant(VMAP_JIT, lambda: jaxfunc_vmap(f_jit_vmap, "jit"), "jax", VMAP_T, HAND),
        Variant(VMAP_RAW, lambda: raw_vmap(f_raw, x, basis), "jax", VMAP_T, HAND),
        Variant(HAND, lambda: hand(x, basis), "jax", VMAP_T),
    ]
    if env.torch_device:
        xt, bt, ft = env.tensor(x_np), env.tensor(basis_np), make_case4(torch)

        def torch_loop():
            js = torch.zeros(n, 3, 2, dtype=xt.dtype, device=env.torch_device)
            for k in range(3):
                _, grad_x = TAF.vjp(ft, xt, bt[k])
                js[:, k, :] = grad_x
            return js

        def torch_vmap():
            _, vjp_fn = torch.func.vjp(ft, xt)
            return torch.func.vmap(vjp_fn, out_dims=1)(bt)

        variants += [
            Variant(LOOP_T, torch_loop, "torch", None, HAND),
            Variant(VMAP_T, torch_vmap, "torch", None, HAND),
        ]

    def warm():
        def fresh():
            return make_case4(jnp)

        return (
            jaxfunc_loop(fresh()),
            [jaxfunc_vmap(fresh(), how) for how in ("jax", "jaxfunc")],
            raw_vmap(fresh(), x, basis),
        )

    return variants, [case4_jacobian(x_np)], warm


def first_call_variants(n: int, env: Env) -> tuple[list[ColdVariant], list[np.ndarray]]:
    """Case 1 with a new function object each time (a re-run notebook cell): the k-th call."""
    xs_np, v_np = [env.rounded(a) for a in CASE1.inputs(n)], env.rounded(CASE1.v(n))
    (x,), v = [env.put(a) for a in xs_np], env.put(v_np)

    def af(f):
        return AF.vjp(f, x, v)

    def two_step(f):
        return _two_step(jaxfunc.func.vjp, f, [x], v)

    def after(calls: int, call: Callable[[Any], Any]) -> Callable[[], Any]:
        """Setup: a new function, already called ``calls`` times."""

        def setup():
            f = make_case1(jnp)
            for _ in range(calls):
                jax.block_until_ready(call(f))
            return f

        return setup

    variants = [
        ColdVariant(f"{name}, call {k}", after(k - 1, call), call, "jax")
        for name, call in ((AF_J, af), (FUNC_J, two_step))
        for k in range(1, COLD_CALLS + 1)
    ]
    variants += [
        ColdVariant(
            f"{RAW}, call 1",
            lambda: make_case1(jnp),
            lambda f: _two_step(jax.vjp, f, [x], v),
            "jax",
        ),
        ColdVariant(
            f"{HAND}, call 1 (compiles)",
            lambda: jax.jit(functools.partial(_fwd_and_vjp, make_case1(jnp))),
            lambda hand: hand([x], v),
            "jax",
        ),
    ]
    if env.torch_device:
        xt, vt = env.tensor(xs_np[0]), env.tensor(v_np)
        variants.append(
            ColdVariant(
                f"{AF_T}, call 1",
                lambda: make_case1(torch),
                lambda f: TAF.vjp(f, xt, vt),
                "torch",
            )
        )
    return variants, CASE1.expected(xs_np, v_np)


def compiling_call(call: Callable[..., Any], env: Env) -> int | None:
    """Which call of a new function makes jaxfunc compile (None: none of the first five)."""
    f = make_case1(jnp)
    x, v = env.put(np.linspace(0.0, 5.0, N_CASES)), env.put(np.ones(N_CASES))
    for k in range(1, 6):
        traces = _cache.stats().get("trace", 0)
        jax.block_until_ready(call(f, x, v))
        if _cache.stats().get("trace", 0) > traces:
            return k
    return None


# -- a training step inside a user's jax.jit ----------------------------------------------------

STEP_RAW = "raw jax.grad"
MLP_SIZES = [64, 128, 128, 10]
MLP_BATCH = 128
LEARNING_RATE = 0.1


def _loss(params, x, y):
    return _models.mse(jnp, params, x, y)


def _grad_raw(params, x, y):
    return jax.grad(_loss)(params, x, y)


def _grad_jaxfunc(params, x, y):
    return jaxfunc.func.grad(_loss)(params, x, y)


def _grad_jaxfunc_vjp(params, x, y):
    loss, vjp_fn = jaxfunc.func.vjp(lambda p: _loss(p, x, y), params)
    return vjp_fn(jnp.ones_like(loss))[0]


def make_step(grad: Callable[..., Any]) -> Callable[..., Any]:
    def step(params, x, y):  # the same name for all: the lowered modules are then comparable
        g = grad(params, x, y)
        return jax.tree_util.tree_map(lambda p, gp: p - LEARNING_RATE * gp, params, g)

    return jax.jit(step)


def training_step(env: Env) -> tuple[T.Benchmark, dict[str, bool]]:
    """Time the step with each gradient, and compare each step's StableHLO with raw jax.grad's."""
    params_np = _models.rounded(_models.init(MLP_SIZES, seed=5), env.rounded)
    rng = np.random.default_rng(6)
    x_np = env.rounded(rng.normal(size=(MLP_BATCH, MLP_SIZES[0])))
    y_np = env.rounded(rng.normal(size=(MLP_BATCH, MLP_SIZES[-1])))
    params, x, y = _models.as_jax(params_np, env.put), env.put(x_np), env.put(y_np)
    steps = {
        STEP_RAW: make_step(_grad_raw),
        "jaxfunc func.grad": make_step(_grad_jaxfunc),
        "jaxfunc func.vjp + vjp_fn": make_step(_grad_jaxfunc_vjp),
    }
    grads = _models.mse_grad(params_np, x_np, y_np)
    expected = [
        p - LEARNING_RATE * g
        for (W, b), (gW, gb) in zip(params_np, grads)
        for p, g in ((W, gW), (b, gb))
    ]
    variants = [
        Variant(name, functools.partial(step, params, x, y), "jax", None, STEP_RAW)
        for name, step in steps.items()
    ]
    prepared = (variants, expected, None)
    bench = T.run("MLP step in jax.jit", f"{MLP_SIZES}, batch {MLP_BATCH}", prepared, env)
    raw_text = steps[STEP_RAW].lower(params, x, y).as_text()
    same_hlo = {
        name: step.lower(params, x, y).as_text() == raw_text for name, step in steps.items()
    }
    return bench, same_hlo


# -- report -------------------------------------------------------------------------------------


def targets(
    benches: dict[tuple[str, int], T.Benchmark], cold: dict[str, T.Timing], env: Env
) -> list[Target]:
    c1, big = benches[(CASE1.key, N_CASES)], benches[(CASE1.key, SWEEP[-1])]
    jac, triv = benches[(CASE4, N_CASES)], benches[(TRIVIAL.key, N_TRIVIAL)]
    out = []
    if env.torch_device:
        out += [
            Target("case 1, N=1e3: AF.vjp vs torch AF.vjp", c1.ratio(AF_J, AF_T), 0.5),
            Target("case 1, N=1e3: func.vjp + vjp_fn vs torch.func", c1.ratio(FUNC_J, FUNC_T), 0.5),
        ]
    out.append(Target("case 1, N=1e3: AF.vjp vs hand-written jit", c1.ratio(AF_J, HAND), 1.25))
    if env.torch_device:
        out += [
            Target("case 1, N=1e6: AF.vjp vs torch AF.vjp", big.ratio(AF_J, AF_T), 1.0),
            Target(
                "case 1, N=1e6: func.vjp + vjp_fn vs torch.func", big.ratio(FUNC_J, FUNC_T), 1.0
            ),
        ]
        # The issue says "vmap(vjp_fn)": judged for jax.vmap and for jaxfunc.func.vmap.
        for name, vmap in ((VMAP_J, "jax.vmap"), (VMAP_JF, "jaxfunc.func.vmap")):
            out += [
                Target(
                    f"case 4, N=1e3: func.vjp + {vmap}(vjp_fn) vs torch.func's",
                    jac.ratio(name, VMAP_T),
                    0.5,
                ),
                Target(
                    f"case 4, N=1e3: func.vjp + {vmap}(vjp_fn) vs the notebook's torch loop",
                    jac.ratio(name, LOOP_T),
                    0.2,
                ),
            ]
    overhead_s = triv.timings[AF_J].median_s - triv.timings[HAND].median_s
    out += [
        Target(
            "trivial f=x*2, N=10: AF.vjp overhead over hand-written jit",
            overhead_s * 1e6,
            5.0,
            "µs",
        ),
        Target(
            "first call, new function, N=1e3: AF.vjp vs plain eager jax.vjp",
            T.ratio(cold, f"{AF_J}, call 1", f"{RAW}, call 1"),
            1.5,
        ),
    ]
    return out


def gap_section(bench: T.Benchmark) -> str:
    af, hand = (bench.timings[name].median_s * 1e6 for name in (AF_J, HAND))
    rows = [
        ["jaxfunc AF.vjp (its own checks and guard run first)", f"{af:,.1f}", "–"],
        ["hand-written jit, called back to back", f"{hand:,.1f}", f"{hand:,.1f}"],
    ]
    for g in GAPS_US:
        t = bench.timings[_gap_name(g)].median_s * 1e6
        rows.append([f"hand-written jit after {g} µs of Python", f"{t:,.1f}", f"{t - g:,.1f}"])
    return "\n".join(
        [
            "Case 1 at N=1,000, the hand-written jit called after a busy wait of a few µs (what",
            "any Python between two calls amounts to). Called back to back, it finds XLA's CPU",
            "worker threads still spinning; after a gap they have gone to sleep and must be",
            "woken, which costs more than the gap itself. jaxfunc runs a few µs of Python (checks,",
            "guard) before it dispatches, so it pays the same.",
            "",
            T.md_table(["variant", "µs/call", "µs/call minus the gap"], rows),
        ]
    )


def markdown(run: DtypeRun, env: Env, multi: bool) -> str:
    """The sections of one dtype (under a ``# float32`` heading when the run has two)."""
    benches, cold, compiles_on, step = run.benches, run.cold, run.compiles_on, run.step
    parts = [f"# {run.dtype}", ""] if multi else []
    step_bench, same_hlo = step
    cold_rows = [
        [name, T.fmt_ms(t.median_s), T.fmt_ratio(T.ratio(cold, name, f"{RAW}, call 1"))]
        for name, t in cold.items()
    ]
    compiled = ", ".join(f"{name}: call {k}" for name, k in compiles_on.items())
    step_rows = [
        [
            name,
            T.fmt_us(t.median_s),
            T.fmt_ratio(step_bench.ratio(name, STEP_RAW)),
            "yes" if same_hlo[name] else "**no**",
        ]
        for name, t in step_bench.timings.items()
    ]
    parts += [
        "## Steady state",
        "",
        T.STEADY_NOTE,
        "Case 4's raw-JAX and jaxfunc vmap variants are compared with torch.func's vmap.",
        "",
        T.steady_table(list(benches.values())),
        "",
        "## Gaps between calls",
        "",
        gap_section(benches[(GAP, N_CASES)]),
        "",
        "## First calls of each variant",
        "",
        T.FIRST_CALLS_NOTE,
        "",
        T.first_calls_table([*benches.values(), step_bench]),
        "",
        f"## New function object (a re-run notebook cell), case 1, N={N_CASES:,}",
        "",
        "Call k of a function object never seen before: median over rounds of the mean over",
        "fresh functions. `× eager jax.vjp`: against call 1 of plain eager `jax.vjp` + pullback.",
        f"The call that compiled (jaxfunc's cache counters): {compiled} (by design: call 2).",
        "",
        T.md_table(["call", "ms", "× eager jax.vjp"], cold_rows),
        "",
        f"## MLP training step inside a user's jax.jit ({step_bench.size})",
        "",
        "Inside a trace jaxfunc calls JAX directly: same program (StableHLO compared as text),",
        "same speed.",
        "",
        T.md_table(["gradient from", "µs/step", "× raw jax.grad", "same StableHLO"], step_rows),
        "",
        f"Plot: `{env.tag}_vs_n.png` (case 1, µs per call against N, log-log).",
        "",
    ]
    return "\n".join(parts)


def plot(runs: list[DtypeRun], ns: list[int], env: Env, path: os.PathLike) -> None:
    """Case 1, µs per call against N, one panel per dtype."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no plot written")
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 5), squeeze=False)
    quick = " (QUICK RUN: noisy)" if env.quick else ""
    for ax, run in zip(axes[0], runs):
        benches = [run.benches[(CASE1.key, n)] for n in ns]
        for v in benches[0].variants:
            ys = [b.timings[v.name].median_s * 1e6 for b in benches]
            ax.loglog(ns, ys, marker="o", label=v.name)
        ax.set_xlabel("N")
        ax.set_ylabel("µs per call (median)")
        ax.set_title(f"vjp of x²+sin(x²), {run.dtype}, {env.jax_device.device_kind}{quick}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class DtypeRun:
    """Everything measured in one dtype."""

    dtype: str
    benches: dict[tuple[str, int], T.Benchmark]
    cold: dict[str, T.Timing]
    compiles_on: dict[str, int | None]
    step: tuple[T.Benchmark, dict[str, bool]]
    targets: list[Target]


def run_dtype(env: Env) -> DtypeRun:
    """Every benchmark of this script in ``env.dtype``."""
    benches: dict[tuple[str, int], T.Benchmark] = {}
    tag = f", {env.dtype}"

    def run(key: str, title: str, n: int, prepared: T.Prepared) -> None:
        benches[(key, n)] = T.run(f"{key}: {title}", f"N={n:,}{tag}", prepared, env)

    for n in SWEEP:
        run(CASE1.key, CASE1.title, n, vjp_variants(CASE1, n, env))
    for case in (CASE2, CASE3):
        run(case.key, case.title, N_CASES, vjp_variants(case, N_CASES, env))
    run(CASE4, "per-sample Jacobian (N,2)->(N,3)", N_CASES, jacobian_variants(N_CASES, env))
    run(TRIVIAL.key, TRIVIAL.title, N_TRIVIAL, vjp_variants(TRIVIAL, N_TRIVIAL, env))
    run(GAP, f"{CASE1.title}, the jit after a gap", N_CASES, gap_variants(N_CASES, env))

    print(f"new function object: call k ({env.dtype})", flush=True)
    cold = T.measure_cold(*first_call_variants(N_CASES, env), env, "first call")
    for name, t in cold.items():
        print(f"  {name:52s} {T.fmt_ms(t.median_s):>10s} ms")
    compiles_on = {
        AF_J: compiling_call(lambda f, x, v: AF.vjp(f, x, v), env),
        FUNC_J: compiling_call(lambda f, x, v: _two_step(jaxfunc.func.vjp, f, [x], v), env),
    }
    print(f"  jaxfunc compiled on: {compiles_on}")

    step = training_step(env)
    print(f"  same StableHLO as raw jax.grad: {step[1]}")
    tgts = targets(benches, cold, env)
    for t in tgts:
        t.description = f"[{env.dtype}] {t.description}"
    return DtypeRun(env.dtype, benches, cold, compiles_on, step, tgts)


def main() -> None:
    args = T.parser(__doc__.splitlines()[0]).parse_args()
    load_before = os.getloadavg()
    env = T.setup(args)
    runs = []
    for dtype in env.dtypes:
        env.use_dtype(dtype)
        runs.append(run_dtype(env))

    info = T.environment(env, load_before)
    tgts = [t for r in runs for t in r.targets]
    T.RESULTS.mkdir(exist_ok=True)
    parts = [T.header("jaxfunc vjp benchmark", env, info), T.targets_section(tgts)]
    if not env.torch_device:
        parts.append(f"Targets against torch skipped: {env.torch_skip_reason}.\n")
    for r in runs:
        parts.append(markdown(r, env, multi=len(runs) > 1))
    (T.RESULTS / f"{env.tag}.md").write_text("\n".join(parts))
    plot(runs, SWEEP, env, T.RESULTS / f"{env.tag}_vs_n.png")
    T.write_json(
        T.RESULTS / f"{env.tag}.json",
        {
            "environment": info,
            "steady": {
                k: v
                for r in runs
                for k, v in T.steady_json([*r.benches.values(), r.step[0]]).items()
            },
            "new_function": {r.dtype: r.cold for r in runs},
            "compiles_on_call": {r.dtype: r.compiles_on for r in runs},
            "training_step_same_stablehlo": {r.dtype: r.step[1] for r in runs},
            "targets": T.targets_json(tgts),
        },
    )
    T.print_targets(tgts)
    print(f"\nwrote {T.RESULTS / env.tag}.md, .json, _vs_n.png")


if __name__ == "__main__":
    main()
