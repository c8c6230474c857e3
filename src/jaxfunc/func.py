"""``torch.func`` on JAX: swap ``torch.func`` for ``jaxfunc.func``, keep the calls.

Each function checks its arguments the way torch does (same exception class, same
message), then hands a *program* (the whole JAX mapping of the transform) to the compile
cache, which runs it compiled or eagerly. See ``_core`` for the data flow.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp

from . import _cache, _checks, _core, _strict, _tree, _warnings
from ._core import VjpFn as VjpFn
from ._modules import functional_call as functional_call
from ._modules import named_buffers as named_buffers
from ._modules import named_parameters as named_parameters
from ._modules import stack_module_state as stack_module_state

__all__ = [
    "JvpFn",
    "VjpFn",
    "functional_call",
    "grad",
    "grad_and_value",
    "hessian",
    "jacfwd",
    "jacrev",
    "jvp",
    "linearize",
    "named_buffers",
    "named_parameters",
    "stack_module_state",
    "vjp",
    "vmap",
]

_VJP = "vjp(f, *primals)"
_JVP = "jvp(f, primals, tangents)"
_GRAD = "grad_and_value(f)(*args)"


def _wraps(
    func: Callable[..., Any], transform: Callable[..., Any], *options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``functools.wraps`` (tolerating callables without ``__name__``), and a note of how
    the wrapper was made: ``transform(func, *options)``. With it, the compile cache keys a
    transform of a transform (``hessian``, ``vmap(grad(f))``, made afresh at each call) on
    ``func`` and the options, not on the new wrapper object."""

    def deco(wrapper: Callable[..., Any]) -> Callable[..., Any]:
        try:
            functools.wraps(func)(wrapper)
        except (AttributeError, TypeError):  # pragma: no cover - exotic callables
            wrapper.__wrapped__ = func  # type: ignore[attr-defined]
        _cache.register_wrapper(wrapper, func, transform, options)
        return wrapper

    return deco


def _flat_fn(
    func: Callable[..., Any],
    call_args: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    api: str,
    has_aux: bool,
    seen: dict[str, Any],
    check: Callable[[list[Any]], None] | None = None,
) -> Callable[..., tuple[list[Any], Any]]:
    """``func`` as the core's flat function ``fn(*arrays) -> (outputs, aux)``, with torch's
    output checks (``api`` prefixes the messages). The output and aux structures are noted
    in ``seen`` (``"out"``, ``"aux"``); ``check`` adds a transform's own output rule."""

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        out = func(*call_args(flat))
        aux = None
        if has_aux:
            out, aux = _checks.check_has_aux_output(out, api)
            _checks.check_aux(aux)
            aux_flat, seen["aux"] = _tree.flatten_structure(aux)
            aux = [_checks.to_array(a) for a in aux_flat]
        flat_out, seen["out"] = _tree.flatten_structure(out)
        _checks.check_nonempty_tensor_output(flat_out, api)
        if check is not None:
            check(flat_out)
        return [_checks.to_array(o) for o in flat_out], aux

    return fn


def _with_aux(result: Any, has_aux: bool, seen: dict[str, Any], aux: Any) -> Any:
    """Append ``aux`` (in the user's structure) to a result tuple, or pair it with a value."""
    if not has_aux:
        return result
    aux = seen["aux"].unflatten(aux)
    return (*result, aux) if isinstance(result, tuple) else (result, aux)


def _floating_outputs(flat_out: list[Any]) -> None:
    for o in flat_out:
        if not _checks.is_inexact(o):
            raise RuntimeError(
                "vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got "
                f"Tensor with dtype {_checks.torch_dtype(o.dtype)}"
            )


# -- vjp ----------------------------------------------------------------------------------------


