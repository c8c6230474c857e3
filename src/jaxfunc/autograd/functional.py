"""``torch.autograd.functional`` on JAX: vjp, jvp, jacobian, hessian, vhp and hvp.

Inputs are an array or a tuple of arrays (lists are rejected, as in torch); results come
back with the caller's tuple-ness. ``create_graph=False`` makes every result a constant to
any enclosing JAX transform; ``create_graph=True`` keeps them differentiable with respect
to the inputs and ``v``. ``strict=True`` raises torch's errors, decided by a dataflow
analysis of the traced program (``_strict``), so it also works under ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _compat, _core, _jit, _strict

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]

_OUTPUTS = "outputs of the user-provided function"


# -- shared pieces --------------------------------------------------------------------------


def _inputs(inputs: Any, fn_name: str) -> tuple[bool, list[Any]]:
    if type(inputs) is _compat.ArrayImpl and _checks.INEXACT[inputs.dtype]:  # the common case
        return False, [inputs]
    is_tuple, xs = _checks.as_tuple(inputs, "inputs", fn_name)
    _checks.require_grad_dtypes(xs)
    return is_tuple, [_checks.to_array(x) for x in xs]


def _post(values: Sequence[Any], is_tuple: bool) -> Any:
    """torch's ``_tuple_postprocess`` for one level."""
    return tuple(values) if is_tuple else values[0]


def _finish(result: Any, create_graph: bool) -> Any:
    return result if create_graph else _core.detach(result)


def _call_outputs(
    func: Callable[..., Any], fn_name: str, seen: dict[str, Any], arg_name: str = _OUTPUTS
) -> Callable:
    """``func`` as a flat function: outputs tuple-ified and checked (``arg_name`` and
    ``fn_name`` name them in torch's message), inexact ones differentiated."""

    def fn(*xs: Any) -> tuple[list[Any], list[Any]]:
        is_tuple, outs = _checks.as_tuple(func(*xs), arg_name, fn_name)
        outs = [_checks.to_array(o) for o in outs]
        seen["is_tuple"] = is_tuple
        return [o for o in outs if _checks.is_inexact(o)], outs

    return fn


class _Deps:
    """The strict-mode questions for one function, answered from its traced program."""

    def __init__(self, fn: Callable[..., Any], xs: Sequence[Any]) -> None:
        all_outs = lambda *a: fn(*a)[1]
        self.n = len(xs)
        self.outs = _strict.output_dependencies(all_outs, xs, honor_no_grad=True)

    def check_outputs(self) -> None:
        for i, d in enumerate(self.outs):
            if d == 0:
                raise RuntimeError(
                    f"Output {i} of the user-provided function does not require gradients. The "
                    "outputs must be computed in a differentiable manner from the input when "
                    "running in strict mode."
                )

    def unused_inputs(self) -> list[int]:
        used = 0
        for d in self.outs:
            used |= d
        return [j for j in range(self.n) if not used >> j & 1]


def _independent_input(i: int) -> RuntimeError:
    return RuntimeError(
        f"The output of the user-provided function is independent of input {i}. This is not "
        "allowed in strict mode."
    )


def _jacobian_independent_cg(i: int, what: str = "jacobian") -> RuntimeError:
    return RuntimeError(
        f"The {what} of the user-provided function is independent of input {i}. This is not "
        "allowed in strict mode when create_graph=True."
    )


def _check_results_depend_on_inputs(
    result_fn: Callable[..., list[Any]], xs: Sequence[Any], what: str = "jacobian"
) -> None:
    """strict + create_graph: each result must depend on the inputs, not only on ``v``."""
    for i, d in enumerate(_strict.output_dependencies(result_fn, xs, honor_no_grad=True)):
        if d == 0:
            raise _jacobian_independent_cg(i, what)


def _v_none_scalar_output(outs: Sequence[Any]) -> list[Any]:
    if len(outs) != 1 or _checks.numel(outs[0].shape) != 1:
        raise RuntimeError(
            "The vector v can only be None if the user-provided function returns a single Tensor "
            "with a single element."
        )
    _checks.check_real_implicit_grad(outs[0].dtype)
    return [jnp.ones_like(outs[0])]


