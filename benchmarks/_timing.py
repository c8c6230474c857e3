"""Shared machinery of the benchmark scripts: device set-up, interleaved timing, checks, output.

Timing rules (the machine is shared and noisy): every variant is warmed up (which also runs
jaxfunc's first call, which compiles), then timed once per round, all variants inside
each round, in an order that rotates from round to round; each timing runs enough calls to
last ``target_s``. The reported figure is the median over rounds of the mean time per call.
Ratios are only meaningful between numbers taken in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jaxlib
import numpy as np

try:
    import torch
except ImportError:  # the torch variants are skipped
    torch = None

import jaxfunc

RESULTS = Path(__file__).resolve().parent / "results"


# -- command line and devices -------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="where JAX (and torch) run; auto: JAX's default backend (default: %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="few short rounds: proves the script runs")
    p.add_argument("--rounds", type=int, help="timing rounds (default: 7, quick: 3)")
    p.add_argument(
        "--dtype",
        choices=("float32", "float64", "both"),
        default="both",
        help="floating dtype of every input, JAX and torch alike (default: %(default)s)",
    )
    p.add_argument(
        "--target-time",
        type=float,
        help="seconds each timing lasts, calls repeated to fill it (default: 0.2, quick: 0.02)",
    )
    return p


@dataclasses.dataclass
class Env:
    """Where the benchmark runs, and the settings every timing in it uses."""

    tag: str  # "cpu" or "gpu": names the result files
    jax_device: Any
    torch_device: str | None  # None: torch variants are skipped
    torch_skip_reason: str
    quick: bool
    rounds: int
    target_s: float
    dtypes: tuple[str, ...] = ("float64",)  # every dtype this run covers
    dtype: str = "float64"  # the one being measured now (``use_dtype``)

    def cast(self, a: np.ndarray) -> np.ndarray:
        """Floating arrays in the current dtype; other arrays as they are."""
        a = np.asarray(a)
        return a.astype(self.dtype) if a.dtype.kind == "f" else a

    def rounded(self, a: np.ndarray) -> np.ndarray:
        """``a`` as the variants will see it (rounded to the current dtype), in float64: the
        input of the analytic reference values."""
        a = self.cast(a)
        return a.astype(np.float64) if a.dtype.kind == "f" else a

    def put(self, a: np.ndarray) -> jax.Array:
        return jax.device_put(self.cast(a), self.jax_device)

    def tensor(self, a: np.ndarray) -> Any:
        return torch.from_numpy(np.array(self.cast(a))).to(self.torch_device)

    def use_dtype(self, dtype: str) -> None:
        """Measure in ``dtype`` from now on: inputs are cast to it, torch's default follows."""
        self.dtype = dtype
        if self.torch_device:
            torch.set_default_dtype(getattr(torch, dtype))


def setup(args: argparse.Namespace) -> Env:
    """x64 enabled (float64 needs it; float32 inputs stay float32), devices chosen, JAX warmed
    up; the dtype to measure first is set (``Env.use_dtype``)."""
    jax.config.update("jax_enable_x64", True)
    platform_ = jax.default_backend() if args.device == "auto" else args.device
    try:
        device = jax.devices(platform_)[0]
    except RuntimeError as e:
        raise SystemExit(f"--device {args.device}: JAX has no such backend here ({e})") from None
    jax.config.update("jax_default_device", device)
    tag = "cpu" if device.platform == "cpu" else "gpu"
    torch_device, reason = None, ""
    if torch is None:
        reason = "torch is not installed"
    elif tag == "gpu" and not torch.cuda.is_available():
        reason = "torch has no CUDA device (comparing GPU JAX with CPU torch would mislead)"
    else:
        torch_device = "cpu" if tag == "cpu" else "cuda"
        torch.set_default_dtype(torch.float64)
    if reason:
        print(f"note: torch variants skipped: {reason}")
    rounds = args.rounds or (3 if args.quick else 7)
    target_s = args.target_time or (0.02 if args.quick else 0.2)
    _warm_up_jax()
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    env = Env(tag, device, torch_device, reason, args.quick, rounds, target_s, dtypes)
    env.use_dtype(dtypes[0])
    return env


def _warm_up_jax() -> None:
    """JAX's one-time process start-up costs must not land on the first variant measured."""
    x = jax.numpy.arange(3.0)

    def f(x):
        return x * x

    jax.block_until_ready(jax.jit(lambda x: jax.vjp(f, x)[1](x))(x))
    jax.block_until_ready(jax.vjp(f, x)[1](x))
    for _ in range(3):  # eager, compile, compiled
        jax.block_until_ready(jaxfunc.autograd.functional.vjp(f, x, x))


