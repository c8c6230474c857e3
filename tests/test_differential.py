"""Differential tests: every case of tests/cases.py on torch 2.13 and on jaxfunc, compared.

Values, returned structure (tuple vs list vs bare array, dict key order), dtypes, shapes,
exception classes and exception messages; in float64 and float32, and through both of
jaxfunc's paths: eager (a function's first call) and compiled (the guarded cache's jit).
"""

import pytest
from cases import CASES
from oracle import HAVE_TORCH, JaxSide, TorchSide, assert_same, outcome

from jaxfunc import _cache

pytestmark = pytest.mark.skipif(not HAVE_TORCH, reason="torch 2.13 (the oracle) is not installed")


@pytest.fixture(params=["eager", "compiled"])
def path(request, monkeypatch):
    if request.param == "compiled":
        monkeypatch.setattr(_cache, "EAGER_FIRST_CALL", False)
    return request.param


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_float64(case, path):
    want = outcome(case.body, TorchSide("float64"))
    got = outcome(case.body, JaxSide("float64"))
    assert_same(got, want, messages=case.messages)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_float32(case):
    want = outcome(case.body, TorchSide("float32"))
    got = outcome(case.body, JaxSide("float32"))
    assert_same(got, want, messages=case.messages, rtol=2e-6, atol=1e-6)
