"""What XLA's CPU backend makes of an elementwise kernel (issue 14, item 2): evidence, not timing.

For ``x**2 + f(x**2)`` (f = sin, cos, exp, log, tanh) in float32 and float64, each compiled
in a child process with ``--xla_dump_to``, this reports from the dumped HLO and object code:
the fusion and its ``outer_dimension_partitions`` (how many threads split the loop), the
external symbols the kernel calls (a libm name such as ``sinf`` means one scalar call per
element) and the count of call and vector (ymm/zmm) instructions. Settings tried:
XLA's defaults and, for sin, fast math, AVX-512, 512-bit vectors and the YNNPACK eltwise
fusion. ``vec_sin`` is the benchmarks' vectorizable formulation (``_vecsin.py``).

Needs ``objdump`` (binutils). Writes ``results/kernel_cpu.md``.

    JAX_PLATFORMS=cpu python benchmarks/inspect_kernel.py
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUNCS = ("sin", "cos", "exp", "log", "tanh", "vec_sin")
SIZES = (10_000, 100_000)
FLAGS = (
    "",
    "--xla_cpu_enable_fast_math=true",
    "--xla_cpu_max_isa=AVX512",
    "--xla_cpu_prefer_vector_width=512",
    "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_ELTWISE",
)

CHILD = """
import sys
sys.path.insert(0, {here!r})
import jax, jax.numpy as jnp
from _vecsin import vec_sin
jax.config.update("jax_enable_x64", True)
name, n, dtype = {name!r}, {n}, {dtype!r}
fn = vec_sin if name == "vec_sin" else getattr(jnp, name)
def kernel(x):
    return x**2 + fn(x**2)
kernel.__name__ = "kernel"
jax.block_until_ready(jax.jit(kernel)(jnp.ones(n, dtype)))
"""


def inspect(name: str, n: int, dtype: str, flags: str) -> dict[str, str]:
    d = tempfile.mkdtemp(prefix="xla_dump_")
    try:
        env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={d} {flags}".strip())
        env.setdefault("JAX_PLATFORMS", "cpu")
        code = CHILD.format(here=str(HERE), name=name, n=n, dtype=dtype)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1][:120]}
        hlo = "".join(
            Path(p).read_text() for p in glob.glob(f"{d}/*jit_kernel*cpu_after_optimizations.txt")
        )
        fusions = re.findall(r"= \w+\[\d+\]\{0\} fusion\([^)]*\), kind=(\w+)", hlo)
        parts = re.findall(r'outer_dimension_partitions":\[([^\]]*)\]', hlo)
        objs = glob.glob(f"{d}/*jit_kernel*.o")
        symbols: set[str] = set()
        calls = vec = 0
        for o in objs:
            relocs = subprocess.run(["objdump", "-r", o], capture_output=True, text=True).stdout
            for line in relocs.splitlines():
                fields = line.split()
                if len(fields) == 3 and fields[2] != "VALUE" and not fields[2].startswith("."):
                    symbols.add(fields[2])
            asm = subprocess.run(["objdump", "-d", o], capture_output=True, text=True).stdout
            calls += len(re.findall(r"\tcall", asm))
            vec += len(re.findall(r"%[yz]mm", asm))
        return {
            "fusions": ", ".join(fusions) or "–",
            "partitions": ", ".join(p.replace('"', "") for p in parts) or "1",
            "external symbols": ", ".join(sorted(symbols)) or "none (inlined)",
            "call instrs": str(calls),
            "ymm/zmm operands": str(vec),
        }
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    if shutil.which("objdump") is None:
        raise SystemExit("objdump (binutils) is needed to read the kernels' object code")
    sys.path.insert(0, str(HERE))
    import _timing as T

    rows = []
    for flags in FLAGS:
        for name in FUNCS if not flags else ("sin",):
            for dtype in ("float32", "float64"):
                for n in SIZES:
                    r = inspect(name, n, dtype, flags)
                    row = [flags or "(defaults)", f"x²+{name}(x²)", dtype, f"{n:,}"]
                    if "error" in r:
                        row += [r["error"], "", "", "", ""]
                    else:
                        row += [
                            r["fusions"],
                            r["partitions"],
                            r["external symbols"],
                            r["call instrs"],
                            r["ymm/zmm operands"],
                        ]
                    print(" | ".join(row), flush=True)
                    rows.append(row)
    headers = [
        "XLA_FLAGS",
        "kernel",
        "dtype",
        "N",
        "fusion kinds",
        "loop split",
        "external calls",
        "call instrs",
        "ymm/zmm operands",
    ]
    import jax

    md = [
        "# What XLA's CPU backend makes of x²+f(x²)",
        "",
        f"jax {jax.__version__}; written by `benchmarks/inspect_kernel.py` from the HLO and",
        "object code XLA dumps (`--xla_dump_to`). An external call to a libm name (`sin`,",
        "`sinf`, `log`...) is one scalar call per element; `none (inlined)` means XLA emitted",
        "its own vectorized polynomial. `loop split`: `outer_dimension_partitions`, the number",
        "of parts the fused loop is split into across XLA's intra-op threads. `vec_sin`'s",
        "program also holds `jnp.sin` (hence one `sin` symbol) in the branch it takes only for",
        "arrays with |x| ≥ 2^20; its other branch is all multiplies and adds.",
        "",
        T.md_table(headers, rows),
        "",
    ]
    T.RESULTS.mkdir(exist_ok=True)
    (T.RESULTS / "kernel_cpu.md").write_text("\n".join(md))
    print(f"wrote {T.RESULTS / 'kernel_cpu.md'}")


if __name__ == "__main__":
    main()