def _v_for_inputs(v: Any, xs: Sequence[Any], is_tuple: bool, fn_name: str) -> list[Any]:
    """``v`` checked against the inputs (jvp, vhp, hvp), cast to each input's dtype."""
    if v is None:
        if len(xs) != 1 or _checks.numel(xs[0].shape) != 1:
            raise RuntimeError(
                "The vector v can only be None if the input to the user-provided function is a "
                "single Tensor with a single element."
            )
        _checks.check_real_implicit_grad(xs[0].dtype)  # torch's implicit ones are real-only
        return [jnp.ones_like(xs[0])]
    _, vs = _checks.as_tuple(v, "v", fn_name)
    _checks.validate_v(vs, tuple(xs), is_tuple)
    return [
        _checks.cast_like(_checks.to_array(e), x.dtype, i) for i, (e, x) in enumerate(zip(vs, xs))
    ]


def _split_v(v: Any) -> tuple[list[Any], Any]:
    return _core.split_arrays(v) if v is not None else ([], None)


# -- vjp ------------------------------------------------------------------------------------


def vjp(
    func: Callable[..., Any],
    inputs: Any,
    v: Any = None,
    create_graph: bool = False,
    strict: bool = False,
) -> tuple[Any, Any]:
    """``(func_output, vjp)``: the product of ``v`` with the Jacobian of ``func`` at ``inputs``.

    ``v`` may be None only when ``func`` returns a single one-element array.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import vjp
    >>> def adder(x, y):
    ...     return 2 * x + 3 * y
    >>> out, (gx, gy) = vjp(adder, (jnp.ones(2), jnp.ones(2)), jnp.ones(2))
    >>> gx, gy
    (Array([2., 2.], dtype=float32), Array([3., 3.], dtype=float32))

    Differences from torch: numpy arrays are accepted as inputs; ``create_graph`` maps to
    "results are differentiable by enclosing JAX transforms" (else ``stop_gradient``).
    """
    _checks.check_callable(func, "vjp")
    is_tuple, xs = _inputs(inputs, "vjp")
    v_arrays, v_desc = _split_v(v)
    program = _Vjp.of(is_tuple=is_tuple, v_desc=v_desc, create_graph=create_graph, strict=strict)
    return _core.call(func, program, (xs, v_arrays))


def _cotangents_for_outputs(v: Any, outs: Sequence[Any], is_out_tuple: bool) -> list[Any]:
    """``v`` checked against the outputs and cast; one cotangent per *inexact* output."""
    if v is None:
        vs = _v_none_scalar_output(outs)
    else:
        _, vs = _checks.as_tuple(v, "v", "vjp")
        _checks.validate_v(vs, tuple(outs), is_out_tuple)
    cts, k = [], 0
    for e, o in zip(vs, outs):
        if _checks.is_inexact(o):
            cts.append(_checks.cast_like(_checks.to_array(e), o.dtype, k))
            k += 1
    return cts


@dataclasses.dataclass(frozen=True, eq=False)
class _Vjp(_jit.Program):
    is_tuple: bool
    v_desc: _core.CallDesc | None
    create_graph: bool
    strict: bool

    def __call__(self, func: Callable[..., Any], arrays: Any) -> tuple[Any, Any]:
        return _vjp_run(func, self, arrays)