@overload
def vjp(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, _core.VjpFn]: ...
@overload
def vjp(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, _core.VjpFn, Any]: ...
def vjp(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Vector-Jacobian product: ``(output, vjp_fn)``, or ``(output, vjp_fn, aux)``.

    ``vjp_fn(cotangents)`` returns a tuple with one entry per primal. Primals and outputs may
    be pytrees (tuples, lists, dicts) of arrays.

    >>> import jax.numpy as jnp, jaxfunc
    >>> x = jnp.arange(3.0)
    >>> out, vjp_fn = jaxfunc.func.vjp(lambda x: jnp.sin(x).sum(), x)
    >>> vjp_fn(jnp.asarray(1.0))[0]
    Array([ 1.        ,  0.5403023 , -0.41614684], dtype=float32)

    Differences from torch: ``vjp_fn`` is a JAX pytree (it crosses ``jax.jit`` and maps with
    ``jax.vmap``); numpy arrays are accepted as primals.
    """
    _checks.check_callable(func, "vjp")
    if all(type(p) is _checks.ArrayImpl and _checks.is_inexact(p) for p in primals):
        static = ((_tree.LEAF,) * len(primals), has_aux)  # the common case: arrays
        return _cache.call(func, _vjp_program, static, list(primals))
    _checks.check_primal_leaves(primals)
    flats = [_tree.flatten_structure(p) for p in primals]
    arrays = [_checks.to_array(x) for flat, _ in flats for x in flat]
    static = (tuple(s for _, s in flats), has_aux)
    return _cache.call(func, _vjp_program, static, arrays)


def _unflatten_args(structures: tuple[_tree.Structure, ...], flat: Any) -> tuple[Any, ...]:
    out, start = [], 0
    for s in structures:
        out.append(s.unflatten(list(flat[start : start + s.num_leaves])))
        start += s.num_leaves
    return tuple(out)


def _save_real_dots(prim: Any, *avals: Any, **params: Any) -> bool:
    """Remat policy: keep the results of real matrix products without batch dimensions
    (JAX's ``dots_with_no_batch_dims_saveable``, less complex dots: saving a complex
    residual fails in jax.checkpoint, which rounds residuals with a real-only primitive)."""
    if prim is not jax.lax.dot_general_p:
        return False
    (_, _), (lhs_batch, rhs_batch) = params["dimension_numbers"]
    return not lhs_batch and not rhs_batch and not any(jnp.iscomplexobj(a) for a in avals)


@_cache.eager_first
def _vjp_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> tuple[Any, ...]:
    in_structures, has_aux = static
    seen: dict[str, Any] = {}
    unflatten = functools.partial(_unflatten_args, in_structures)
    fn = _flat_fn(func, unflatten, _VJP, has_aux, seen, _floating_outputs)
    # Compiled, the residuals cross a jit boundary to reach the backward: storing every
    # intermediate costs memory traffic that recomputing cheap operations does not (2x
    # faster at N=1e6, elementwise). Results of matrix products are kept.
    compiled = _cache.tracing()
    out, pullback, aux = _core.reverse(fn, arrays, _save_real_dots if compiled else None)
    out_avals = tuple((tuple(o.shape), o.dtype) for o in out)
    vjp_fn = _core.VjpFn.from_pullback(pullback, seen["out"], out_avals, in_structures, compiled)
    return _with_aux((seen["out"].unflatten(out), vjp_fn), has_aux, seen, aux)


# -- jvp ----------------------------------------------------------------------------------------


def _check_jvp_pair(primal: Any, tangent: Any) -> Any:
    """torch's ``make_dual`` checks, in torch's order; returns the tangent cast to the primal."""
    for what, t in (("primal", primal), ("tangent", tangent)):
        if not _checks.is_inexact(t):
            raise ValueError(
                f"Expected {what} to be floating point or complex, but got: "
                f"{_checks.torch_dtype(t.dtype)}"
            )
    if tuple(tangent.shape) != tuple(primal.shape):
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the "
            "original Tensor, this is not supported. Tensor is of size "
            f"{list(primal.shape)} while the given forward gradient is of size "
            f"{list(tangent.shape)}."
        )
    tangent = _checks.to_array(tangent)
    if _checks.is_complex(tangent) and not _checks.is_complex(primal):
        warnings.warn(
            "Casting complex values to real discards the imaginary part", UserWarning, stacklevel=4
        )
        tangent = jnp.real(tangent)
    return tangent.astype(primal.dtype) if tangent.dtype != primal.dtype else tangent


def _jvp_inputs(primals: Any, tangents: Any) -> tuple[list[Any], list[Any], _tree.Structure]:
    """Validate torch.func.jvp's primals/tangents; returns flat primals and cast tangents."""
    if not isinstance(primals, tuple):
        raise RuntimeError(
            f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    flat_p, p_struct = _tree.flatten_structure(primals)
    flat_t, t_struct = _tree.flatten_structure(tangents)
    if p_struct != t_struct:  # torch compares dict key order too
        raise RuntimeError(
            f"{_JVP}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {_tree.treespec_repr(primals)} and tangents with structure "
            f"{_tree.treespec_repr(tangents)}"
        )
    for name, flat in (("primals", flat_p), ("tangents", flat_t)):
        if not flat:
            raise RuntimeError(f"{_JVP}: Expected {name} to contain at least one Tensor.")
        for leaf in flat:
            if not _checks.is_tensor(leaf):
                raise RuntimeError(
                    f"{_JVP}: Expected {name} to only contain Tensors, got {type(leaf)}"
                )
    cast = [_check_jvp_pair(p, t) for p, t in zip(flat_p, flat_t)]
    return [_checks.to_array(p) for p in flat_p], cast, p_struct


@overload
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: Literal[False] = False,
) -> tuple[Any, Any]: ...
@overload
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: Literal[True],
) -> tuple[Any, Any, Any]: ...
def jvp(
    func: Callable[..., Any],
    primals: Any,
    tangents: Any,
    *,
    strict: bool = False,
    has_aux: bool = False,
) -> tuple[Any, ...]:
    """Jacobian-vector product (forward mode): ``(output, jvp_out)`` or with ``aux``.

    ``primals`` must be a tuple (``func(*primals)``); ``tangents`` the same structure.

    >>> import jax.numpy as jnp, jaxfunc
    >>> x = jnp.asarray(2.0)
    >>> jaxfunc.func.jvp(lambda x: x * jnp.array([1.0, 2.0, 3.0]), (x,), (jnp.asarray(1.0),))
    (Array([2., 4., 6.], dtype=float32), Array([1., 2., 3.], dtype=float32))

    Differences from torch: ``no_grad`` blocks are ignored, as torch's forward AD does.
    """
    _checks.check_callable(func, "jvp")
    flat_p, flat_t, struct = _jvp_inputs(primals, tangents)
    return _cache.call(func, _jvp_program, (struct, strict, has_aux), (flat_p, flat_t))


