"""The composition matrix's failures grouped by cause: ``python tests/matrix_report.py [-k TEXT]``.

Runs the cells of test_matrix.py the way its tests do (same regimes, same comparison) and
prints, for each cause (jaxfunc's exception class and first line, or the kind of mismatch),
how many cell-regimes it breaks and which.
"""

from __future__ import annotations

import collections
import re
import sys
from typing import Any

import conftest  # noqa: F401 - the tests' JAX settings (CPU, float64)
import matrix_cases as M
import test_matrix as T
from oracle import Raised, assert_same, outcome

import jaxfunc


def cause(got: Any, want: Any, error: AssertionError) -> str:
    if isinstance(got, Raised):
        first = got.message.strip().splitlines()[0] if got.message.strip() else ""
        if isinstance(want, Raised) and want.cls == got.cls:
            return f"message differs from torch's: {got.cls}: {first[:90]}"
        return f"raises {got.cls}: {first[:110]}"
    if isinstance(want, Raised):
        return f"returns where torch raises {want.cls}: {want.message.splitlines()[0][:90]}"
    text = str(error)
    for pattern, label in [
        ("Not equal to tolerance", "values differ from torch's"),
        ("dtype", "dtype differs from torch's"),
        ("shape", "shape differs from torch's"),
        ("dict keys", "dict key order differs from torch's"),
        ("jaxfunc gave", "structure differs from torch's"),
        ("of", "structure (length) differs from torch's"),
    ]:
        if pattern in text:
            return label
    return re.sub(r"\d", "#", text.splitlines()[0])[:100]


def main(select: str = "") -> None:
    groups: dict[str, list[str]] = collections.defaultdict(list)
    total = failed = 0
    runs: list[tuple[str, Any, Any]] = []
    for cell in M.CELLS:
        for regime in T.REGIMES:
            runs.append((f"{cell.id}-{regime}", cell, regime))
    for bcell in M.BATCHED:
        runs.append((bcell.id, bcell, "jax.vmap"))
    for case in M.DEFECTS:
        runs.append((case.label, case, "defect"))
    for name, case, regime in runs:
        if select not in name:
            continue
        total += 1
        want = T.torch_outcome(case)
        if regime == "defect":
            jaxfunc.clear_cache()
            gots, args = [outcome(case.body, T.J) for _ in range(3)], ()
        elif regime == "jax.vmap":
            gots, args = T.run_batched(case)
        else:
            gots, args = T.run_regime(case, regime)
        for i, got in enumerate(gots):
            g, w = (
                T._sorted_if_dict_args(args, got, want)
                if regime in ("jit", "jax.vmap")
                else (got, want)
            )
            try:
                assert_same(g, w, messages=case.messages, rtol=T.RTOL, atol=T.ATOL)
            except AssertionError as e:
                failed += 1
                groups[cause(g, w, e)].append(f"{name} (call {i + 1})")
                break
    for label, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"\n[{len(names)}] {label}")
        for n in names:
            print(f"    {n}")
    print(f"\n{failed} of {total} cell-regimes fail")


if __name__ == "__main__":
    main(sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "-k" else "")
