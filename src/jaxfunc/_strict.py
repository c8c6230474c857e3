"""``strict=True``: torch's "requires grad" questions, answered by dataflow over a jaxpr.

torch asks whether an output *requires grad* (is connected to an input in the autograd
graph), not whether its derivative is zero: ``x * 0`` and ``floor(x)`` are connected,
``x.detach()``, integer casts and values computed under ``no_grad`` are not. The same
answer comes from propagating, over the *primal* program, the set of inputs each value
depends on, where ``stop_gradient``, non-inexact dtypes and no_grad regions cut the flow.
A pass over the tangent program would be wrong: JAX gives ``floor`` a symbolic-zero
tangent where torch keeps the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from . import _compat, _grad_mode


def _inexact(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.inexact)


def dependencies(jaxpr: Any, in_deps: Sequence[int], honor_no_grad: bool) -> list[int]:
    """For each output of ``jaxpr``, the bitset of inputs (``in_deps``' bits) it depends on."""
    return _deps(jaxpr, list(in_deps), honor_no_grad, True)


def _deps(jaxpr: Any, in_deps: list[int], honor: bool, grad_on: bool) -> list[int]:
    env: dict[Any, int] = {}

    def read(atom: Any) -> int:
        return 0 if _compat.is_literal(atom) else env.get(atom, 0)

    for var, d in zip(jaxpr.invars, in_deps):
        env[var] = d if _inexact(var.aval) else 0
    for eqn in jaxpr.eqns:
        on = _grad_mode._grad_enabled(eqn, grad_on) if honor else True
        ins = [read(a) for a in eqn.invars]
        outs = _eqn_deps(eqn, ins, honor, on) if on else [0] * len(eqn.outvars)
        for var, d in zip(eqn.outvars, outs):
            if not _compat.is_dropvar(var):
                env[var] = d if _inexact(var.aval) else 0
    return [read(a) for a in jaxpr.outvars]


def _union(ds: Sequence[int]) -> int:
    out = 0
    for d in ds:
        out |= d
    return out


def _eqn_deps(eqn: Any, ins: list[int], honor: bool, on: bool) -> list[int]:
    name = eqn.primitive.name
    n_out = len(eqn.outvars)
    if name == "stop_gradient":
        return [0] * n_out
    if name in _compat.CALL_PRIMITIVES or name in _compat.CUSTOM_PRIMITIVES:
        body = _compat.call_jaxpr(eqn)
        if body is not None and hasattr(body, "eqns"):
            n_consts = len(body.invars) - len(ins)
            return _deps(body, [0] * n_consts + ins, honor, on)
    if name == "cond":
        branch_outs = [_deps(b.jaxpr, ins[1:], honor, on) for b in eqn.params["branches"]]
        return [_union(col) for col in zip(*branch_outs)]
    if name == "scan":
        n_consts, n_carry = _compat.scan_layout(eqn)
        body = eqn.params["jaxpr"].jaxpr
        consts, carry, xs = (
            ins[:n_consts],
            ins[n_consts : n_consts + n_carry],
            ins[n_consts + n_carry :],
        )
        while True:
            outs = _deps(body, consts + carry + xs, honor, on)
            new_carry = [c | o for c, o in zip(carry, outs[:n_carry])]
            if new_carry == carry:
                return outs[:n_carry] + outs[n_carry:]
            carry = new_carry
    if name == "while":
        cond_n, body_n = _compat.while_layout(eqn)
        body = eqn.params["body_jaxpr"].jaxpr
        body_consts, carry = ins[cond_n : cond_n + body_n], ins[cond_n + body_n :]
        while True:
            outs = _deps(body, body_consts + carry, honor, on)
            new_carry = [c | o for c, o in zip(carry, outs)]
            if new_carry == carry:
                return carry
            carry = new_carry
    # Any other primitive (with or without sub-programs): every output depends on every input.
    return [_union(ins)] * n_out


def output_dependencies(
    fn: Callable[..., Any], args: Sequence[Any], honor_no_grad: bool
) -> list[int]:
    """Bitsets (bit i = ``args[i]``) of the flat outputs of ``fn(*args)``.

    A function that cannot be traced abstractly (Python control flow on values) is
    linearized at ``args`` instead and the tangent program is analysed: the same answer
    except where JAX knows a derivative is structurally zero (``floor``, ``sign``), which
    then counts as independent.
    """
    bits = [1 << i for i in range(len(args))]
    try:
        closed = jax.make_jaxpr(fn)(*args)
    except Exception:  # needs concrete values (a real error is raised again just below)
        _, f_jvp = jax.linearize(fn, *args)
        closed = jax.make_jaxpr(f_jvp)(*args)
    return dependencies(closed.jaxpr, bits, honor_no_grad)
