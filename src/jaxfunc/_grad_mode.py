"""``no_grad`` / ``enable_grad`` inside transformed functions.

JAX has no grad mode, so jaxfunc marks the code: ``no_grad`` and ``enable_grad`` open a
``jax.named_scope`` whose name every traced operation carries in its name stack. A
reverse-mode jaxfunc transform whose function entered such a block (a cheap counter tells)
linearizes the function, zeroes the tangent of every operation whose innermost marker is
``no_grad`` in the *linear* program, and differentiates that masked linear map instead.

Working in the linear program gives torch's rules without a global mode:
- only this transform's tangents are masked, so an outer forward-mode transform (jacfwd of
  jacrev, forward-over-reverse Hessians) still sees the no_grad values move, as in torch;
- a transform started inside the block traces a fresh program with no marker, so it works
  normally, while its operations carry the marker for the outer transform;
- a ``no_grad`` around the transform call is outside the traced function: it changes nothing;
- forward-mode transforms never look at the markers (torch's forward AD ignores no_grad).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp

from . import _compat

NO_GRAD = "jaxfunc.no_grad"
ENABLE_GRAD = "jaxfunc.enable_grad"

_lock = threading.Lock()
_entered = 0


class _Modes(threading.local):
    def __init__(self) -> None:
        self.stack: list[str] = []  # the blocks this thread is in, innermost last


_modes = _Modes()


def inside_no_grad() -> bool:
    """Is this thread's innermost grad-mode block a ``no_grad``?"""
    stack = _modes.stack
    return bool(stack) and stack[-1] == NO_GRAD


def _bump() -> None:
    global _entered
    with _lock:
        _entered += 1


class _GradModeBlock:
    _scope_name = ""

    def __new__(cls, orig_func: Callable[..., Any] | None = None) -> Any:
        if orig_func is not None:  # used as a bare decorator: @no_grad
            return cls()(orig_func)
        return super().__new__(cls)

    def __init__(self, orig_func: Callable[..., Any] | None = None) -> None:
        self._scopes: list[Any] = []

    def __enter__(self) -> None:
        _bump()
        scope = jax.named_scope(self._scope_name)
        scope.__enter__()
        self._scopes.append(scope)
        _modes.stack.append(self._scope_name)

    def __exit__(self, *exc: Any) -> None:
        _modes.stack.pop()
        self._scopes.pop().__exit__(*exc)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """As a decorator: ``func`` runs inside the block (a plain function, so it also
        works on methods)."""

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeBlock):
    """Treat values computed inside the block as constants for reverse-mode transforms.

    Mirrors ``torch.no_grad`` used *inside* a function being transformed: ``vjp``,
    ``grad``, ``jacrev``, ``hessian``'s inner ``jacrev`` and every
    ``jaxfunc.autograd.functional`` transform (its ``jvp`` included) see the values as
    constants; ``func.jvp``, ``jacfwd``, ``linearize`` and forward-mode ``jacobian`` ignore
    it, as torch's forward AD does. A ``no_grad`` around a transform call changes nothing.
    Works as a context manager and as a decorator.

    >>> import jax.numpy as jnp, jaxfunc
    >>> def f(x):
    ...     with jaxfunc.no_grad():
    ...         c = x ** 2
    ...     return x - c
    >>> jaxfunc.func.grad(f)(jnp.asarray(3.0))
    Array(1., dtype=float32, weak_type=True)

    Differences from torch: there is no global grad mode, so ``no_grad`` does nothing to
    code that no jaxfunc transform is differentiating (raw ``jax.grad`` ignores it).
    """

    _scope_name = NO_GRAD


class enable_grad(_GradModeBlock):
    """Re-enable gradients inside a ``no_grad`` block (``torch.enable_grad``).

    >>> import jax.numpy as jnp, jaxfunc
    >>> def f(x):
    ...     with jaxfunc.no_grad():
    ...         with jaxfunc.enable_grad():
    ...             c = x ** 2
    ...     return x - c
    >>> jaxfunc.func.grad(f)(jnp.asarray(3.0))
    Array(-5., dtype=float32, weak_type=True)
    """

    _scope_name = ENABLE_GRAD


# -- the masked linearization -------------------------------------------------------------


def _grad_enabled(eqn: Any, inherited: bool) -> bool:
    for name in reversed(_compat.scope_names(eqn)):
        if name == NO_GRAD:
            return False
        if name == ENABLE_GRAD:
            return True
    return inherited


def has_markers(jaxpr: Any) -> bool:
    for eqn in jaxpr.eqns:
        if any(n in (NO_GRAD, ENABLE_GRAD) for n in _compat.scope_names(eqn)):
            return True
        if any(has_markers(j) for j in _compat.sub_jaxprs(eqn)):
            return True
    return False


