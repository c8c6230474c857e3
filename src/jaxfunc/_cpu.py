"""Opt-in settings for JAX's CPU runtime that make small, repeated calls cheaper.

Importing jaxfunc changes no JAX state; ``tune_cpu`` is the one place that does, and only
when a user calls it. benchmarks/bench_cpu.py measures what it buys.
"""

from __future__ import annotations

import jax

from . import _compat

_ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"


def tune_cpu(*, async_dispatch: bool = False) -> None:
    """Run CPU computations inline on the calling thread instead of handing them to a worker.

    JAX's CPU client hands every program it does not judge trivially cheap (XLA's cost model:
    1,000 flops or more) to a worker thread, and the caller then sleeps until the worker
    signals. Called back to back, both threads are still awake and the handoff is cheap;
    after even a few µs of Python between calls, they have gone to sleep, and the two wake-ups
    cost more than a small program itself (on a 2-core VM, ~50 µs per call for ``x²+sin(x²)``
    at N=1,000). With ``async_dispatch=False`` the caller runs the program itself: no
    handoff, no wake-up. In exchange, a call no longer returns before its result is ready,
    so Python cannot run ahead of a long computation; multi-device programs stay
    asynchronous either way.

    The setting is process-wide and is read when JAX creates its CPU backend, so call this
    first, before any JAX array exists or any computation runs. The environment variable
    ``JAX_CPU_ENABLE_ASYNC_DISPATCH`` is not read by jax 0.10 (the option is a flag, not an
    environment-backed state); this call, or ``jax.config.update("jax_cpu_enable_async_dispatch",
    False)`` at the same point, is the way to set it.

    Raises:
        RuntimeError: JAX's backends already exist and the setting differs from the one asked
            for (calling it again with the setting already in force does nothing).

    >>> import jaxfunc
    >>> jaxfunc.tune_cpu()  # doctest: +SKIP
    """
    current = bool(jax.config.values[_ASYNC_DISPATCH])
    if current == async_dispatch:
        return
    if _compat.backends_started():
        raise RuntimeError(
            f"jaxfunc.tune_cpu(async_dispatch={async_dispatch}): JAX's backends have already "
            "been created, and the CPU client reads this setting only when it is created. Call "
            "jaxfunc.tune_cpu() at the start of the program, before any JAX array is made or "
            "any computation runs."
        )
    jax.config.update(_ASYNC_DISPATCH, async_dispatch)
