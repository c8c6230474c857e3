"""Test-wide JAX settings: CPU, float64. The library itself never changes global JAX state.

Hypothesis profiles for the fuzz tests: ``ci`` (the default: derandomized, so every run and
every CI job sees the same examples, and small enough to run in well under two minutes) and
``long`` (``pytest --hypothesis-profile=long``: random, many more examples).
"""

import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import pytest

jax.config.update("jax_enable_x64", True)

import jaxfunc  # noqa: E402 - after the JAX settings above


@pytest.fixture(params=["eager", "compiled"])
def path(request: Any) -> Iterator[str]:
    """Each test twice: uncompiled (the cache switched off) and through the compile cache
    (which compiles from a function's first call)."""
    if request.param == "eager":
        with jaxfunc.cache_disabled():
            yield request.param
    else:
        yield request.param


try:
    from hypothesis import HealthCheck, Phase, settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass
else:
    _slow_data = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "ci",
        max_examples=20,
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
