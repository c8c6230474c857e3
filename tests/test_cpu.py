"""jaxfunc.tune_cpu (the opt-in CPU runtime setting) and the promise behind it: importing
jaxfunc changes no JAX state and starts no backend. Each check runs in a fresh process, since
this test session's JAX backend already exists."""

import os
import subprocess
import sys

PRELUDE = (
    "import jax\n"
    "from jax._src import xla_bridge\n"
    "def started():\n"
    "    return xla_bridge.backends_are_initialized()\n"
    "def async_dispatch():\n"
    "    return jax.config.values['jax_cpu_enable_async_dispatch']\n"
)


def _run(code: str) -> str:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_CPU_ENABLE_ASYNC_DISPATCH", None)
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_changes_nothing_and_tune_cpu_before_the_backend():
    out = _run(
        "import jaxfunc, jaxfunc.func, jaxfunc.autograd.functional\n"
        "print('after import:', started(), async_dispatch())\n"
        "jaxfunc.tune_cpu()\n"
        "print('after tune_cpu:', started(), async_dispatch())\n"
        "import jax.numpy as jnp\n"
        "x = jnp.linspace(0.0, 1.0, 1000)\n"
        "for _ in range(3):\n"
        "    out, (g,) = jaxfunc.autograd.functional.vjp(lambda x: jnp.sin(x) * x, (x,), x)\n"
        "expected = (jnp.cos(x) * x + jnp.sin(x)) * x\n"
        "print('vjp ok:', bool(jnp.allclose(g, expected, rtol=1e-6)))\n"
        "jaxfunc.tune_cpu()  # the same setting again: nothing to do\n"
        "print('repeat ok')\n"
    )
    assert "after import: False True" in out
    assert "after tune_cpu: False False" in out
    assert "vjp ok: True" in out
    assert "repeat ok" in out


def test_tune_cpu_after_the_backend_started_raises():
    out = _run(
        "import jax.numpy as jnp, jaxfunc\n"
        "jnp.zeros(3)\n"
        "try:\n"
        "    jaxfunc.tune_cpu()\n"
        "except RuntimeError as e:\n"
        "    print('raised:', e)\n"
        "print('unchanged:', async_dispatch())\n"
        "jaxfunc.tune_cpu(async_dispatch=True)  # what is already in force: no error\n"
        "print('no-op ok')\n"
    )
    assert "raised: jaxfunc.tune_cpu(async_dispatch=False): JAX's backends have already" in out
    assert "unchanged: True" in out
    assert "no-op ok" in out
