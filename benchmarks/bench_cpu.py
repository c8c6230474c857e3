"""CPU runtime benchmark (issue 14): the post-idle call penalty and the elementwise kernel.

Process-wide runtime settings can only be compared across processes, so this script runs one
child process per setting; inside each child every timing is interleaved with the others
(``_timing.measure``), so the ratios within one child are what to read:

- **gap**: case 1 (x²+sin(x²), N=1,000, float64) with 20 µs of Python (a busy wait) before
  every call: the hand-written ``jax.jit``, jaxfunc's ``AF.vjp`` and ``func.vjp + vjp_fn``,
  torch's two forms; and the hand-written jit called back to back. Reported minus the gap.
  Also counted, untimed: voluntary context switches per call of every thread of the process
  (``/proc/self/task/*/status``), which is what tells the settings apart;
- **kernel**: the forward x²+sin(x²) alone, float32 and float64, N = 1e4, 1e5, 1e6: ``jax.jit``
  of ``jnp`` code, ``jax.jit`` with ``sin`` written as vectorizable arithmetic
  (``_vecsin.vec_sin``), and torch (``torch.set_num_threads(2)``);
- **fidelity** (in the parent): ulp error of ``jnp.sin``, ``vec_sin``, ``torch.sin`` against
  mpmath, and their values at ±inf, NaN, ±0 and 1e30.

Settings: JAX's defaults; ``jaxfunc.tune_cpu()`` (CPU programs run inline, no async
dispatch); the environment variable ``JAX_CPU_ENABLE_ASYNC_DISPATCH=false`` (which jax 0.10
does not read: shown so that nobody relies on it); ``--xla_cpu_multi_thread_eigen=false``.

Writes ``results/cpu_tuning.md`` and ``.json``, and prints PASS/MISS per target.

    JAX_PLATFORMS=cpu python benchmarks/bench_cpu.py [--quick] [--rounds R]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
GAP_US = 20
KERNEL_NS = (10_000, 100_000, 1_000_000)
DTYPES = ("float32", "float64")
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {"env": {}, "tune": False},
    "jaxfunc.tune_cpu()": {"env": {}, "tune": True},
    "env JAX_CPU_ENABLE_ASYNC_DISPATCH=false": {
        "env": {"JAX_CPU_ENABLE_ASYNC_DISPATCH": "false"},
        "tune": False,
    },
    "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false": {
        "env": {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"},
        "tune": False,
    },
}

HAND_B2B = "hand-written jax.jit, back to back"
HAND_GAP = f"hand-written jax.jit after {GAP_US} µs"
AF_GAP = f"jaxfunc AF.vjp after {GAP_US} µs"
FUNC_GAP = f"jaxfunc func.vjp + vjp_fn after {GAP_US} µs"
AF_T_GAP = f"torch AF.vjp after {GAP_US} µs"
FUNC_T_GAP = f"torch.func.vjp + vjp_fn after {GAP_US} µs"
K_JIT = "jax.jit (jnp.sin)"
K_VEC = "jax.jit (vec_sin)"
K_TORCH = "torch (2 threads)"


# -- child: one setting, everything timed in one process ------------------------------------


def _voluntary_switches() -> dict[str, int]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        out[tid] = int(line.split()[1])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return out


def _switches_per_call(fn: Any, block: Any, calls: int) -> dict[str, float]:
    """Voluntary context switches per call: the calling thread and all other threads."""
    me = str(__import__("threading").get_native_id())
    before = _voluntary_switches()
    for _ in range(calls):
        block(fn())
    after = _voluntary_switches()
    mine = (after.get(me, 0) - before.get(me, 0)) / calls
    others = sum(v - before.get(t, 0) for t, v in after.items() if t != me) / calls
    return {"calling thread": mine, "other threads": others}


def child(setting: str, quick: bool, rounds: int | None) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import jaxfunc

    if SETTINGS[setting]["tune"]:
        jaxfunc.tune_cpu()  # before anything starts JAX's backends
    import _timing as T
    import bench_vjp as B
    import jax
    import jax.numpy as jnp
    import torch
    from _vecsin import vec_sin

    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float64)
    jax.config.update("jax_enable_x64", True)
    env = T.Env(
        "cpu",
        jax.devices("cpu")[0],
        "cpu",
        "",
        quick,
        rounds or (3 if quick else 9),
        0.02 if quick else 0.2,
    )
    T._warm_up_jax()
    info = {
        "jax_cpu_enable_async_dispatch": bool(jax.config.values["jax_cpu_enable_async_dispatch"]),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "torch_threads": torch.get_num_threads(),
    }

    # gap: case 1, N=1,000, float64
    variants, expected, warm = B.vjp_variants(B.CASE1, B.N_CASES, env)
    by_name = {v.name: v for v in variants}

    def gapped(name: str, ref: str, torch_ref: str | None = None) -> T.Variant:
        v = by_name[ref]
        fn = __import__("functools").partial(B._after_python, GAP_US, v.fn)
        return T.Variant(name, fn, v.framework, torch_ref, HAND_GAP)

    gap_variants = [
        T.Variant(HAND_B2B, by_name[B.HAND].fn, "jax"),
        gapped(HAND_GAP, B.HAND),
        gapped(AF_GAP, B.AF_J, AF_T_GAP),
        gapped(FUNC_GAP, B.FUNC_J, FUNC_T_GAP),
        gapped(AF_T_GAP, B.AF_T),
        gapped(FUNC_T_GAP, B.FUNC_T),
    ]
    gap_t = T.measure(gap_variants, env, expected, "gap", warm)
    switches = {
        v.name: _switches_per_call(v.fn, T.make_blocker(v.framework, env), 200 if quick else 2000)
        for v in gap_variants
    }

    # kernel: forward x²+sin(x²)
    kernel: dict[str, dict[str, Any]] = {}
    for dtype in DTYPES:
        for n in KERNEL_NS:
            x_np = np.linspace(0.0, 5.0, n).astype(dtype)
            x, xt = jnp.asarray(x_np), torch.from_numpy(x_np)
            f_jit = jax.jit(lambda x: x**2 + jnp.sin(x**2))
            f_vec = jax.jit(lambda x: x**2 + vec_sin(x**2))
            x64 = x_np.astype(np.float64)
            expected_k = [x64**2 + np.sin(x64**2)]
            ks = [
                T.Variant(K_JIT, lambda f=f_jit, x=x: f(x), "jax", K_TORCH),
                T.Variant(K_VEC, lambda f=f_vec, x=x: f(x), "jax", K_TORCH),
                T.Variant(K_TORCH, lambda xt=xt: xt**2 + torch.sin(xt**2), "torch"),
            ]
            kernel[f"{dtype}, N={n:,}"] = T.measure(ks, env, expected_k, f"kernel {dtype} {n}")
    return {
        "info": info,
        "gap": gap_t,
        "switches_per_call": switches,
        "kernel": kernel,
    }


# -- parent: one child per setting, fidelity, report -------------------------------------------


def run_child(setting: str, quick: bool, rounds: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("JAX_CPU_ENABLE_ASYNC_DISPATCH", None)
    env.pop("XLA_FLAGS", None)
    env.update(SETTINGS[setting]["env"])
    env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [sys.executable, __file__, "--child", setting] + (["--quick"] if quick else [])
    cmd += ["--rounds", str(rounds)] if rounds else []
    print(f"setting: {setting}", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child for {setting!r} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fidelity() -> dict[str, Any]:
    """ulp error against mpmath on the benchmark's arguments (x², x in [0, 5]) and beyond."""
    import jax
    import jax.numpy as jnp
    import mpmath
    import torch
    from _vecsin import vec_sin

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for dtype in DTYPES:
        ranges = {
            "x² for x in [0, 5]": np.linspace(0.0, 5.0, 4001) ** 2,
            "[-1e4, 1e4]": rng.uniform(-1e4, 1e4, 4000),
        }
        for label, xs64 in ranges.items():
            xs = xs64.astype(dtype)
            ref = np.array([float(mpmath.sin(mpmath.mpf(float(v)))) for v in xs])
            ulp = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
            row = {}
            for name, y in (
                ("jnp.sin", np.asarray(jax.jit(jnp.sin)(xs))),
                ("vec_sin", np.asarray(jax.jit(vec_sin)(xs))),
                ("torch.sin", torch.sin(torch.from_numpy(xs)).numpy()),
            ):
                err = np.abs(y.astype(np.float64) - ref) / ulp
                row[name] = {"max_ulp": float(err.max()), "mean_ulp": float(err.mean())}
            out[f"{dtype}, {label}"] = row
        special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30], dtype)
        out[f"{dtype}, special"] = {
            "inputs": [str(v) for v in special],
            "jnp.sin": [str(v) for v in np.asarray(jax.jit(jnp.sin)(special))],
            "vec_sin": [str(v) for v in np.asarray(jax.jit(vec_sin)(special))],
            "torch.sin": [str(v) for v in torch.sin(torch.from_numpy(special)).numpy()],
        }
    return out


