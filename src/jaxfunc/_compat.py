"""Every use of JAX internals in jaxfunc, in one place, with version guards.

jaxfunc supports jax 0.10 (Python 3.11) through the newest release (0.12 on Python 3.12+).
Anything here may change between JAX releases; the rest of the package only imports the
names below, so a JAX upgrade touches this file alone.
"""

from __future__ import annotations

import contextlib
from typing import Any

import jax
import jax.core
import jax.extend.core
from jax.extend import source_info_util as _siu

try:  # the trace context: how jaxfunc tells "called eagerly" from "called under a transform"
    from jax._src import core as _core_internal

    _trace_ctx = _core_internal.trace_ctx
    _EvalTrace = _core_internal.EvalTrace
    #: ``type(TRACE.value) is EVAL_TRACE`` is :func:`at_top_level` without a Python call
    #: (the compile cache's hot path reads it inline).
    TRACE: Any = _core_internal.trace_state_strong_ref
    EVAL_TRACE: Any = _EvalTrace
except (ImportError, AttributeError):  # pragma: no cover - exercised only on an unknown JAX
    _trace_ctx = None
    _EvalTrace = None

#: What tracing raises when a function needs concrete values (Python control flow on array
#: values, ``float(x)``, ``np.asarray(x)``): such a function can only run eagerly.
CONCRETIZATION_ERRORS = (
    jax.errors.ConcretizationTypeError,  # TracerBool/IntegerConversionError included
    jax.errors.TracerArrayConversionError,
    jax.errors.NonConcreteBooleanIndexError,
)


def is_device_mismatch(error: BaseException) -> bool:
    """JAX's error for committed arrays on different devices meeting in one computation:
    a ValueError from dispatch, or (jax 0.12, from inside a jit) its internal
    DeviceAssignmentMismatchError."""
    if type(error).__name__ == "DeviceAssignmentMismatchError":
        return True
    return isinstance(error, ValueError) and "incompatible devices" in str(error)


#: The concrete array type of committed, non-traced values (``jax.Array`` is an ABC that
#: tracers also claim to be). Taken from its module rather than from ``type(jnp.zeros(()))``:
#: making an array at import would start JAX's backends, after which a user can no longer
#: choose platforms or CPU runtime options (``jaxfunc.tune_cpu``).
try:
    from jax._src.array import ArrayImpl
except ImportError:  # pragma: no cover - exercised only on an unknown JAX
    from jaxlib import _jax  # pyright: ignore[reportAttributeAccessIssue]

    ArrayImpl = _jax.ArrayImpl
Tracer = jax.core.Tracer


def at_top_level() -> bool:
    """True when no JAX transformation (jit, vmap, grad, ...) is tracing right now."""
    return type(TRACE.value) is EVAL_TRACE


if _trace_ctx is None:  # pragma: no cover - exercised only on an unknown JAX

    class _TopLevel:
        pass

    class _PublicTrace:
        @property
        def value(self) -> Any:
            return None if jax.extend.core.unsafe_am_i_under_a_jit_DO_NOT_USE() else _TopLevel()

    TRACE, EVAL_TRACE = _PublicTrace(), _TopLevel


# -- jaxpr access -------------------------------------------------------------------------

CALL_PRIMITIVES = frozenset({"jit", "pjit", "closed_call", "core_call", "remat2", "checkpoint"})
CUSTOM_PRIMITIVES = frozenset({"custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"})


def scope_names(eqn: Any) -> tuple[str, ...]:
    """The user scope names (``jax.named_scope``) an equation was traced under, outer first."""
    stack = eqn.source_info.name_stack.stack
    return tuple(s.name for s in stack if type(s).__name__ == "Scope")


def call_jaxpr(eqn: Any) -> Any:
    """The body of a call-like equation (jit, closed_call, checkpoint), as an open Jaxpr."""
    j = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    return getattr(j, "jaxpr", j)


def call_consts(eqn: Any) -> list[Any]:
    j = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    return list(getattr(j, "consts", ()))


def bind_eqn(eqn: Any, invals: list[Any], params: dict[str, Any] | None = None) -> list[Any]:
    """Re-emit one equation on the current trace, keeping its name stack and source info."""
    params = eqn.params if params is None else params
    bind_params = eqn.primitive.get_bind_params(params)
    if isinstance(bind_params, tuple):  # older JAX returned (subfuns, params)
        subfuns, bind_params = bind_params
    else:
        subfuns = []
    name_stack = _siu.current_name_stack() + eqn.source_info.name_stack
    ctx = getattr(getattr(eqn, "ctx", None), "manager", contextlib.nullcontext())
    with _siu.user_context(eqn.source_info.traceback, name_stack=name_stack), ctx:
        out = eqn.primitive.bind(*subfuns, *invals, **bind_params)
    return list(out) if eqn.primitive.multiple_results else [out]


@contextlib.contextmanager
def name_stack_of(eqn: Any):
    """Trace new operations as if they were written where ``eqn`` was."""
    name_stack = _siu.current_name_stack() + eqn.source_info.name_stack
    with _siu.user_context(eqn.source_info.traceback, name_stack=name_stack):
        yield


def sub_jaxprs(eqn: Any) -> list[Any]:
    """Every jaxpr nested in an equation's parameters (open Jaxprs)."""
    out = []
    for v in eqn.params.values():
        vs = v if isinstance(v, (tuple, list)) else (v,)
        for item in vs:
            j = getattr(item, "jaxpr", item)
            if hasattr(j, "eqns") and hasattr(j, "invars"):
                out.append(j)
    return out


def scan_layout(eqn: Any) -> tuple[int, int]:
    """(number of consts, number of carries) of a scan equation."""
    p = eqn.params
    if "num_consts" in p:
        return p["num_consts"], p["num_carry"]
    consts, carry, _ = p["ft_in"].update(list(range(len(eqn.invars)))).unpack()
    return len(list(consts)), len(list(carry))


def while_layout(eqn: Any) -> tuple[int, int]:
    """(cond consts, body consts) of a while equation."""
    return eqn.params["cond_nconsts"], eqn.params["body_nconsts"]


def is_literal(atom: Any) -> bool:
    return type(atom).__name__ == "Literal"


def is_dropvar(atom: Any) -> bool:
    return type(atom).__name__ == "DropVar"


def backends_started() -> bool:
    """Whether JAX has created its backends (the CPU client reads its runtime settings once,
    when it is created). jax has no public query for this."""
    try:
        from jax._src import xla_bridge as _xb

        return bool(_xb.backends_are_initialized())
    except (ImportError, AttributeError):  # pragma: no cover - exercised only on an unknown JAX
        return True  # assume the worst: tune_cpu then refuses rather than silently doing nothing
