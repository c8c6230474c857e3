"""Test-wide JAX settings: CPU, float64. The library itself never changes global JAX state.

Hypothesis profiles for the fuzz tests: ``ci`` (the default: derandomized, so every run and
every CI job sees the same examples, and small enough to run in well under two minutes) and
``long`` (``pytest --hypothesis-profile=long``: random, many more examples).
"""

import contextlib
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_enable_x64", True)

from jaxfunc._jit import _cache  # noqa: E402 - after the JAX settings above


@contextlib.contextmanager
def compiled_path() -> Iterator[None]:
    """Every jaxfunc call in the block goes through the cache's jit (no eager first call)."""
    before = _cache.EAGER_FIRST_CALL
    _cache.EAGER_FIRST_CALL = False
    try:
        yield
    finally:
        _cache.EAGER_FIRST_CALL = before


@pytest.fixture(params=["eager", "compiled"])
def path(request: Any) -> Iterator[str]:
    """Each test twice: a new function's first call (eager), and through the compiled path."""
    if request.param == "compiled":
        with compiled_path():
            yield request.param
    else:
        yield request.param


@pytest.fixture
def compiled() -> Iterator[None]:
    with compiled_path():
        yield


try:
    from hypothesis import HealthCheck, Phase, settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
else:
    _slow_data = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "ci",
        max_examples=35,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=_slow_data,
        # no shrinking: every example runs torch and a jit compile, so shrinking a failure
        # can take minutes; the long profile shrinks
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    settings.register_profile(
        "long",
        max_examples=1000,
        deadline=None,
        print_blob=True,
        suppress_health_check=_slow_data,
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
