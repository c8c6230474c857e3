"""torch's outcomes for tests/cases.py, recorded, so the legs without torch (the newest JAX
on Python 3.12+) still compare jaxfunc against torch.

``python tests/recorded.py`` rewrites ``tests/torch_outcomes.json`` from a live torch 2.13;
``test_differential.py`` fails on the oracle leg if the file no longer matches torch.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

PATH = pathlib.Path(__file__).with_name("torch_outcomes.json")


def encode(outcome: Any) -> Any:
    from oracle import Raised

    if isinstance(outcome, Raised):
        return {"raised": [outcome.cls, outcome.message]}
    kind = outcome[0]
    if kind == "array":
        _, dtype, shape, arr = outcome
        arr = np.asarray(arr)
        values = np.stack([arr.real, arr.imag], -1) if arr.dtype.kind == "c" else arr
        return {"array": [dtype, list(shape), values.tolist()]}
    if kind in ("tuple", "list"):
        return {kind: [encode(x) for x in outcome[1]]}
    if kind == "dict":
        return {"dict": [[k, encode(v)] for k, v in outcome[1]]}
    return {"other": [kind, *[_jsonable(x) for x in outcome[1:]]]}


def _jsonable(x: Any) -> Any:
    return list(x) if isinstance(x, tuple) else x


def decode(data: Any) -> Any:
    from oracle import Raised

    ((kind, body),) = data.items()
    if kind == "raised":
        return Raised(*body)
    if kind == "array":
        dtype, shape, values = body
        arr = np.asarray(values, dtype="float64" if "complex" in dtype else dtype)
        if "complex" in dtype:
            arr = (arr[..., 0] + 1j * arr[..., 1]).astype(dtype)
        return ("array", dtype, tuple(shape), arr.reshape(shape))
    if kind in ("tuple", "list"):
        return (kind, [decode(x) for x in body])
    if kind == "dict":
        return ("dict", [(k, decode(v)) for k, v in body])
    name, *rest = body
    return (name, *[tuple(x) if isinstance(x, list) else x for x in rest])


def load() -> dict[str, Any]:
    if not PATH.exists():
        return {}
    return json.loads(PATH.read_text())


def record() -> dict[str, Any]:
    from cases import CASES
    from oracle import TorchSide, outcome

    return {
        f"{dtype} | {case.id}": encode(outcome(case.body, TorchSide(dtype)))
        for dtype in ("float64", "float32")
        for case in CASES
    }


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(PATH.parent))
    data = record()
    PATH.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(data)} outcomes to {PATH}")