# -- variants and timing ------------------------------------------------------------------------


@dataclasses.dataclass
class Variant:
    """One way of computing a benchmark's result.

    ``fn()`` does one call and returns its result. ``framework`` ("jax" or "torch") says how
    to wait for the result. ``torch_ref``/``jit_ref`` name the variants its ratios are taken
    against (same API form in torch; the hand-written ``jax.jit``).
    """

    name: str
    fn: Callable[[], Any]
    framework: str
    torch_ref: str | None = None
    jit_ref: str | None = None


def make_blocker(framework: str, env: Env) -> Callable[[Any], None]:
    if framework == "jax":
        return jax.block_until_ready
    if env.torch_device == "cuda":
        return lambda _: torch.cuda.synchronize()
    return lambda _: None  # CPU torch returns finished tensors


@dataclasses.dataclass
class Timing:
    median_s: float
    min_s: float
    max_s: float
    calls_per_timing: int
    samples_s: list[float]
    first_calls_s: list[float]  # wall time of the first FIRST_CALLS calls, one by one

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIRST_CALLS = 3


def measure(
    variants: list[Variant],
    env: Env,
    expected: list[np.ndarray],
    what: str,
    warm: Callable[[], Any] | None = None,
) -> dict[str, Timing]:
    """Check and time ``variants`` (see the module docstring); ``what`` names the benchmark.

    The first ``FIRST_CALLS`` calls of each variant are timed one by one and their results
    checked against ``expected`` (so jaxfunc's eager, compiling and compiled paths are all
    checked) before any steady-state timing starts. ``warm()`` runs first, untimed: eager JAX
    compiles a kernel per primitive and shape on first use, and that one-off cost must not
    land on the call 1 of whichever variant happens to run first at a new shape.
    """
    if warm is not None:
        jax.block_until_ready(warm())
    first: dict[str, list[float]] = {}
    calls: dict[str, int] = {}
    blockers = {v.name: make_blocker(v.framework, env) for v in variants}
    for v in variants:
        first[v.name] = []
        for _ in range(FIRST_CALLS):
            t0 = time.perf_counter()
            out = v.fn()
            blockers[v.name](out)
            first[v.name].append(time.perf_counter() - t0)
            check(v.name, out, expected, what)
    for v in variants:
        calls[v.name] = _calibrate(v.fn, blockers[v.name], env.target_s)
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(env.rounds):
        k = r % len(variants)  # rotate the order: no variant always runs right after another
        for v in variants[k:] + variants[:k]:
            n = calls[v.name]
            samples[v.name].append(_time_calls(v.fn, blockers[v.name], n) / n)
        gc.collect()
    return {
        v.name: Timing(
            statistics.median(samples[v.name]),
            min(samples[v.name]),
            max(samples[v.name]),
            calls[v.name],
            samples[v.name],
            first[v.name],
        )
        for v in variants
    }


def _time_calls(fn: Callable[[], Any], block: Callable[[Any], None], n: int) -> float:
    gc_was_on = gc.isenabled()
    gc.disable()  # as timeit does: a collection inside one timing is noise
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            block(fn())
        return time.perf_counter() - t0
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(fn: Callable[[], Any], block: Callable[[Any], None], target_s: float) -> int:
    """Calls per timing so that one timing lasts about ``target_s``."""
    n = 1
    while True:
        elapsed = _time_calls(fn, block, n)
        if elapsed >= target_s / 4 or n >= 1 << 20:
            return max(1, round(n * target_s / elapsed))
        n *= 4


@dataclasses.dataclass
class ColdVariant:
    """A call that can only be timed once per fresh state (a new function object, a new jit).

    ``setup()`` builds the state, untimed; ``call(state)`` is timed and returns the result.
    """

    name: str
    setup: Callable[[], Any]
    call: Callable[[Any], Any]
    framework: str


def measure_cold(
    variants: list[ColdVariant], expected: list[np.ndarray], env: Env, what: str
) -> dict[str, Timing]:
    """Fresh states per variant per round (2 quick, 5 full), interleaved like ``measure``;
    every result is checked against ``expected`` (untimed)."""
    per_round = 2 if env.quick else 5
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(env.rounds):
        k = r % len(variants)
        for v in variants[k:] + variants[:k]:
            block = make_blocker(v.framework, env)
            total = 0.0
            for _ in range(per_round):
                state = v.setup()
                t0 = time.perf_counter()
                out = v.call(state)
                block(out)
                total += time.perf_counter() - t0
                check(v.name, out, expected, what)
            samples[v.name].append(total / per_round)
        gc.collect()
    return {
        name: Timing(statistics.median(s), min(s), max(s), per_round, s, [])
        for name, s in samples.items()
    }


