"""torch's outcomes for the differential suites, recorded, so the legs without torch (the
newest JAX on Python 3.12+) still compare jaxfunc against torch.

Three suites: the spec cases (``tests/cases.py``), the bad inputs (``test_bad_inputs.BAD``)
and the numerics cases (``test_reliability.NUMERIC``). ``python tests/recorded.py`` rewrites
``tests/torch_outcomes.json`` from a live torch 2.13; with torch installed, every test that
asks :func:`torch_outcome` also checks the record against the live oracle, so a stale record
fails on the oracle leg.
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


RECORDED = load()


def key(suite: str, dtype: str, case_id: str) -> str:
    return f"{suite} {dtype} | {case_id}".lstrip()


def suites() -> dict[str, tuple[list[Any], tuple[str, ...]]]:
    """suite name -> (its cases, the float dtypes it runs in)."""
    from cases import CASES
    from test_bad_inputs import BAD
    from test_reliability import NUMERIC

    return {
        "": (CASES, ("float64", "float32")),
        "bad": (BAD, ("float64",)),
        "numerics": (NUMERIC, ("float64", "float32")),
    }


def torch_outcome(suite: str, case: Any, dtype: str = "float64") -> Any:
    """torch's outcome of ``case``: live when torch is installed (and then the record must
    agree with it), recorded otherwise."""
    import pytest
    from oracle import HAVE_TORCH, TorchSide, assert_same, outcome

    k = key(suite, dtype, case.id)
    if k not in RECORDED:
        pytest.fail(f"no recorded torch outcome for {k!r}: run python tests/recorded.py")
    record = decode(RECORDED[k])
    if not HAVE_TORCH:
        return record
    live = outcome(case.body, TorchSide(dtype))
    # A few ulps: torch's vectorized kernels (exp, tanh...) round differently on different
    # CPUs (the record may come from another machine); anything stale is far larger.
    ulps = 8 * float(np.finfo(dtype).eps)
    assert_same(record, live, rtol=ulps, atol=0, messages=case.messages, path="recorded")
    return live


def record() -> dict[str, Any]:
    from oracle import TorchSide, outcome

    return {
        key(suite, dtype, case.id): encode(outcome(case.body, TorchSide(dtype)))
        for suite, (cases, dtypes) in suites().items()
        for dtype in dtypes
        for case in cases
    }


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(PATH.parent))
    data = record()
    PATH.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(data)} outcomes to {PATH}")
