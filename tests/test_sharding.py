"""jaxfunc on a sharded batch: 8 CPU devices, a data-parallel loss, gradients and vjps.

The flag that makes 8 host devices must be set before JAX initialises, so the work runs in
a subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=8``, ``JAX_PLATFORMS=cpu``)
that prints one JSON object; the tests below read it. Each check compares a jaxfunc result
on sharded inputs with the same computation by plain ``jax.grad``/``jax.vjp`` on one device,
and checks the result's ``.sharding``: batch-shaped results stay split over the 8 devices
along the batch axis, parameter-shaped results are replicated. Every check runs eagerly
(through the compile cache: first call and cached calls) and inside ``jax.jit``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

WORKER = textwrap.dedent(
    r'''
    import json

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    import jaxfunc.func as TF
    from jaxfunc._jit import _cache

    devices = jax.devices()
    mesh = Mesh(np.array(devices), ("data",))
    BATCH = NamedSharding(mesh, P("data"))  # split along the batch axis
    REPL = NamedSharding(mesh, P())  # a full copy on every device

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    Y = rng.normal(size=(64,))
    W = rng.normal(size=(4,))
    one = devices[0]
    x1, y1, w1 = (jax.device_put(a, one) for a in (X, Y, W))  # the single-device reference
    xs, ys = jax.device_put(X, BATCH), jax.device_put(Y, BATCH)
    w = jax.device_put(W, REPL)


    def loss(w, x, y):
        """Data-parallel mean squared error."""
        return jnp.mean((x @ w - y) ** 2)


    def sample_loss(w, x, y):
        return (x @ w - y) ** 2


    def predict(w, x):
        return jnp.tanh(x @ w)


    CT = rng.normal(size=(64,))
    ct1, cts = jax.device_put(CT, one), jax.device_put(CT, BATCH)

    # name -> (jaxfunc computation on sharded inputs, single-device reference, expected shardings)
    checks = {
        "grad wrt replicated params": (
            lambda: TF.grad(loss)(w, xs, ys),
            lambda: jax.grad(loss)(w1, x1, y1),
            [REPL],
        ),
        "grad_and_value": (
            lambda: TF.grad_and_value(loss)(w, xs, ys),
            lambda: jax.value_and_grad(loss)(w1, x1, y1)[::-1],
            [REPL, REPL],
        ),
        "grad wrt sharded batch": (
            lambda: TF.grad(loss, argnums=1)(w, xs, ys),
            lambda: jax.grad(loss, argnums=1)(w1, x1, y1),
            [BATCH],
        ),
        "grad argnums (0, 1)": (
            lambda: TF.grad(loss, argnums=(0, 1))(w, xs, ys),
            lambda: jax.grad(loss, argnums=(0, 1))(w1, x1, y1),
            [REPL, BATCH],
        ),
        "per-example grads vmap(grad)": (
            lambda: TF.vmap(TF.grad(sample_loss), in_dims=(None, 0, 0))(w, xs, ys),
            lambda: jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, 0))(w1, x1, y1),
            [BATCH],
        ),
        "vjp output and cotangents": (
            lambda: (lambda o: (o[0], *o[1](cts)))(TF.vjp(predict, w, xs)),
            lambda: (lambda o: (o[0], *o[1](ct1)))(jax.vjp(predict, w1, x1)),
            [BATCH, REPL, BATCH],
        ),
        "vjp of the loss": (
            lambda: TF.vjp(loss, w, xs, ys)[1](jnp.ones(())),
            lambda: jax.vjp(loss, w1, x1, y1)[1](jnp.ones(())),
            [REPL, BATCH, BATCH],
        ),
    }

    # the same computations inside a user's jax.jit (the arrays enter as arguments)
    in_jit = {
        "grad wrt replicated params": lambda w, x, y: TF.grad(loss)(w, x, y),
        "grad_and_value": lambda w, x, y: TF.grad_and_value(loss)(w, x, y),
        "grad wrt sharded batch": lambda w, x, y: TF.grad(loss, argnums=1)(w, x, y),
        "grad argnums (0, 1)": lambda w, x, y: TF.grad(loss, argnums=(0, 1))(w, x, y),
        "per-example grads vmap(grad)": lambda w, x, y: TF.vmap(TF.grad(sample_loss), in_dims=(None, 0, 0))(w, x, y),
        "vjp output and cotangents": lambda w, x, y: (lambda o: (o[0], *o[1](cts)))(TF.vjp(predict, w, x)),
        "vjp of the loss": lambda w, x, y: TF.vjp(loss, w, x, y)[1](jnp.ones(())),
    }


    def describe(values, want, expected):
        values = jax.tree_util.tree_leaves(values)
        want = jax.tree_util.tree_leaves(want)
        return {
            "n": len(values),
            "n_expected": len(want),
            "max_err": max(float(np.max(np.abs(np.asarray(v) - np.asarray(r)), initial=0.0)) for v, r in zip(values, want)),
            "shapes_match": all(v.shape == r.shape for v, r in zip(values, want)),
            "dtypes_match": all(v.dtype == r.dtype for v, r in zip(values, want)),
            "shardings": [str(getattr(v.sharding, "spec", v.sharding)) for v in values],
            "n_devices": [len(v.sharding.device_set) for v in values],
            "sharding_ok": [v.sharding.is_equivalent_to(s, v.ndim) for v, s in zip(values, expected)],
        }


    out = {"device_count": len(devices), "eager": {}, "cached": {}, "jit": {}, "jit_returns_vjp_fn": None}
    for name, (run, ref, expected) in checks.items():
        want = ref()
        out["eager"][name] = describe(run(), want, expected)  # a new function: the first call
        for _ in range(2):
            got = run()
        out["cached"][name] = describe(got, want, expected)  # later calls: the cached program
        out["jit"][name] = describe(jax.jit(in_jit[name])(w, xs, ys), want, expected)
    out["stats"] = _cache.stats()

    # a vjp_fn made inside jax.jit comes out as a pytree and runs on sharded cotangents
    o, fn = jax.jit(lambda w, x: TF.vjp(predict, w, x))(w, xs)
    out["jit_returns_vjp_fn"] = describe((o, *fn(cts)), (lambda r: (r[0], *r[1](ct1)))(jax.vjp(predict, w1, x1)), [BATCH, REPL, BATCH])
    print("RESULT " + json.dumps(out))
    '''
)

CHECKS = [
    "grad wrt replicated params",
    "grad_and_value",
    "grad wrt sharded batch",
    "grad argnums (0, 1)",
    "per-example grads vmap(grad)",
    "vjp output and cotangents",
    "vjp of the loss",
]


def run_worker(script: str, timeout: float = 300) -> dict[str, Any]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"the sharding subprocess failed (exit {proc.returncode})\n"
        f"--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-20000:]}"
    )
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run_worker(WORKER)


def test_eight_devices(result: dict[str, Any]) -> None:
    assert result["device_count"] == 8


@pytest.mark.parametrize("where", ["eager", "cached", "jit"])
@pytest.mark.parametrize("name", CHECKS)
def test_sharded_result(result: dict[str, Any], where: str, name: str) -> None:
    r = result[where][name]
    assert r["n"] == r["n_expected"], r
    assert r["shapes_match"] and r["dtypes_match"], r
    assert r["max_err"] < 1e-12, f"differs from the single-device result by {r['max_err']}"
    assert all(n == 8 for n in r["n_devices"]), f"not spread over the 8 devices: {r}"
    assert all(r["sharding_ok"]), f"unexpected shardings {r['shardings']} ({where}, {name})"


def test_cached_path_was_compiled(result: dict[str, Any]) -> None:
    assert result["stats"].get("hit", 0) > 0, result["stats"]


def test_vjp_fn_returned_from_jit(result: dict[str, Any]) -> None:
    r = result["jit_returns_vjp_fn"]
    assert r["max_err"] < 1e-12 and r["shapes_match"] and all(r["sharding_ok"]), r


def test_worker_failure_shows_stderr() -> None:
    """A crash in the subprocess is reported with its stderr (so a CI log explains it)."""
    with pytest.raises(AssertionError, match=r"(?s)stderr.*ZeroDivisionError"):
        run_worker("import jax\n1 / 0\n")


DEVICES_WORKER = textwrap.dedent(
    r"""
    import json

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxfunc.autograd.functional as AF
    import jaxfunc.func as TF

    d0, d1 = jax.devices()[:2]
    x = jax.device_put(jnp.asarray([0.5, 1.0, 1.5]), d0)
    v = jax.device_put(jnp.ones(3), d1)
    w = jax.device_put(jnp.ones(3), d1)
    f = lambda a: jnp.sin(a) * a  # noqa: E731
    moves = lambda a: jax.device_put(jnp.sin(a), d1)  # noqa: E731 - like torch's .to(device)
    mismatched = {
        "AF.vjp": lambda: AF.vjp(f, x, v),
        "AF.jvp": lambda: AF.jvp(f, x, v),
        "AF.hvp": lambda: AF.hvp(lambda a: jnp.sum(f(a)), x, v),
        "func.vjp's vjp_fn": lambda: TF.vjp(f, x)[1](v),
        "func.jvp": lambda: TF.jvp(f, (x,), (v,)),
        "func.grad, two arguments": lambda: TF.grad(lambda a, b: jnp.sum(a * b), argnums=(0, 1))(x, v),
        "func.vmap, two arguments": lambda: TF.vmap(lambda a, b: a * b)(x, v),
    }
    valid = {  # the function itself moves data: v lives where the output does
        "AF.vjp, f moves its output": (lambda: AF.vjp(moves, x, v)[1], lambda: jnp.cos(x)),
        "func.vjp, f moves its output": (lambda: TF.vjp(moves, x)[1](v)[0], lambda: jnp.cos(x)),
    }


    def outcome(call):
        try:
            return ("returned", call())
        except Exception as e:
            return (f"{type(e).__name__}: {str(e)[:80]}", None)


    out = {"mismatched": {}, "valid": {}}
    for name, call in mismatched.items():
        out["mismatched"][name] = [outcome(call)[0] for _ in range(3)]  # eager, compile, cached
    for name, (call, want) in valid.items():
        seen = []
        for _ in range(3):
            what, got = outcome(call)
            seen.append(what if got is None else float(np.max(np.abs(np.asarray(got) - np.asarray(want())))))
        out["valid"][name] = seen
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def devices_result() -> dict[str, Any]:
    return run_worker(DEVICES_WORKER)


def test_mismatched_devices_raise_torch_error_class(devices_result: dict[str, Any]) -> None:
    """Committed arrays on two devices meeting in one computation: torch's RuntimeError (JAX
    raises a ValueError), on the first (eager) call. Later calls are compiled, where JAX may
    place the arrays itself; then they either return or raise the same RuntimeError."""
    prefix = "RuntimeError: Expected all tensors to be on the same device"
    for name, seen in devices_result["mismatched"].items():
        assert seen[0].startswith(prefix), (name, seen)
        assert all(s.startswith(prefix) or s == "returned" for s in seen), (name, seen)


def test_function_moving_data_between_devices_works(devices_result: dict[str, Any]) -> None:
    for name, seen in devices_result["valid"].items():
        assert all(isinstance(e, float) and e < 1e-6 for e in seen), (name, seen)