def _zeros(aval: Any) -> Any:
    return jnp.zeros(aval.shape, aval.dtype)


def _masked_eval(jaxpr: Any, consts: list[Any], args: list[Any], grad_on: bool) -> list[Any]:
    """Evaluate a linear jaxpr with the outputs of no_grad operations replaced by zeros."""
    env: dict[Any, Any] = {}

    def read(atom: Any) -> Any:
        return atom.val if _compat.is_literal(atom) else env[atom]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = val
    for var, val in zip(jaxpr.invars, args):
        env[var] = val
    for eqn in jaxpr.eqns:
        on = _grad_enabled(eqn, grad_on)
        inner = [j for j in _compat.sub_jaxprs(eqn) if has_markers(j)]
        if not on and not inner:
            outs = [_zeros(v.aval) for v in eqn.outvars]
        elif inner and eqn.primitive.name in _compat.CALL_PRIMITIVES:
            with _compat.name_stack_of(eqn):
                outs = _masked_eval(
                    _compat.call_jaxpr(eqn),
                    _compat.call_consts(eqn),
                    [read(a) for a in eqn.invars],
                    on,
                )
        elif inner and eqn.primitive.name not in _compat.CUSTOM_PRIMITIVES:
            params = {k: _mask_param(v, on) for k, v in eqn.params.items()}
            outs = _compat.bind_eqn(eqn, [read(a) for a in eqn.invars], params)
        elif not on:
            outs = [_zeros(v.aval) for v in eqn.outvars]
        else:
            outs = _compat.bind_eqn(eqn, [read(a) for a in eqn.invars])
        for var, val in zip(eqn.outvars, outs):
            if not _compat.is_dropvar(var):
                env[var] = val
    return [read(a) for a in jaxpr.outvars]


def _mask_param(value: Any, grad_on: bool) -> Any:
    """Rewrite a control-flow body (cond branch, scan/while body) with the same signature."""
    if isinstance(value, (tuple, list)):
        return type(value)(_mask_param(v, grad_on) for v in value)
    inner = getattr(value, "jaxpr", None)
    if inner is None or not hasattr(inner, "eqns") or not has_markers(inner):
        return value
    consts = list(value.consts)

    def body(*args: Any) -> list[Any]:
        return _masked_eval(inner, consts, list(args), grad_on)

    avals = [v.aval for v in inner.invars]
    return jax.make_jaxpr(body)(*avals)


def never_entered() -> bool:
    """No block has been entered in this process, so no traced program can hold a marker."""
    return _entered == 0


def trace(
    fn: Callable[..., Any], primals: tuple[Any, ...]
) -> tuple[Callable[..., Any], bool] | None:
    """``(replay, marked)``: ``fn`` traced once, as a function that replays the trace without
    running the user's Python again, and whether the trace holds grad-mode markers.

    Markers are looked for in the traced program rather than by watching ``__enter__``:
    JAX replays cached traces (jitted helpers, control-flow bodies) without running their
    Python, and their operations still carry the marker. None when ``fn`` cannot be traced
    abstractly (Python control flow on values).
    """
    try:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*primals)
    except Exception:  # needs concrete values, or a real error the eager run will raise
        return None
    out_tree = jax.tree_util.tree_structure(out_shape)
    run = jax.extend.core.jaxpr_as_fun(closed)

    def replay(*xs: Any) -> Any:
        return jax.tree_util.tree_unflatten(out_tree, run(*xs))

    return replay, has_markers(closed.jaxpr)


def masked_linearize(fn: Callable[..., Any], primals: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """``jax.linearize(fn, *primals, has_aux=True)`` with no_grad regions' tangents zeroed.

    Returns ``(out, lin, aux)``; ``lin(*tangents)`` is the masked linear map (``fn``'s own
    linearization when it holds no marker).
    """
    out, f_jvp, aux = jax.linearize(fn, *primals, has_aux=True)
    tangent_avals = [jax.ShapeDtypeStruct(jnp.shape(p), jnp.result_type(p)) for p in primals]
    closed, out_shape = jax.make_jaxpr(f_jvp, return_shape=True)(*tangent_avals)
    if not has_markers(closed.jaxpr):
        return out, f_jvp, aux
    out_tree = jax.tree_util.tree_structure(out_shape)

    def lin(*tangents: Any) -> Any:
        flat = jax.tree_util.tree_leaves(tangents)
        res = _masked_eval(closed.jaxpr, list(closed.consts), flat, True)
        return jax.tree_util.tree_unflatten(out_tree, res)

    return out, lin, aux