@_cache.eager_first
def _jvp_program(func: Callable[..., Any], static: Any, arrays: Any) -> tuple[Any, ...]:
    struct, strict, has_aux = static
    flat_p, flat_t = arrays
    seen: dict[str, Any] = {}
    fn = _flat_fn(func, lambda flat: struct.unflatten(list(flat)), _JVP, has_aux, seen)
    if strict:
        deps = _strict.output_dependencies(lambda *p: fn(*p)[0], flat_p, honor_no_grad=False)
        if any(d == 0 for d in deps):
            raise RuntimeError(
                "jvp(f, primals, tangents, strict=True): The output of f is independent of the "
                "inputs. This is not allowed with strict=True."
            )
    out, tan, aux = _core.forward(fn, flat_p, flat_t, honor_no_grad=False)
    return _with_aux((seen["out"].unflatten(out), seen["out"].unflatten(tan)), has_aux, seen, aux)


# -- grad / grad_and_value -------------------------------------------------------------------


@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False
) -> Callable[..., tuple[Any, Any]]: ...
@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True]
) -> Callable[..., tuple[Any, tuple[Any, Any]]]: ...
@overload
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...], has_aux: Literal[True]
) -> Callable[..., tuple[Any, tuple[Any, Any]]]: ...
def grad_and_value(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Gradient and value of a scalar function: ``(grad, value)`` or ``(grad, (value, aux))``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.grad_and_value(lambda x: (x ** 2).sum())(jnp.arange(3.0))
    (Array([0., 2., 4.], dtype=float32), Array(5., dtype=float32))
    """
    _checks.check_callable(func, "grad_and_value")

    @_wraps(func, grad_and_value, argnums, has_aux)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _grad_call(func, argnums, has_aux, args, kwargs, with_value=True)

    return wrapper


@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False
) -> Callable[..., Any]: ...
@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True]
) -> Callable[..., tuple[Any, Any]]: ...
@overload
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...], has_aux: Literal[True]
) -> Callable[..., tuple[Any, Any]]: ...
def grad(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Gradient of a function returning a 0-d array; keyword arguments pass through.

    ``argnums`` (int or tuple, negatives allowed) picks the differentiated positional
    arguments; each may be a pytree. With ``has_aux``, returns ``(grad, aux)``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(
    ...     jnp.ones(2), jnp.arange(2.0))
    (Array([0., 1.], dtype=float32), Array([1., 1.], dtype=float32))

    Differences from torch: error messages mention ``grad_and_value`` as torch's do; an
    integer scalar output gives zero gradients as in torch (``jax.grad`` raises).
    """
    _checks.check_callable(func, "grad")

    @_wraps(func, grad, argnums, has_aux)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _grad_call(func, argnums, has_aux, args, kwargs, with_value=False)

    return wrapper


def _grad_call(
    func: Callable[..., Any],
    argnums: Any,
    has_aux: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    with_value: bool,
) -> Any:
    argnums = _checks.normalize_argnums(argnums, len(args))
    _checks.check_primal_leaves(_checks.slice_argnums(args, argnums))
    arrays, desc = _core.split_arrays((args, kwargs))
    return _cache.call(func, _grad_program, (desc, argnums, has_aux, with_value), arrays)


@_cache.eager_first
def _grad_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> Any:
    desc, argnums, has_aux, with_value = static
    args, kwargs = _core.merge_arrays(desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        new_args = _checks.replace_argnums(args, argnums, diff_struct.unflatten(list(flat)))
        out = func(*new_args, **kwargs)
        aux = None
        if has_aux:
            out, aux = _checks.check_has_aux_output(out, _GRAD)
        if not _checks.is_tensor(out):
            raise RuntimeError(f"{_GRAD}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out.ndim != 0:
            raise RuntimeError(
                f"{_GRAD}: Expected f(*args) to return a scalar Tensor, got tensor with "
                f"{out.ndim} dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
            )
        if _checks.is_complex(out):
            raise RuntimeError(
                "grad can be implicitly created only for real scalar outputs but got "
                f"{_checks.torch_dtype(out.dtype)}"
            )
        out = _checks.to_array(out)
        if has_aux:
            _checks.check_aux(aux)
            aux_flat, seen["aux"] = _tree.flatten_structure(aux)
            aux = [_checks.to_array(a) for a in aux_flat]
        return ([out] if _checks.is_inexact(out) else []), (out, aux)

    seen: dict[str, Any] = {}
    outs, pullback, (value, aux) = _core.reverse(fn, diff_flat)
    grads = _core.pull(pullback, [jnp.ones_like(o) for o in outs])
    g = diff_struct.unflatten(grads)
    if has_aux:
        aux = seen["aux"].unflatten(aux)
    if with_value:
        return (g, (value, aux)) if has_aux else (g, value)
    return (g, aux) if has_aux else g


# -- jacrev / jacfwd / hessian ---------------------------------------------------------------


def jacrev(
    func: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    *,
    has_aux: bool = False,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """Jacobian by reverse mode (vmapped ``vjp`` over one-hot cotangents).

    The result has the output's structure; each leaf has the structure of the ``argnums``
    arguments (a tuple for tuple ``argnums``), with shape ``out.shape + in.shape``.
    ``chunk_size`` bounds how many cotangents are mapped at once (memory), never values.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.jacrev(jnp.sin)(jnp.zeros(2))
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    _checks.check_callable(func, "jacrev")
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @_wraps(func, _jacrev_positional, argnums, has_aux, chunk_size)
    def wrapper(*args: Any) -> Any:
        _checks.check_real("jacrev", args, is_input=True)
        argnums_ = _checks.normalize_argnums(argnums, len(args))
        _checks.check_primal_leaves(_checks.slice_argnums(args, argnums_))
        arrays, desc = _core.split_arrays(args)
        static = (desc, argnums_, has_aux, chunk_size)
        return _cache.call(func, _jacrev_program, static, arrays)

    return wrapper


def _replacing(
    args: tuple[Any, ...], argnums: Any, diff_struct: _tree.Structure
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """``args`` with the differentiated ones rebuilt from the flat arrays a transform traces."""
    return lambda flat: _checks.replace_argnums(args, argnums, diff_struct.unflatten(list(flat)))


def _jacrev_positional(func: Any, argnums: Any, has_aux: bool, chunk_size: Any) -> Any:
    return jacrev(func, argnums, has_aux=has_aux, chunk_size=chunk_size)


def _jac_structure(
    out_struct: _tree.Structure,
    in_struct: _tree.Structure,
    jac: list[list[Any]],
) -> Any:
    return out_struct.unflatten([in_struct.unflatten(row) for row in jac])


def _jacrev_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> Any:
    desc, argnums, has_aux, chunk_size = static
    args = _core.merge_arrays(desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))
    seen: dict[str, Any] = {}

    def outputs(flat_out: list[Any]) -> None:
        _floating_outputs(flat_out)
        _checks.check_real("jacrev", flat_out, is_input=False)

    fn = _flat_fn(func, _replacing(args, argnums, diff_struct), _VJP, has_aux, seen, outputs)

    outs, pullback, aux = _core.reverse(fn, diff_flat)
    jac = _core.jacobian_reverse(pullback, outs, diff_flat, chunk_size)
    return _with_aux(_jac_structure(seen["out"], diff_struct, jac), has_aux, seen, aux)


def jacfwd(
    func: Callable[..., Any],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    *,
    randomness: str = "error",
) -> Callable[..., Any]:
    """Jacobian by forward mode (vmapped ``jvp`` over one-hot tangents).

    Same result structure as :func:`jacrev`. ``has_aux`` may be given positionally, as in
    torch. ``randomness`` is validated as torch does; jnp code has no hidden RNG state.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.jacfwd(lambda x: x ** 2)(jnp.arange(2.0))
    Array([[0., 0.],
           [0., 2.]], dtype=float32)

    Differences from torch: ``no_grad`` blocks are ignored, as torch's forward AD does.
    """
    _checks.check_callable(func, "jacfwd")

    @_wraps(func, jacfwd, argnums, has_aux, randomness)
    def wrapper(*args: Any) -> Any:
        _check_randomness(randomness)
        _checks.check_real("jacfwd", args, is_input=True)
        argnums_ = _checks.normalize_argnums(argnums, len(args))
        for leaf in _tree.leaves(_checks.slice_argnums(args, argnums_)):
            if not _checks.is_tensor(leaf):
                raise RuntimeError(
                    f"{_JVP}: Expected primals to only contain Tensors, got {type(leaf)}"
                )
            _check_jvp_pair(leaf, leaf)
        arrays, desc = _core.split_arrays(args)
        return _cache.call(func, _jacfwd_program, (desc, argnums_, has_aux), arrays)

    return wrapper


def _jacfwd_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> Any:
    desc, argnums, has_aux = static
    args = _core.merge_arrays(desc, arrays)
    diff_flat, diff_struct = _tree.flatten_structure(_checks.slice_argnums(args, argnums))
    seen: dict[str, Any] = {}

    def outputs(flat_out: list[Any]) -> None:
        _checks.check_real("jacfwd", flat_out, is_input=False)

    fn = _flat_fn(func, _replacing(args, argnums, diff_struct), _JVP, has_aux, seen, outputs)
    outs, aux = fn(*diff_flat)  # shapes, checks and aux, once (XLA drops the duplicate)

    def push(*tangents: Any) -> list[Any]:
        return _core.forward(fn, diff_flat, tangents, honor_no_grad=False)[1]

    jac = _core.jacobian_forward(push, outs, diff_flat)
    return _with_aux(_jac_structure(seen["out"], diff_struct, jac), has_aux, seen, aux)


def hessian(
    func: Callable[..., Any], argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False
) -> Callable[..., Any]:
    """Hessian as ``jacfwd(jacrev(func, argnums), argnums)``, exactly torch's definition.

    The output need not be a scalar (the result is then a Jacobian of the Jacobian).

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.hessian(lambda x: (x ** 3).sum())(jnp.arange(2.0))
    Array([[0., 0.],
           [0., 6.]], dtype=float32)

    Beyond torch: ``has_aux=True`` (``func`` returns ``(output, aux)``; the call returns
    ``(hessian, aux)``).
    """
    inner = jacrev(func, argnums, has_aux=has_aux)
    return jacfwd(inner, argnums, has_aux)


# -- linearize ------------------------------------------------------------------------------


class LinearizeMeta:
    __slots__ = ("compiled", "in_avals", "in_structure", "out_desc")

    def __init__(self, in_structure: Any, in_avals: Any, out_desc: Any) -> None:
        self.in_structure = in_structure
        self.in_avals = in_avals
        self.out_desc = out_desc  # the output's structure and non-array leaves
        self.compiled = _cache.tracing()


class JvpFn:
    """The ``jvp_fn`` of :func:`linearize`: maps primal tangents to output tangents.

    A registered pytree (it crosses ``jax.jit``); tangents must match the primals' structure,
    shapes and dtypes exactly, as in torch.
    """

    __slots__ = ("_lin", "_meta")

    def __init__(self, lin: Any, meta: LinearizeMeta) -> None:
        self._lin = lin
        self._meta = meta

    @property
    def jaxfunc_compiled(self) -> bool:
        """Made by a compiled program (stable structure: transforms of it compile too)."""
        return self._meta.compiled

    def __call__(self, *tangents: Any) -> Any:
        meta = self._meta
        flat, struct = _tree.flatten_structure(tangents)
        if struct != meta.in_structure:  # torch compares dict key order too
            primals = meta.in_structure.unflatten([0] * meta.in_structure.num_leaves)
            raise RuntimeError(
                f"Expected the tangents {_tree.treespec_repr(tangents)} to have the same "
                f"argspec as the primals {_tree.treespec_repr(primals)}"
            )
        for idx, (t, (shape, dtype)) in enumerate(zip(flat, meta.in_avals)):
            if not _checks.is_tensor(t):
                raise TypeError(f"linearize's jvp_fn expects Tensors, got {type(t)}")
            for what, got, want in (
                ("shape", _checks.torch_size(t.shape), _checks.torch_size(shape)),
                ("dtype", _checks.torch_dtype(t.dtype), _checks.torch_dtype(dtype)),
            ):
                if got != want:
                    raise RuntimeError(
                        f"tangent:{idx} with {what} {got} in flattened pytree doesn't match "
                        f"the {what} {want} of the corresponding primal."
                    )
        with _checks.torch_device_errors:
            out = self._lin(*[_checks.to_array(t) for t in flat])
        return _core.merge_arrays(meta.out_desc, out)


_cache.PYTREE_CALLABLES.add(JvpFn)
jax.tree_util.register_pytree_node(
    JvpFn,
    lambda f: ((f._lin,), f._meta),
    lambda meta, children: JvpFn(children[0], meta),
)


@overload
def linearize(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, JvpFn]: ...
@overload
def linearize(
    func: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, JvpFn, Any]: ...
def linearize(func: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(output, jvp_fn)``: evaluate ``func`` once and return its linear map at ``primals``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> out, jvp_fn = jaxfunc.func.linearize(jnp.sin, jnp.zeros(2))
    >>> jvp_fn(jnp.ones(2))
    Array([1., 1.], dtype=float32)

    Beyond torch: ``func`` is evaluated once (torch evaluates it twice) and ``has_aux=True``
    returns ``(output, jvp_fn, aux)``. ``jvp_fn`` is a pytree. Forward mode: ``no_grad``
    blocks are ignored, as in torch.
    """
    _checks.check_callable(func, "linearize")
    flat, struct = _tree.flatten_structure(primals)
    for leaf in flat:
        if not _checks.is_tensor(leaf):
            raise TypeError(
                f"linearize(func, *primals): expected primals to be Tensors, got {type(leaf)}"
            )
        _check_jvp_pair(leaf, leaf)
    arrays = [_checks.to_array(x) for x in flat]
    return _cache.call(func, _linearize_program, (struct, has_aux), arrays)


@_cache.eager_first
def _linearize_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> tuple[Any, ...]:
    struct, has_aux = static
    seen: dict[str, Any] = {}
    api = "linearize(f, *primals)"

    def fn(*flat: Any) -> tuple[list[Any], Any]:
        # torch's linearize checks nothing about the output: non-tensor leaves (None,
        # numbers) come back as they are, from the call and from jvp_fn.
        out = func(*struct.unflatten(list(flat)))
        aux = None
        if has_aux:
            out, aux = _checks.check_has_aux_output(out, api)
            _checks.check_aux(aux)
            aux_flat, seen["aux"] = _tree.flatten_structure(aux)
            aux = [_checks.to_array(a) for a in aux_flat]
        arrays_out, seen["out"] = _core.split_arrays(out)
        return arrays_out, aux

    out, lin, aux = jax.linearize(fn, *arrays, has_aux=True)
    meta = LinearizeMeta(struct, tuple((tuple(a.shape), a.dtype) for a in arrays), seen["out"])
    return _with_aux((_core.merge_arrays(seen["out"], out), JvpFn(lin, meta)), has_aux, seen, aux)


# -- vmap -----------------------------------------------------------------------------------


def _check_randomness(randomness: str) -> None:
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            "Only allowed values for randomness are 'error', 'different', or 'same'. "
            f"Got {randomness}"
        )


def vmap(
    func: Callable[..., Any],
    in_dims: Any = 0,
    out_dims: Any = 0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable[..., Any]:
    """Vectorizing map with torch's ``in_dims``/``out_dims`` rules and checks.

    Keyword arguments are passed through unbatched; unbatched outputs are broadcast along
    the mapped dimension; ``chunk_size`` maps that many elements at a time.

    >>> import jax.numpy as jnp, jaxfunc
    >>> jaxfunc.func.vmap(jnp.dot)(jnp.ones((2, 3)), jnp.ones((2, 3)))
    Array([3., 3.], dtype=float32)

    Differences from torch: ``randomness`` is only validated (jnp code has no global RNG;
    pass keys explicitly).
    """
    _checks.check_callable(func, "vmap")
    _check_randomness(randomness)
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @_wraps(func, _vmap_positional, in_dims, out_dims, randomness, chunk_size)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if randomness == "error":
            _warnings.random_error(func)
        flat_dims, batch_size = _vmap_check_inputs(func, in_dims, out_dims, args)
        arrays, desc = _core.split_arrays((args, kwargs))
        static = (desc, tuple(flat_dims), batch_size, out_dims, chunk_size)
        return _cache.call(func, _vmap_program, static, arrays)

    return wrapper


def _vmap_positional(func: Any, in_dims: Any, out_dims: Any, randomness: str, chunk: Any) -> Any:
    return vmap(func, in_dims, out_dims, randomness, chunk_size=chunk)


def _vmap_check_inputs(
    func: Callable[..., Any], in_dims: Any, out_dims: Any, args: tuple[Any, ...]
) -> tuple[list[int | None], int]:
    name = _checks.func_name(func)
    _check_out_dims(func, out_dims)
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a "
            "(potentially nested) tuple matching the structure of inputs, got: "
            f"{type(in_dims)}."
        )
    if len(args) == 0:
        raise ValueError(
            f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are "
            "trying to vmap over a function with no inputs. The latter is unsupported."
        )
    flat_args, _args_def = _tree.flatten(args)
    flat_dims = _broadcast_prefix(in_dims, args)
    if flat_dims is None:
        raise ValueError(
            f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
            f"structure of `inputs`. in_dims has structure {_tree.treespec_repr(in_dims)} but "
            f"inputs has structure {_tree.treespec_repr(args)}."
        )
    for i, (arg, dim) in enumerate(zip(flat_args, flat_dims)):
        if not isinstance(dim, int) and dim is not None:
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for an input "
                "but in_dim must be either an integer dimension or None."
            )
        if isinstance(dim, int) and not _checks.is_tensor(arg):
            raise ValueError(
                f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for an input "
                f"but the input is of type {type(arg)}. We cannot vmap over non-Tensor "
                "arguments, please use None as the respective in_dim"
            )
        if dim is not None:
            ndim = len(arg.shape)
            if dim < -ndim or dim >= ndim:
                raise ValueError(
                    f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={dim} for some "
                    f"input, but that input is a Tensor of dimensionality {ndim} so expected "
                    f"in_dim to satisfy -{ndim} <= in_dim < {ndim}."
                )
            flat_dims[i] = dim % ndim
    sizes = [arg.shape[d] for arg, d in zip(flat_args, flat_dims) if d is not None]
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(
            "vmap: Expected all tensors to have the same size in the mapped dimension, got "
            f"sizes {sizes} for the mapped dimension"
        )
    return flat_dims, sizes[0]


def _broadcast_prefix(prefix: Any, tree: Any) -> list[Any] | None:
    """torch's ``_broadcast_to_and_flatten``: expand an int/None prefix over ``tree``'s leaves."""
    if prefix is None or isinstance(prefix, int):
        return [prefix] * len(_tree.leaves(tree))
    if isinstance(prefix, (tuple, list)):
        if type(prefix) is not type(tree) and not (
            isinstance(prefix, tuple) and isinstance(tree, tuple)
        ):
            return None
        if len(prefix) != len(tree):
            return None
        out: list[Any] = []
        for p, t in zip(prefix, tree):
            sub = _broadcast_prefix(p, t)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(prefix, dict):
        if not isinstance(tree, dict) or set(prefix) != set(tree):
            return None
        out = []
        for k in sorted(tree):
            sub = _broadcast_prefix(prefix[k], tree[k])
            if sub is None:
                return None
            out.extend(sub)
        return out
    return [prefix] * len(_tree.leaves(tree))


def _check_out_dims(func: Callable[..., Any], out_dims: Any) -> None:
    if isinstance(out_dims, int):
        return
    for leaf in _tree.leaves(out_dims):
        if leaf is not None and not isinstance(leaf, int):
            raise ValueError(
                f"vmap({_checks.func_name(func)}, ..., out_dims={out_dims}): `out_dims` must be "
                "an int, None or a python collection of ints representing where in the outputs "
                "the vmapped dimension should appear."
            )


def _vmap_program(func: Callable[..., Any], static: Any, arrays: list[Any]) -> Any:
    desc, flat_dims, batch_size, out_dims, chunk_size = static
    args, kwargs = _core.merge_arrays(desc, arrays)
    flat_args, args_struct = _tree.flatten_structure(args)
    name = _checks.func_name(func)
    mapped = [i for i, d in enumerate(flat_dims) if d is not None]
    in_axes = tuple(flat_dims[i] for i in mapped)
    seen: dict[str, Any] = {}

    def body(*batched: Any) -> list[Any]:
        leaves = list(flat_args)
        for i, b in zip(mapped, batched):
            leaves[i] = b
        out = func(*args_struct.unflatten(leaves), **kwargs)
        flat_out, seen["out"] = _tree.flatten_structure(out)
        dims = _out_dims_for(func, out_dims, out, len(flat_out))
        for o, d in zip(flat_out, dims):
            if d is not None and not _checks.is_tensor(o):
                raise ValueError(
                    f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(o)}. "
                    "Did you mean to set out_dims= to None for output?"
                )
            if d is not None and not -(o.ndim + 1) <= d <= o.ndim:
                raise IndexError(
                    "Dimension out of range (expected to be in range of "
                    f"[{-(o.ndim + 1)}, {o.ndim}], but got {d})"
                )
        seen["dims"] = dims
        return [_checks.to_array(o) if _checks.is_tensor(o) else o for o in flat_out]

    def run(batched: list[Any]) -> list[Any]:
        # Trace once to learn the output structure (and check it), then map for real.
        jax.eval_shape(jax.vmap(body, in_axes=in_axes, out_axes=0), *batched)
        try:
            return jax.vmap(body, in_axes=in_axes, out_axes=list(seen["dims"]))(*batched)
        except ValueError as e:
            if "got axis spec None but output was batched" not in str(e):
                raise
            raise ValueError(
                f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None"
            ) from None

    batched = [flat_args[i] for i in mapped]
    if chunk_size is None or chunk_size >= batch_size:
        flat_out = run(batched)
        return seen["out"].unflatten(flat_out)
    parts = []
    for start in range(0, batch_size, chunk_size):
        stop = min(start + chunk_size, batch_size)
        parts.append(
            run([jax.lax.slice_in_dim(b, start, stop, axis=d) for b, d in zip(batched, in_axes)])
        )
    flat_out = [
        cols[0] if d is None else jnp.concatenate(cols, axis=d % jnp.ndim(cols[0]))
        for cols, d in zip(zip(*parts), seen["dims"])
    ]
    return seen["out"].unflatten(flat_out)


def _out_dims_for(func: Callable[..., Any], out_dims: Any, out: Any, n: int) -> list[Any]:
    name = _checks.func_name(func)

    def incompatible() -> ValueError:
        return ValueError(
            f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with "
            f"the structure of `outputs`. out_dims has structure {_tree.treespec_repr(out_dims)} "
            f"but outputs has structure {_tree.treespec_repr(out)}."
        )

    if _checks.is_tensor(out) or not isinstance(out, (tuple, list, dict)):
        if isinstance(out_dims, int) or out_dims is None:
            return [out_dims]
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            return list(out_dims)
        raise incompatible()
    dims = _broadcast_prefix(out_dims, out)
    if dims is None or len(dims) != n:
        raise incompatible()
    return dims
