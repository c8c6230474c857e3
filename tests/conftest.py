"""Test-wide JAX settings: CPU, float64. The library itself never changes global JAX state.

Hypothesis profiles for the fuzz tests: ``ci`` (the default: derandomized, so every run and
every CI job sees the same examples, and small enough to run in well under two minutes) and
``long`` (``pytest --hypothesis-profile=long``: random, many more examples).
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)

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