def _us(t: dict[str, Any], minus: float = 0.0) -> float:
    return t["median_s"] * 1e6 - minus


def targets(results: dict[str, dict[str, Any]]) -> list[Any]:
    import _timing as T

    out = []
    for setting, r in results.items():
        if setting not in ("default", "jaxfunc.tune_cpu()"):
            continue
        g = r["gap"]
        af, hand, torch_af = (_us(g[k], GAP_US) for k in (AF_GAP, HAND_GAP, AF_T_GAP))
        out += [
            T.Target(f"[{setting}] AF.vjp, N=1e3, 20 µs gap: vs torch AF.vjp", af / torch_af, 0.5),
            T.Target(f"[{setting}] AF.vjp, N=1e3, 20 µs gap: vs hand-written jit", af / hand, 1.25),
        ]
        for key, k in r["kernel"].items():
            for name in (K_JIT, K_VEC):
                out.append(
                    T.Target(
                        f"[{setting}] forward x²+sin(x²), {key}: {name} vs torch",
                        k[name]["median_s"] / k[K_TORCH]["median_s"],
                        1.2,
                    )
                )
    return out


def markdown(results, fid, tgts, info) -> str:
    import _timing as T

    load = {
        "load_average_before": [info["load_before"]],
        "load_average_after": [info["load_after"]],
    }
    lines = [
        "# jaxfunc CPU runtime benchmark (issue 14)",
        "",
        *T._load_warning(load),
        f"- {info['date']}; {info['machine']}; Python {info['python']}, jax {info['jax']}, "
        f"torch {info['torch']}",
        f"- load average {info['load_before']:.2f} before, {info['load_after']:.2f} after "
        f"(`uptime`: {info['uptime_before']} / {info['uptime_after']})",
        f"- {'QUICK RUN: numbers not worth quoting; ' if info['quick'] else ''}"
        f"{info['rounds']} rounds; one child "
        "process per setting; inside each, variants interleaved, medians over rounds. Compare "
        "ratios within a column-block of one setting; absolute µs move with the machine's load.",
        "",
        "## Targets",
        "",
        "```",
        *[t.line() for t in tgts],
        "```",
        "",
        f"## Calls after {GAP_US} µs of Python (case 1, N=1,000, float64)",
        "",
        f"µs per call minus the {GAP_US} µs gap (the back-to-back row has no gap); "
        "`ctx sw/call`: voluntary context switches per call, calling thread + other threads.",
        "",
    ]
    settings = list(results)
    headers = ["variant"] + [f"{s}: µs" for s in settings] + [f"{s}: ctx sw/call" for s in settings]
    rows = []
    for name in results[settings[0]]["gap"]:
        minus = 0 if name == HAND_B2B else GAP_US
        row = [name] + [T.fmt_us(_us(results[s]["gap"][name], minus) / 1e6) for s in settings]
        for s in settings:
            sw = results[s]["switches_per_call"][name]
            row.append(f"{sw['calling thread']:.2f} + {sw['other threads']:.2f}")
        rows.append(row)
    lines += [T.md_table(headers, rows), ""]
    lines += [
        "Setting as seen by each child: "
        + "; ".join(
            f"{s}: async dispatch {r['info']['jax_cpu_enable_async_dispatch']}"
            for s, r in results.items()
        ),
        "",
        "## Forward x²+sin(x²) (no gap: back to back)",
        "",
        "µs per call; `× torch` against torch's forward in the same child.",
        "",
    ]
    headers = (
        ["dtype, N", "variant"]
        + [f"{s}: µs" for s in settings]
        + [f"{s}: × torch" for s in settings]
    )
    rows = []
    for key in results[settings[0]]["kernel"]:
        for name in (K_JIT, K_VEC, K_TORCH):
            row = [key, name]
            row += [T.fmt_us(results[s]["kernel"][key][name]["median_s"]) for s in settings]
            row += [
                T.fmt_ratio(
                    results[s]["kernel"][key][name]["median_s"]
                    / results[s]["kernel"][key][K_TORCH]["median_s"]
                )
                for s in settings
            ]
            rows.append(row)
    lines += [T.md_table(headers, rows), ""]
    lines += [
        "## Fidelity of sin (ulp against mpmath)",
        "",
        "`vec_sin` is the vectorizable formulation (benchmarks/_vecsin.py), not part of jaxfunc.",
        "",
    ]
    rows = []
    for key, row in fid.items():
        if key.endswith("special"):
            continue
        for name, e in row.items():
            rows.append([key, name, f"{e['max_ulp']:.2f}", f"{e['mean_ulp']:.3f}"])
    lines += [T.md_table(["dtype, arguments", "sin", "max ulp", "mean ulp"], rows), ""]
    for key, row in fid.items():
        if key.endswith("special"):
            lines.append(f"- {key}: inputs {', '.join(row['inputs'])}")
            for name in ("jnp.sin", "vec_sin", "torch.sin"):
                lines.append(f"  - {name}: {', '.join(row[name])}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    quick = "--quick" in args
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else None
    if "--child" in args:
        setting = args[args.index("--child") + 1]
        result = child(setting, quick, rounds)
        print(json.dumps(result, default=lambda o: o.as_json()))
        return
    import datetime
    import platform

    sys.path.insert(0, str(HERE))
    import _timing as T
    import jax
    import torch

    def uptime() -> str:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    info: dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "quick": quick,
        "rounds": rounds or (3 if quick else 9),
        "load_before": os.getloadavg()[0],
        "uptime_before": uptime(),
    }
    t0 = time.time()
    results = {s: run_child(s, quick, rounds) for s in SETTINGS}
    fid = fidelity()
    info.update(load_after=os.getloadavg()[0], uptime_after=uptime(), seconds=time.time() - t0)
    tgts = targets(results)
    T.RESULTS.mkdir(exist_ok=True)
    (T.RESULTS / "cpu_tuning.md").write_text(markdown(results, fid, tgts, info))
    T.write_json(
        T.RESULTS / "cpu_tuning.json",
        {
            "environment": info,
            "settings": results,
            "fidelity": fid,
            "targets": T.targets_json(tgts),
        },
    )
    T.print_targets(tgts)
    print(f"\nwrote {T.RESULTS / 'cpu_tuning'}.md, .json")


if __name__ == "__main__":
    main()
