"""Differential tests: every case of tests/cases.py on torch 2.13 and on jaxfunc, compared.

Values, returned structure (tuple vs list vs bare array, dict key order), dtypes, shapes,
exception classes and exception messages; in float64 and float32, and through both of
jaxfunc's paths: eager (a function's first call) and compiled (the guarded cache's jit).

Without torch (the legs on the newest JAX), torch's outcomes come from
``tests/torch_outcomes.json``; with torch, that record is checked against the live oracle.
"""

import pytest
import recorded
from cases import CASES
from oracle import JaxSide, assert_same, outcome
from recorded import torch_outcome


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_float64(case, path):
    want = torch_outcome("", case, "float64")
    got = outcome(case.body, JaxSide("float64"))
    assert_same(got, want, messages=case.messages)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_float32(case):
    want = torch_outcome("", case, "float32")
    got = outcome(case.body, JaxSide("float32"))
    assert_same(got, want, messages=case.messages, rtol=2e-6, atol=1e-6)


def test_record_covers_every_case():
    """Every case of every suite has its recorded torch outcome and nothing else is recorded
    (a missing record inside a strict-xfail case would pass as the expected failure)."""
    want = {
        recorded.key(suite, dtype, case.id)
        for suite, (cases, dtypes) in recorded.suites().items()
        for dtype in dtypes
        for case in cases
    }
    assert want == set(recorded.RECORDED)
