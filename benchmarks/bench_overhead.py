"""jaxfunc's own Python on a cache hit (issue 14, item 3), against the bare ``jax.jit``.

The function is trivial (``x * 2``, N=10, float64): XLA's CPU client runs such a program
inline on the calling thread (under 1,000 flops), so no thread handoff or wake-up is in the
numbers and what is left is Python. Measured in one process:

- **whole calls**, interleaved rounds, medians: ``AF.vjp``, ``func.vjp``, ``vjp_fn(v)``,
  ``func.vjp + vjp_fn``, the hand-written ``jax.jit`` of the same vjp, and the cache's own
  compiled program called directly (the jit dispatch jaxfunc cannot avoid);
- **pieces of a hit** (if the cache internals still have the names this script knows; after
  a restructuring the rows it cannot find say so): each step of ``AF.vjp``'s cached path
  timed alone;
- **Python calls per hit** (``sys.setprofile``: Python and C function calls counted per
  call): deterministic, so it shows a change even on a loaded machine.

Writes ``results/overhead_cpu.md`` and ``.json``.

    JAX_PLATFORMS=cpu python benchmarks/bench_overhead.py [--quick]
"""

from __future__ import annotations

import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import _timing as T
import jax
import numpy as np

import jaxfunc
from jaxfunc.autograd import functional as AF

N = 10


def f_trivial(x):
    return x * 2


def _fwd_and_vjp(xs, v):
    out, pullback = jax.vjp(f_trivial, *xs)
    return out, pullback(v)


def timed(
    fns: dict[str, Callable[[], Any]], rounds: int, target_s: float
) -> tuple[dict[str, float], dict[str, float]]:
    """(wall, thread CPU): median µs per call over interleaved rounds, each ~target_s long.

    The calling thread's CPU time (``time.thread_time_ns``) leaves out the time the thread
    spent descheduled, so on a loaded machine it is the figure to read: these programs run
    inline on the calling thread, so all their work is in it."""
    calls = {}
    for name, fn in fns.items():
        fn()  # (a first call may compile: the count of calls per round must not see it)
        n = 16
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            dt = time.perf_counter() - t0
            if dt > target_s / 4:
                calls[name] = max(1, int(n * target_s / dt))
                break
            n *= 4
    samples: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], calls[name]
            gc.disable()
            c0, t0 = time.thread_time_ns(), time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n * 1e6)
            cpu[name].append((time.thread_time_ns() - c0) / n / 1e3)
            gc.enable()
    return (
        {name: statistics.median(s) for name, s in samples.items()},
        {name: statistics.median(s) for name, s in cpu.items()},
    )


def count_calls(fn: Callable[[], Any], reps: int = 200) -> dict[str, float]:
    """Python-level and C-level function calls per call of ``fn`` (deterministic)."""
    counts = {"call": 0, "c_call": 0}

    def prof(frame, event, arg):
        if event in counts:
            counts[event] += 1

    fn()
    sys.setprofile(prof)
    try:
        for _ in range(reps):
            fn()
    finally:
        sys.setprofile(None)
    return {"python calls": counts["call"] / reps, "C calls": counts["c_call"] / reps}


def profile_top(fn: Callable[[], Any], reps: int, top: int = 25) -> str:
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        fn()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    text = s.getvalue()
    return text[text.find("ncalls") :]