def _vjp_run(func: Callable[..., Any], p: _Vjp, arrays: Any) -> tuple[Any, Any]:
    is_tuple, v_desc, create_graph, strict = p.is_tuple, p.v_desc, p.create_graph, p.strict
    xs, v_arrays = arrays
    v = None if v_desc is None else _core.merge_arrays(v_desc, v_arrays)
    seen: dict[str, Any] = {}
    fn = _call_outputs(func, "vjp", seen)
    _diff_outs, pullback, outs = _core.reverse(fn, xs)
    deps = _Deps(fn, xs) if strict else None
    if deps:
        deps.check_outputs()
    cts = _cotangents_for_outputs(v, outs, seen["is_tuple"])
    res = _core.pull(pullback, cts)
    if deps:  # torch checks input by input: disconnected, then (create_graph) constant
        unused = deps.unused_inputs()
        cg_deps = (
            _strict.output_dependencies(
                lambda *a: _core.pull(_core.reverse(fn, a)[1], cts), xs, honor_no_grad=True
            )
            if create_graph
            else None
        )
        for j in range(len(xs)):
            if j in unused:
                raise _independent_input(j)
            if cg_deps is not None and cg_deps[j] == 0:
                raise _jacobian_independent_cg(j)
    return _finish((_post(outs, seen["is_tuple"]), _post(res, is_tuple)), create_graph)


# -- jvp ------------------------------------------------------------------------------------


def jvp(
    func: Callable[..., Any],
    inputs: Any,
    v: Any = None,
    create_graph: bool = False,
    strict: bool = False,
) -> tuple[Any, Any]:
    """``(func_output, jvp)``: the Jacobian of ``func`` at ``inputs`` times ``v``.

    ``v`` may be None only for a single one-element input. The result has the structure of
    the outputs.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import jvp
    >>> jvp(lambda x: (x ** 2).sum(), jnp.arange(3.0), jnp.ones(3))
    (Array(5., dtype=float32), Array(6., dtype=float32))

    Differences from torch: computed in forward mode (torch uses the double-backward trick);
    ``no_grad`` blocks inside ``func`` are honoured exactly as torch's trick honours them.
    """
    _checks.check_callable(func, "jvp")
    is_tuple, xs = _inputs(inputs, "jvp")
    vs = _v_for_inputs(v, xs, is_tuple, "jvp")
    return _core.call(func, _Jvp.of(create_graph=create_graph, strict=strict), (xs, vs))


@dataclasses.dataclass(frozen=True, eq=False)
class _Jvp(_jit.Program):
    create_graph: bool
    strict: bool

    def __call__(self, func: Callable[..., Any], arrays: Any) -> tuple[Any, Any]:
        return _jvp_run(func, self.create_graph, self.strict, arrays)


def _jvp_run(
    func: Callable[..., Any], create_graph: bool, strict: bool, arrays: Any
) -> tuple[Any, Any]:
    xs, vs = arrays
    seen: dict[str, Any] = {}
    fn = _call_outputs(func, "jvp", seen)
    deps = _Deps(fn, xs) if strict else None
    if deps:
        deps.check_outputs()
    _integer_outputs_cannot_require_grad(fn, xs)
    if deps:
        for j in deps.unused_inputs():
            raise _independent_input(j)

    def tangents_at(*a: Any) -> list[Any]:
        _, tans, outs = _core.forward(fn, a, vs, honor_no_grad=True)
        return _all_output_tangents(outs, tans)

    _, tans, outs = _core.forward(fn, xs, vs, honor_no_grad=True)
    tangents = _all_output_tangents(outs, tans)
    if deps and create_graph:
        _check_results_depend_on_inputs(tangents_at, xs)
    is_out_tuple = seen["is_tuple"]
    return _finish((_post(outs, is_out_tuple), _post(tangents, is_out_tuple)), create_graph)


def _integer_outputs_cannot_require_grad(fn: Callable[..., Any], xs: Sequence[Any]) -> None:
    """torch's double-backward trick makes ``zeros_like(out, requires_grad=True)``."""
    try:
        outs = jax.eval_shape(lambda *a: fn(*a)[1], *xs)
    except _compat.CONCRETIZATION_ERRORS:  # Python control flow on values: run it
        outs = fn(*xs)[1]
    for o in outs:
        if not jnp.issubdtype(o.dtype, jnp.inexact):
            raise RuntimeError(
                "Only Tensors of floating point and complex dtype can require gradients"
            )


