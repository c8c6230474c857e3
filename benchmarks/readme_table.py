"""The README's benchmark table, both dtypes side by side, from the committed result files.

Reads ``results/cpu.json`` and ``results/transforms_cpu.json`` (and ``cpu_tuning.json`` for
the gap row, when present) and writes ``results/readme_table.md``: per row, µs per call of
jaxfunc, the hand-written ``jax.jit`` and torch, in float32 and in float64, and jaxfunc's
ratio to torch. Nothing is measured here.

    python benchmarks/readme_table.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DTYPES = ("float32", "float64")


def _rows() -> list[tuple[str, str, str, str, str, str]]:
    """(label, file, case, size before the dtype, jaxfunc variant, torch variant)."""
    sys.path.insert(0, str(HERE))
    import bench_transforms as BT
    import bench_vjp as BV

    c1 = f"{BV.CASE1.key}: {BV.CASE1.title}"
    c4 = f"{BV.CASE4}: per-sample Jacobian (N,2)->(N,3)"
    jac = f"Jacobian: 3-layer tanh MLP R^{BT.MLP_WIDTH}->R^{BT.MLP_WIDTH}"
    return [
        ("`AF.vjp`, x²+sin(x²), N=100", "cpu", c1, "N=100", BV.AF_J, BV.AF_T),
        ("`AF.vjp`, same, N=1,000", "cpu", c1, "N=1,000", BV.AF_J, BV.AF_T),
        ("`func.vjp` + `vjp_fn`, same, N=1,000", "cpu", c1, "N=1,000", BV.FUNC_J, BV.FUNC_T),
        ("`AF.vjp`, same, N=1,000,000", "cpu", c1, "N=1,000,000", BV.AF_J, BV.AF_T),
        ("`func.vjp` + `vjp_fn`, N=1,000,000", "cpu", c1, "N=1,000,000", BV.FUNC_J, BV.FUNC_T),
        ("per-sample Jacobian, `func.vmap(vjp_fn)`", "cpu", c4, "N=1,000", BV.VMAP_JF, BV.VMAP_T),
        (
            "`AF.jacobian`, tanh MLP R¹²⁸→R¹²⁸",
            "transforms_cpu",
            jac,
            f"{BT.MLP_WIDTH}x{BT.MLP_WIDTH}",
            BT.JAC_J,
            BT.JAC_T,
        ),
        (
            "`AF.hessian`, 100 inputs",
            "transforms_cpu",
            "Hessian: sum(log cosh(Ax)) + sum(x^4)/4",
            f"{BT.HESS_INPUTS} inputs",
            BT.HESS_J,
            BT.HESS_T,
        ),
        (
            "per-sample gradients, MLP, batch 256",
            "transforms_cpu",
            f"per-sample gradients: MLP {BT.PSG_SIZES}",
            f"batch {BT.PSG_BATCH}",
            BT.PSG_J,
            BT.PSG_T,
        ),
        (
            "tutorial: per-sample gradients (cross-entropy)",
            "transforms_cpu",
            f"tutorial, per-sample gradients: MLP {BT.TUT_PSG_SIZES}, cross-entropy, param dict",
            f"batch {BT.TUT_PSG_BATCH}",
            BT.TUT_PSG,
            BT.TUT_PSG_T,
        ),
        (
            "tutorial: ensembling, 10 MLPs",
            "transforms_cpu",
            f"tutorial, ensembling: {BT.ENS_MODELS} MLPs {BT.ENS_SIZES}, stacked param dicts",
            f"batch {BT.ENS_BATCH}",
            BT.ENS,
            BT.ENS_T,
        ),
        (
            "tutorial: empirical NTK",
            "transforms_cpu",
            f"tutorial, empirical NTK: MLP {BT.NTK_SIZES}, param dict",
            f"{BT.NTK_BATCHES[0]}x{BT.NTK_BATCHES[1]} samples",
            BT.NTK,
            BT.NTK_T,
        ),
    ]


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def main() -> None:
    steady = {
        name: json.loads((RESULTS / f"{name}.json").read_text())["steady"]
        for name in ("cpu", "transforms_cpu")
    }
    hand = "hand-written jax.jit"
    headers = ["what (µs per call)"]
    for dt in DTYPES:
        headers += [f"jaxfunc {dt}", f"jit {dt}", f"torch {dt}", f"× torch {dt}"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for label, file, case, size, jf, tv in _rows():
        cells = [label]
        for dt in DTYPES:
            t = steady[file].get(f"{case}, {size}, {dt}", {})
            med = {k: v["median_s"] for k, v in t.items()}
            j, h, r = med.get(jf), med.get(hand), med.get(tv)
            ratio = f"{j / r:.2f}" if j and r else "–"
            cells += [_fmt(j), _fmt(h), _fmt(r), ratio]
        lines.append("| " + " | ".join(cells) + " |")
    out = ["\n".join(lines), ""]
    tuning = RESULTS / "cpu_tuning.json"
    if tuning.exists():
        import bench_cpu as BC

        settings = json.loads(tuning.read_text())["settings"]
        out += [
            "Case 1, N=1,000, float64, after 20 µs of Python between calls (µs per call minus "
            "the gap; `results/cpu_tuning.md`):",
            "",
            "| setting | jaxfunc `AF.vjp` | hand-written jit | torch `AF.vjp` |",
            "|---|---|---|---|",
        ]
        for name in ("default", "jaxfunc.tune_cpu()"):
            g = settings[name]["gap"]
            cells = [
                f"{g[k]['median_s'] * 1e6 - BC.GAP_US:,.1f}"
                for k in (BC.AF_GAP, BC.HAND_GAP, BC.AF_T_GAP)
            ]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    (RESULTS / "readme_table.md").write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