def pieces(x: Any, v: Any) -> dict[str, Callable[[], Any]]:
    """Each step of AF.vjp's cached path alone, and the jit dispatches of func.vjp + vjp_fn,
    found by name in the current internals."""
    from jaxfunc import _checks, _compat
    from jaxfunc._jit import _boundary, _cache

    f = f_trivial
    out: dict[str, Callable[[], Any]] = {"(empty lambda: the timing loop itself)": lambda: None}
    try:
        is_tuple, xs = AF._inputs(x, "vjp")
        v_arrays, v_desc = AF._split_v(v)
        arrays = (xs, v_arrays)
        _, entry, hoisted = _cache._lookup(f)

        def make() -> Any:
            return AF._Vjp.of(is_tuple=is_tuple, v_desc=v_desc, create_graph=False, strict=False)

        key = make().typed()
        compiled = entry.jits[key]
        slots = _cache._slot_items
        res = compiled[0](hoisted, arrays)
    except (AttributeError, KeyError, TypeError) as e:  # internals renamed or restructured
        return out | {f"(pieces unavailable: {type(e).__name__}: {e})": lambda: None}
    out |= {
        "_checks.check_callable": lambda: _checks.check_callable(f, "vjp"),
        "AF._inputs (inputs to a tuple of arrays)": lambda: AF._inputs(x, "vjp"),
        "AF._split_v": lambda: AF._split_v(v),
        "program found (Program.of: the same objects as the last call)": make,
        "at top level (JAX's trace state, read inline)": lambda: (
            type(_compat.TRACE.value) is _compat.EVAL_TRACE
        ),
        "the slot found (by id, weakly)": lambda: slots.get(id(f))[0]() is f,
        "entry.plan.guard(f)": lambda: entry.plan.guard(f),
        "the compiled program found (the entry's last, by identity)": lambda: (
            entry.last[0] is make()
        ),
        "_cache._lookup (the locked path, taken past an inline hit)": lambda: _cache._lookup(f),
        "the cache's jit called directly (dispatch)": lambda: compiled[0](hoisted, arrays),
        "the result decoded (_boundary.decode)": lambda: _boundary.decode(
            res, arrays, entry.structures
        ),
    }
    out |= _func_vjp_pieces(x, v)
    return out


def _func_vjp_pieces(x: Any, v: Any) -> dict[str, Callable[[], Any]]:
    """The two jit dispatches inside ``func.vjp + vjp_fn``, called directly."""
    from jaxfunc import func
    from jaxfunc._jit import _boundary, _cache

    def g(x):
        return x * 2

    try:
        for _ in range(3):
            _, vjp_fn = func.vjp(g, x)
        _, entry, hoisted = _cache._lookup(g)
        compiled = next(iter(entry.jits.values()))
        arrays = [x]
        encoded = compiled[0](hoisted, arrays)
        residuals = vjp_fn._residuals
        backward = vjp_fn._meta.backward()
    except (AttributeError, KeyError, TypeError, StopIteration) as e:
        return {f"(func.vjp pieces unavailable: {type(e).__name__}: {e})": lambda: None}
    return {
        "func.vjp: the cache's jit called directly": lambda: compiled[0](hoisted, arrays),
        "func.vjp: the result decoded (residuals that are inputs restored)": lambda: (
            _boundary.decode(encoded, arrays, entry.structures)
        ),
        "vjp_fn: its compiled backward called directly": lambda: backward(residuals, (v,)),
    }