def _all_output_tangents(outs: Sequence[Any], diff_tangents: Sequence[Any]) -> list[Any]:
    """Tangents for every output: integer outputs get integer zeros (torch's zero filling)."""
    it = iter(diff_tangents)
    return [next(it) if _checks.is_inexact(o) else jnp.zeros_like(o) for o in outs]


# -- jacobian -------------------------------------------------------------------------------

_STRATEGY_MSG = 'Expected strategy to be either "forward-mode" or "reverse-mode".'


def _forward_mode_errors(create_graph: bool, strict: bool) -> None:
    if create_graph:
        raise NotImplementedError(
            "torch.autograd.functional.jacobian: `create_graph=True` and "
            '`strategy="forward-mode"` are not supported together (yet). Please either set '
            '`create_graph=False` or `strategy="reverse-mode"`.'
        )
    if strict:
        raise RuntimeError(
            'torch.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` '
            "are not supported together (yet). Please either set `strict=False` or "
            '`strategy="reverse-mode"`.'
        )


def _forward_needs_vectorize(vectorize: bool) -> None:
    if not vectorize:
        raise NotImplementedError(
            "Computing Jacobian using forward-AD or forward-over-reverse Hessian is"
            "only implemented for `vectorize=True`."
        )


def jacobian(
    func: Callable[..., Any],
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """Jacobian of ``func`` at ``inputs``: ``J[i][j]`` of shape ``out_i.shape + in_j.shape``.

    Nesting follows torch: tuple outputs give the outer level, tuple inputs the inner one.
    ``strategy="forward-mode"`` (needs ``vectorize=True``) returns lists where torch does.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import jacobian
    >>> jacobian(lambda x: x ** 2, jnp.arange(3.0))
    Array([[0., 0., 0.],
           [0., 2., 0.],
           [0., 0., 4.]], dtype=float32)

    Beyond torch: always vectorized and compiled (``vectorize`` never changes speed), and
    ``strict=True`` works together with ``vectorize=True``. As in torch, complex outputs
    need ``vectorize=True`` (rows are torch's vjp of real one-hot cotangents, the conjugate
    Jacobian for a holomorphic function); ``vectorize=False`` raises torch's error for them.
    """
    _checks.check_callable(func, "jacobian")
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(
            _STRATEGY_MSG + ' Hint: If your function has more outputs than inputs, "forward-mode" '
            'tends to be more performant. Otherwise, prefer to use "reverse-mode".'
        )
    forward_mode = strategy == "forward-mode"
    if forward_mode:
        _forward_mode_errors(create_graph, strict)
        is_tuple, xs = _checks.as_tuple(inputs, "inputs", "jacobian")
        _forward_needs_vectorize(vectorize)
        for x in xs:
            _checks.check_forward_primal(x)
        xs = [_checks.to_array(x) for x in xs]
    else:
        is_tuple, xs = _inputs(inputs, "jacobian")
    program = _Jacobian.of(
        is_tuple=is_tuple,
        create_graph=create_graph,
        strict=strict,
        forward_mode=forward_mode,
        vectorize=bool(vectorize),
    )
    return _core.call(func, program, xs)


@dataclasses.dataclass(frozen=True, eq=False)
class _Jacobian(_jit.Program):
    is_tuple: bool
    create_graph: bool
    strict: bool
    forward_mode: bool
    vectorize: bool

    def __call__(self, func: Callable[..., Any], xs: list[Any]) -> Any:
        return _jacobian_run(func, self, xs)


def _jacobian_run(func: Callable[..., Any], p: _Jacobian, xs: list[Any]) -> Any:
    is_tuple, create_graph, strict, vectorize = p.is_tuple, p.create_graph, p.strict, p.vectorize
    seen: dict[str, Any] = {}
    if p.forward_mode:
        fn = _call_outputs(func, "None", seen, arg_name="outputs")
        outs_all = fn(*xs)[1]

        def push(*t: Any) -> list[Any]:
            return _all_output_tangents(outs_all, _core.forward(fn, xs, t, False)[1])

        jac = _core.jacobian_forward(push, outs_all, xs)
        return _finish(_forward_rows(jac, is_tuple, seen["is_tuple"]), create_graph)
    fn = _call_outputs(func, "jacobian", seen)
    _diff_outs, pullback, outs = _core.reverse(fn, xs)
    deps = _Deps(fn, xs) if strict else None
    if deps:
        deps.check_outputs()
    for o in outs:
        if not vectorize:  # torch's per-element backward loop
            _checks.check_real_implicit_grad(o.dtype)
    jac = _jacobian_rows(pullback, outs, xs)
    if deps:

        def rows_at(*a: Any) -> list[list[Any]]:
            _, pb, outs_a = _core.reverse(fn, a)
            return _jacobian_rows(pb, outs_a, a)

        _check_jacobian_blocks(rows_at, xs, deps, jac, create_graph)
    nested = tuple(_post(row, is_tuple) for row in jac)
    return _finish(_post(nested, seen["is_tuple"]), create_graph)


def _forward_rows(jac: list[list[Any]], is_in_tuple: bool, is_out_tuple: bool) -> Any:
    """torch's forward-mode structure: its ``_jacfwd`` builds lists, and
    ``_tuple_postprocess`` unwraps only the levels that were not tuples (the quirk is kept
    so code ports unchanged)."""
    rows: Any = [list(r) for r in jac]
    if not is_in_tuple:
        rows = tuple(r[0] for r in rows)
    return rows if is_out_tuple else rows[0]


def _jacobian_rows(pullback: Any, outs: Sequence[Any], xs: Sequence[Any]) -> list[list[Any]]:
    """Reverse-mode blocks for every output; integer outputs give zero blocks (input dtype)."""
    diff = [o for o in outs if _checks.is_inexact(o)]
    jac_diff = iter(_core.jacobian_reverse(pullback, diff, xs) if diff else [])
    return [
        next(jac_diff)
        if _checks.is_inexact(o)
        else [jnp.zeros(o.shape + x.shape, x.dtype) for x in xs]
        for o in outs
    ]


def _check_jacobian_blocks(
    rows_at: Callable[..., list[list[Any]]],
    xs: Sequence[Any],
    deps: _Deps,
    jac: list[list[Any]],
    create_graph: bool,
) -> None:
    """torch's per-(output, input) strict checks of its reverse-mode jacobian loop."""
    n = len(xs)
    cg_deps = None
    if create_graph:
        flat_blocks = lambda *a: [b for row in rows_at(*a) for b in row]
        cg_deps = _strict.output_dependencies(flat_blocks, xs, honor_no_grad=True)
    for i, (row, d) in enumerate(zip(jac, deps.outs)):
        if _checks.numel(row[0].shape[: row[0].ndim - xs[0].ndim]) == 0:
            continue  # torch's loop runs once per output element
        for j in range(n):
            if not d >> j & 1:
                raise RuntimeError(
                    f"Output {i} of the user-provided function is independent of input {j}. This "
                    "is not allowed in strict mode."
                )
            if cg_deps is not None and cg_deps[i * n + j] == 0:
                raise _jacobian_independent_cg(i)


# -- hessian --------------------------------------------------------------------------------


def _scalar_output_fn(
    func: Callable[..., Any], fn_name: str, seen: dict[str, Any]
) -> Callable[..., Any]:
    """``func`` checked to return one single-element array (vhp, hvp and hessian's rule)."""

    def fn(*xs: Any) -> tuple[list[Any], list[Any]]:
        out = func(*xs)
        is_tuple, _outs = _checks.as_tuple(out, _OUTPUTS, fn_name)
        seen["is_tuple"] = is_tuple
        if is_tuple:
            raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
        out = _checks.to_array(out)
        if _checks.numel(out.shape) != 1:
            raise RuntimeError(
                f"The Tensor returned by the function given to {fn_name} should contain a "
                "single element"
            )
        return ([out] if _checks.is_inexact(out) else []), [out]

    return fn


def _gradient_fn(fn: Callable[..., Any]) -> Callable[..., tuple[list[Any], list[Any]]]:
    """The gradient of a scalar-output flat ``fn``, itself a flat function (no_grad honoured)."""

    def grad_fn(*xs: Any) -> tuple[list[Any], list[Any]]:
        diff, pullback, outs = _core.reverse(fn, xs)
        g = _core.pull(pullback, [jnp.ones_like(o) for o in diff])
        return g, outs

    return grad_fn


def _check_jacobian_of_inputs(
    fn: Callable[..., Any],
    grad_fn: Callable[..., Any],
    xs: Sequence[Any],
    none_message: bool,
) -> _Deps:
    """strict for second order: the output must depend on inputs, and so must the gradient."""
    deps = _Deps(fn, xs)
    deps.check_outputs()
    unused = set(deps.unused_inputs())
    g_deps = _strict.output_dependencies(lambda *a: grad_fn(*a)[0], xs, honor_no_grad=True)
    for i, d in enumerate(g_deps):
        if none_message and i in unused:
            raise _independent_input(i)
        if d == 0:
            raise RuntimeError(
                "While computing the hessian, found that the jacobian of the user-provided "
                f"function with respect to input {i} is independent of the input. This is not "
                "allowed in strict mode. You should ensure that your function is twice "
                "differentiable and that the jacobian depends on the inputs (this would be "
                "violated by a linear function for example)."
            )
    deps.outs = g_deps  # the "outputs" of the outer jacobian are the gradient blocks
    return deps


def _check_complex_second_order(xs: Sequence[Any], outs: Sequence[Any]) -> None:
    for a in list(outs) + list(xs):
        _checks.check_real_implicit_grad(a.dtype)


def hessian(
    func: Callable[..., Any],
    inputs: Any,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """Hessian of a scalar function: ``H[i][j]`` of shape ``in_i.shape + in_j.shape``.

    ``func`` must return a single one-element array.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import hessian
    >>> hessian(lambda x: (x ** 3).sum(), jnp.arange(2.0))
    Array([[0., 0.],
           [0., 6.]], dtype=float32)

    Beyond torch: vectorized and compiled whatever ``vectorize`` says; ``strict=True`` works
    with ``vectorize=True``.
    """
    _checks.check_callable(func, "hessian")
    is_tuple, xs = _checks.as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError(_STRATEGY_MSG)
    forward_mode = outer_jacobian_strategy == "forward-mode"
    if forward_mode:
        _forward_mode_errors(create_graph, strict)
        _forward_needs_vectorize(vectorize)
    _checks.require_grad_dtypes(xs)
    xs = [_checks.to_array(x) for x in xs]
    program = _Hessian.of(
        is_tuple=is_tuple, create_graph=create_graph, strict=strict, forward_mode=forward_mode
    )
    return _core.call(func, program, xs)


@dataclasses.dataclass(frozen=True, eq=False)
class _Hessian(_jit.Program):
    is_tuple: bool
    create_graph: bool
    strict: bool
    forward_mode: bool

    def __call__(self, func: Callable[..., Any], xs: list[Any]) -> Any:
        return _hessian_run(func, self, xs)


def _hessian_run(func: Callable[..., Any], p: _Hessian, xs: list[Any]) -> Any:
    is_tuple, create_graph, strict, forward_mode = (
        p.is_tuple,
        p.create_graph,
        p.strict,
        p.forward_mode,
    )
    seen: dict[str, Any] = {}
    fn = _scalar_output_fn(func, "hessian", seen)
    outs = fn(*xs)[1]
    _check_complex_second_order(xs, outs)
    grad_fn = _gradient_fn(fn)
    deps = _check_jacobian_of_inputs(fn, grad_fn, xs, none_message=False) if strict else None
    if forward_mode:
        grads = grad_fn(*xs)[0]

        def push(*t: Any) -> list[Any]:
            return _core.forward(grad_fn, xs, t, honor_no_grad=False)[1]

        jac = _core.jacobian_forward(push, grads, xs)
        return _finish(_forward_rows(jac, is_tuple, is_tuple), create_graph)
    grads, pullback, _ = _core.reverse(grad_fn, xs)
    jac = _core.jacobian_reverse(pullback, grads, xs)
    if deps:

        def rows_at(*a: Any) -> list[list[Any]]:
            g, pb, _ = _core.reverse(grad_fn, a)
            return _core.jacobian_reverse(pb, g, a)

        _check_jacobian_blocks(rows_at, xs, deps, jac, create_graph)
    nested = tuple(_post(row, is_tuple) for row in jac)
    return _finish(_post(nested, is_tuple), create_graph)


# -- vhp / hvp ------------------------------------------------------------------------------


def _second_order_product(
    func: Callable[..., Any],
    inputs: Any,
    v: Any,
    create_graph: bool,
    strict: bool,
    fn_name: str,
) -> tuple[Any, Any]:
    _checks.check_callable(func, fn_name)
    is_tuple, xs = _inputs(inputs, fn_name)
    vs = _v_for_inputs(v, xs, is_tuple, fn_name)
    program = _SecondOrder.of(
        is_tuple=is_tuple, create_graph=create_graph, strict=strict, fn_name=fn_name
    )
    return _core.call(func, program, (xs, vs))


@dataclasses.dataclass(frozen=True, eq=False)
class _SecondOrder(_jit.Program):
    """vhp (reverse over reverse) or hvp (forward over reverse), by ``fn_name``."""

    is_tuple: bool
    create_graph: bool
    strict: bool
    fn_name: str

    def __call__(self, func: Callable[..., Any], arrays: Any) -> tuple[Any, Any]:
        return _second_order_run(func, self, arrays)


def _second_order_run(func: Callable[..., Any], p: _SecondOrder, arrays: Any) -> tuple[Any, Any]:
    is_tuple, create_graph, strict, fn_name = p.is_tuple, p.create_graph, p.strict, p.fn_name
    xs, vs = arrays
    seen: dict[str, Any] = {}
    fn = _scalar_output_fn(func, fn_name, seen)
    outs = fn(*xs)[1]
    _check_complex_second_order((), outs)
    grad_fn = _gradient_fn(fn)
    if strict:
        _check_jacobian_of_inputs(fn, grad_fn, xs, none_message=True)

    def product(*a: Any) -> list[Any]:
        if fn_name == "hvp":
            return _core.forward(grad_fn, a, vs, honor_no_grad=True)[1]
        return _core.pull(_core.reverse(grad_fn, a)[1], vs)

    res = product(*xs)
    if strict and create_graph:
        _check_results_depend_on_inputs(product, xs, what="hessian")
    return _finish((outs[0], _post(res, is_tuple)), create_graph)


def vhp(
    func: Callable[..., Any],
    inputs: Any,
    v: Any = None,
    create_graph: bool = False,
    strict: bool = False,
) -> tuple[Any, Any]:
    """``(func_output, vhp)``: ``v`` times the Hessian of a scalar ``func`` at ``inputs``.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import vhp
    >>> vhp(lambda x: (x ** 3).sum(), jnp.arange(2.0), jnp.ones(2))
    (Array(1., dtype=float32), Array([0., 6.], dtype=float32))
    """
    return _second_order_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(
    func: Callable[..., Any],
    inputs: Any,
    v: Any = None,
    create_graph: bool = False,
    strict: bool = False,
) -> tuple[Any, Any]:
    """``(func_output, hvp)``: the Hessian of a scalar ``func`` at ``inputs`` times ``v``.

    >>> import jax.numpy as jnp
    >>> from jaxfunc.autograd.functional import hvp
    >>> hvp(lambda x: (x ** 3).sum(), jnp.arange(2.0), jnp.ones(2))
    (Array(1., dtype=float32), Array([0., 6.], dtype=float32))

    Differences from torch: computed forward-over-reverse (torch uses a double-backward
    trick); values are the same.
    """
    return _second_order_product(func, inputs, v, create_graph, strict, "hvp")