@dataclasses.dataclass
class Benchmark:
    """One problem at one size: its variants and their timings."""

    case: str  # e.g. "case 1: x²+sin(x²)"
    size: str  # e.g. "N=1,000"
    variants: list[Variant]
    timings: dict[str, Timing]

    def ratio(self, name: str, ref: str | None) -> float | None:
        return ratio(self.timings, name, ref)

    def print(self) -> None:
        for name, t in self.timings.items():
            print(f"  {name:52s} {fmt_us(t.median_s):>10s} µs")


#: What a benchmark script prepares for one problem: variants, analytic results, warm-up.
Prepared = tuple[list[Variant], list[np.ndarray], Callable[[], Any] | None]


def run(case: str, size: str, prepared: Prepared, env: Env) -> Benchmark:
    """``measure`` one problem, given as (variants, expected, warm), and print its medians."""
    variants, expected, warm = prepared
    print(f"{case}, {size}", flush=True)
    bench = Benchmark(
        case, size, variants, measure(variants, env, expected, f"{case}, {size}", warm)
    )
    bench.print()
    return bench


# -- correctness --------------------------------------------------------------------------------


def leaves(tree: Any) -> list[np.ndarray]:
    """The arrays of a result (nested tuples/lists/dicts of jax arrays or torch tensors), as
    numpy."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in leaves(item)]
    if isinstance(tree, dict):  # by key: JAX's own transforms return dicts with sorted keys
        return [leaf for key in sorted(tree) for leaf in leaves(tree[key])]
    if torch is not None and isinstance(tree, torch.Tensor):
        return [tree.detach().cpu().numpy()]
    return [np.asarray(tree)]


def tolerance(dtype: Any) -> tuple[float, float]:
    """(rtol, atol as a fraction of the largest expected magnitude) for results of ``dtype``.

    float64: every variant agrees to ~1e-14, so these only catch real errors. float32: a few
    ulp per operation through a small network, against float64 analytic values.
    """
    if np.dtype(dtype) == np.float32:
        return 2e-4, 2e-5
    return 1e-9, 1e-11


def check(name: str, result: Any, expected: list[np.ndarray], what: str) -> None:
    """A variant's result must equal ``expected`` (analytic values), hence every other variant's.

    The tolerance follows the result's dtype (``tolerance``). Raises AssertionError naming
    the benchmark and the variant.
    """
    got = leaves(result)
    if len(got) != len(expected):
        raise AssertionError(f"{what}: {name} returned {len(got)} arrays, expected {len(expected)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        rtol, atol = tolerance(g.dtype)
        np.testing.assert_allclose(
            g,
            e,
            rtol=rtol,
            atol=atol * max(1.0, float(np.max(np.abs(e), initial=0.0))),
            err_msg=f"{what}: {name} disagrees with the analytic result (array {i})",
        )


# -- targets and report -------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    description: str
    value: float
    limit: float
    unit: str = "×"

    @property
    def met(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.met else "MISS"
        if self.unit == "×":
            measured = f"{self.value:.2f}× (target ≤ {self.limit:g}×)"
        else:
            measured = f"{self.value:.1f} {self.unit} (target ≤ {self.limit:g} {self.unit})"
        return f"{verdict}  {self.description}: {measured}"


def ratio(timings: dict[str, Timing], name: str, ref: str | None) -> float | None:
    if ref is None or name == ref or ref not in timings or name not in timings:
        return None
    return timings[name].median_s / timings[ref].median_s


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.2f}" if ms < 10 else f"{ms:,.1f}"


def fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


STEADY_NOTE = """\
µs per call: median over rounds (range: min–max across rounds). `× torch`: against the torch
variant of the same API form; `× jit`: against the hand-written `jax.jit` of the same
computation. AF = `autograd.functional`."""

FIRST_CALLS_NOTE = """\
Wall time of each variant's first three calls, one sample each (noisy). jaxfunc runs the
first call(s) of a new function eagerly and then compiles once (the slow call); a
hand-written `jax.jit` compiles on call 1; torch and eager JAX never compile."""


def steady_table(benchmarks: list[Benchmark]) -> str:
    rows = []
    for b in benchmarks:
        for v in b.variants:
            t = b.timings[v.name]
            rows.append(
                [
                    b.case,
                    b.size,
                    v.name,
                    fmt_us(t.median_s),
                    f"{fmt_us(t.min_s)}–{fmt_us(t.max_s)}",
                    fmt_ratio(b.ratio(v.name, v.torch_ref)),
                    fmt_ratio(b.ratio(v.name, v.jit_ref)),
                ]
            )
    return md_table(["case", "size", "variant", "µs/call", "range", "× torch", "× jit"], rows)


def first_calls_table(benchmarks: list[Benchmark]) -> str:
    rows = [
        [b.case, b.size, name] + [fmt_ms(s) for s in t.first_calls_s] + [fmt_us(t.median_s)]
        for b in benchmarks
        for name, t in b.timings.items()
    ]
    headers = ["case", "size", "variant"] + [f"call {k + 1} ms" for k in range(FIRST_CALLS)]
    return md_table([*headers, "steady µs"], rows)


def steady_json(benchmarks: list[Benchmark]) -> dict[str, dict[str, Timing]]:
    return {f"{b.case}, {b.size}": b.timings for b in benchmarks}


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + (" (src/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(env: Env, load_before: tuple[float, ...]) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "jax_device": str(jax.devices()[0]),
        "jax_device_kind": jax.devices()[0].device_kind,
        "jax_device_used": str(env.jax_device),
        "torch_device": env.torch_device or f"skipped: {env.torch_skip_reason}",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "jaxfunc": jaxfunc.__version__,
        "jaxfunc_commit": _git_commit(),
        "torch": torch.__version__ if torch is not None else "not installed",
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "numpy": np.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "dtype": " and ".join(env.dtypes),
        "mode": "quick" if env.quick else "full",
        "rounds": env.rounds,
        "target_s_per_timing": env.target_s,
        "argv": sys.argv[1:],
    }


def header(title: str, env: Env, info: dict[str, Any]) -> str:
    lines = [f"# {title}", ""]
    if env.quick:
        lines += [
            "> **Quick run** (`--quick`: few, short rounds). These numbers only show that the",
            "> script works; do not quote them.",
            "",
        ]
    lines += _load_warning(info)
    lines += [
        f"- JAX device: `{info['jax_device_used']}` (`jax.devices()[0]`: `{info['jax_device']}`,"
        f" {info['jax_device_kind']}); torch device: {info['torch_device']}",
        f"- versions: Python {info['python']}, jax {info['jax']}, jaxlib {info['jaxlib']}, "
        f"jaxfunc {info['jaxfunc']} (commit {info['jaxfunc_commit']}), torch {info['torch']}"
        + (f" ({info['torch_threads']} threads)" if info["torch_threads"] else "")
        + f", numpy {info['numpy']}",
        f"- machine: {info['machine']}; load average {info['load_average_before'][0]:.2f} before,"
        f" {info['load_average_after'][0]:.2f} after",
        f"- {info['date']}; dtype {info['dtype']}; {info['rounds']} rounds, "
        f"~{info['target_s_per_timing']} s per timing; figures are medians over rounds",
        "",
    ]
    return "\n".join(lines)


def _load_warning(info: dict[str, Any]) -> list[str]:
    """A warning when the machine was oversubscribed: torch's OpenMP threads then collapse
    (milliseconds for a 40 µs call) and JAX's timings spread several-fold."""
    load = max(info["load_average_before"][0], info["load_average_after"][0])
    cores = os.cpu_count() or 1
    if load <= 1.5 * cores:
        return []
    return [
        f"> **Loaded machine** (load average {load:.1f} on {cores} cores): ratios against torch",
        "> are not meaningful in this run (torch's threads stall when the cores are",
        "> oversubscribed) and JAX's figures spread several-fold. Re-run on a quiet machine.",
        "",
    ]


def _target_lines(targets: list[Target]) -> list[str]:
    return [t.line() for t in targets] or ["(none measured: every target compares with torch)"]


def targets_section(targets: list[Target]) -> str:
    return "\n".join(["## Targets", "", "```", *_target_lines(targets), "```", ""])


def targets_json(targets: list[Target]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(t) | {"met": t.met} for t in targets]


def print_targets(targets: list[Target]) -> None:
    print("\nTargets:")
    for line in _target_lines(targets):
        print("  " + line)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Timing):
        return obj.as_json()
    raise TypeError(f"not JSON serialisable: {type(obj)}")