def main() -> None:
    args = T.parser(__doc__.splitlines()[0]).parse_args()
    load_before = os.getloadavg()
    env = T.setup(args)
    env.dtypes = ("float64",)  # a Python-cost benchmark: one dtype is enough
    env.use_dtype("float64")
    rounds = env.rounds
    target = env.target_s / 2
    x, v = env.put(np.linspace(0.0, 1.0, N)), env.put(np.ones(N))
    hand = jax.jit(_fwd_and_vjp)
    f_af = f_trivial

    def g(x):
        return x * 2

    for _ in range(4):  # eager, compile, hits
        jax.block_until_ready(AF.vjp(f_af, x, v))
        _, vjp_fn = jaxfunc.func.vjp(g, x)
        jax.block_until_ready(vjp_fn(v))
        jax.block_until_ready(hand([x], v))
    _, vjp_fn = jaxfunc.func.vjp(g, x)
    from jaxfunc._jit import _cache

    entry = _cache._existing_slot(f_af).entries[0]
    compiled = next(iter(entry.jits.values()))
    hoisted = entry.plan.guard(f_af)
    _, xs = AF._inputs(x, "vjp")
    v_arrays, _ = AF._split_v(v)

    def two_step():
        _, fn = jaxfunc.func.vjp(g, x)
        return fn(v)

    program = AF._Vjp(is_tuple=False, v_desc=AF._split_v(v)[1], create_graph=False, strict=False)
    whole = {
        "hand-written jax.jit (the same vjp)": lambda: hand([x], v),
        "jaxfunc AF.vjp": lambda: AF.vjp(f_af, x, v),
        "_cache.call (AF.vjp's arguments already split)": lambda: _cache.call(
            f_af, program, (xs, v_arrays)
        ),
        "the cache's compiled program, called directly": lambda: compiled[0](
            hoisted, (xs, v_arrays)
        ),
        "jaxfunc func.vjp": lambda: jaxfunc.func.vjp(g, x),
        "jaxfunc vjp_fn(v)": lambda: vjp_fn(v),
        "jaxfunc func.vjp + vjp_fn": two_step,
    }
    # results are not waited for: these programs run inline and are finished on return
    print("whole calls", flush=True)
    whole_us, whole_cpu = timed(whole, rounds, target)
    for name, us in whole_us.items():
        print(f"  {name:50s} {us:8.2f} µs, thread CPU {whole_cpu[name]:8.2f} µs")
    print("pieces of an AF.vjp hit", flush=True)
    piece_us, piece_cpu = timed(pieces(x, v), rounds, target / 2)
    for name, us in piece_us.items():
        print(f"  {name:50s} {us:8.2f} µs, thread CPU {piece_cpu[name]:8.2f} µs")
    counts = {name: count_calls(fn) for name, fn in whole.items()}
    prof = {
        "jaxfunc AF.vjp": profile_top(whole["jaxfunc AF.vjp"], 5000),
        "jaxfunc func.vjp + vjp_fn": profile_top(two_step, 5000),
    }
    info = T.environment(env, load_before)
    hand_cpu = whole_cpu["hand-written jax.jit (the same vjp)"]
    rows = [
        [
            name,
            f"{whole_cpu[name]:.2f}",
            f"{whole_cpu[name] - hand_cpu:+.2f}",
            f"{us:.2f}",
            f"{counts[name]['python calls']:.0f}",
            f"{counts[name]['C calls']:.0f}",
        ]
        for name, us in whole_us.items()
    ]
    base = piece_cpu.get("(empty lambda: the timing loop itself)", 0.0)
    piece_rows = [
        [name, f"{piece_cpu[name]:.2f}", f"{piece_cpu[name] - base:.2f}", f"{us:.2f}"]
        for name, us in piece_us.items()
    ]
    md = [
        T.header("jaxfunc per-call overhead on a cache hit", env, info),
        f"`f(x) = x * 2`, N={N}, float64: XLA runs it inline (under 1,000 flops), so all the",
        "work is on the calling thread. µs per call, median over interleaved rounds: the",
        "calling thread's CPU time (`time.thread_time_ns`: time descheduled left out, the",
        "figure to read on a loaded machine) and wall time; calls counted with",
        "`sys.setprofile` (deterministic). Running Python between jit calls also slows the",
        "jit's own dispatch (caches): compare `_cache.call` with its pieces.",
        "",
        T.md_table(
            [
                "variant",
                "thread CPU µs",
                "− hand-written jit",
                "wall µs",
                "Python calls",
                "C calls",
            ],
            rows,
        ),
        "",
        "## Pieces of an `AF.vjp` hit, each timed alone",
        "",
        T.md_table(["step", "thread CPU µs", "− empty lambda", "wall µs"], piece_rows),
        "",
        "## cProfile, 5,000 hits (tottime order; profiling inflates small functions)",
        "",
    ]
    for name, text in prof.items():
        md += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    T.RESULTS.mkdir(exist_ok=True)
    (T.RESULTS / f"overhead_{env.tag}.md").write_text("\n".join(md))
    T.write_json(
        T.RESULTS / f"overhead_{env.tag}.json",
        {
            "environment": info,
            "whole_us": whole_us,
            "whole_thread_cpu_us": whole_cpu,
            "pieces_us": piece_us,
            "pieces_thread_cpu_us": piece_cpu,
            "calls": counts,
        },
    )
    print(f"\nwrote {T.RESULTS}/overhead_{env.tag}.md, .json")


if __name__ == "__main__":
    main()
