"""Modules the torch.func way: ``functional_call``, ``stack_module_state``, named state.

JAX modules (Equinox, Flax NNX, any pytree with a ``__call__``) are immutable pytrees, so a
"functional call" is: flatten the module, put the given arrays in place of the leaves their
torch-style names (``layers.0.weight``) point at, rebuild, call. Nothing is swapped in and
out of the user's object, and the rebuild traces like any other JAX code (jit, vmap, grad).

What is a parameter and what is a buffer (torch's split, which JAX modules do not make):

- Flax NNX: ``nnx.Param`` variables are parameters; every other ``nnx.Variable``
  (``BatchStat``, RNG keys and counters, caches) is a buffer.
- Equinox and plain pytrees: floating point and complex array leaves are parameters (what
  ``eqx.filter(module, eqx.is_inexact_array)`` keeps, what ``eqx.filter_grad``
  differentiates); other array leaves (integers, booleans, PRNG keys) are buffers, and so
  are the initial values an ``eqx.nn.StateIndex`` holds (at run time they live in an
  ``eqx.nn.State``, not in the module). Non-array leaves (activation functions, Python
  numbers) are neither.

Weights are tied when the same array object (NNX: the same variable) sits at two names.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from . import _checks

# -- names and kinds of a module's leaves ----------------------------------------------------

_PARAM, _BUFFER, _OTHER = 0, 1, 2
_FORCED_NONE = -1  # the leaf's kind follows its dtype


def _key_name(key: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)  # pragma: no cover - a key type JAX may add later


class _Layout:
    """What a module's structure says, independent of its leaf values: each leaf's
    torch-style name, and the kind its wrapper fixes (NNX variable, Equinox state)."""

    __slots__ = ("forced", "names")

    def __init__(self, names: tuple[str, ...], forced: tuple[int, ...]) -> None:
        self.names = names
        self.forced = forced


_layouts: collections.OrderedDict[Any, _Layout] = collections.OrderedDict()
_MAX_LAYOUTS = 256


def _layout(module: Any, treedef: Any) -> _Layout:
    try:
        found = _layouts.get(treedef)
    except TypeError:  # a static field that cannot be hashed
        return _make_layout(module)
    if found is None:
        found = _layouts[treedef] = _make_layout(module)
        if len(_layouts) > _MAX_LAYOUTS:
            _layouts.popitem(last=False)
    return found


def _wrapper_kinds() -> tuple[type, ...]:
    """The wrapper nodes whose type decides their leaves' kind (only libraries already
    imported: jaxfunc never imports Equinox or Flax itself)."""
    kinds: list[type] = []
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None:
        kinds.append(nnx.Variable)
    eqx = sys.modules.get("equinox")
    if eqx is not None:
        kinds.append(eqx.nn.StateIndex)
    return tuple(kinds)


def _make_layout(module: Any) -> _Layout:
    wrappers = _wrapper_kinds()
    names: list[str] = []
    forced: list[int] = []
    path_leaves = jax.tree_util.tree_flatten_with_path(module)[0]
    if wrappers:
        # One pass with the wrappers as leaves tells which leaves each one holds.
        outer = jax.tree_util.tree_flatten_with_path(
            module, is_leaf=lambda x: isinstance(x, wrappers)
        )[0]
        nnx = sys.modules.get("flax.nnx")
        for path, node in outer:
            base = _names_of(path)
            if not isinstance(node, wrappers):
                names.append(base)
                forced.append(_FORCED_NONE)
                continue
            inner = jax.tree_util.tree_flatten_with_path(node)[0]
            if nnx is not None and isinstance(node, nnx.Variable):
                kind = _PARAM if isinstance(node, nnx.Param) else _BUFFER
                if len(inner) == 1:  # a variable's one value goes by the variable's name
                    inner = [((), None)]
            else:  # the initial state an eqx.nn.StateIndex holds
                kind = _BUFFER
            names.extend(".".join(filter(None, (base, _names_of(p)))) for p, _ in inner)
            forced.extend([kind] * len(inner))
        if len(names) != len(path_leaves):  # pragma: no cover - defensive
            raise RuntimeError("jaxfunc: could not name the leaves of this module")
    else:
        names = [_names_of(p) for p, _ in path_leaves]
        forced = [_FORCED_NONE] * len(names)
    return _Layout(tuple(names), tuple(forced))


def _names_of(path: Any) -> str:
    return ".".join(_key_name(k) for k in path)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _kind(leaf: Any, forced: int) -> int:
    if not _is_array(leaf):
        return _OTHER
    if forced != _FORCED_NONE:
        return forced
    return _PARAM if _checks.is_inexact(leaf) else _BUFFER


def _entries(module: Any) -> tuple[list[Any], Any, _Layout, list[int]]:
    """The module's leaves, treedef, layout, and each leaf's kind."""
    leaves, treedef = jax.tree_util.tree_flatten(module)
    layout = _layout(module, treedef)
    kinds = [_kind(leaf, f) for leaf, f in zip(leaves, layout.forced)]
    return leaves, treedef, layout, kinds


def _named(module: Any, want: int, remove_duplicate: bool) -> dict[str, Any]:
    leaves, _, layout, kinds = _entries(module)
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for leaf, name, kind in zip(leaves, layout.names, kinds):
        if kind != want:
            continue
        if remove_duplicate:
            if id(leaf) in seen:
                continue
            seen.add(id(leaf))
        out[name] = leaf
    return out


def named_parameters(module: Any, *, remove_duplicate: bool = True) -> dict[str, Any]:
    """``dict(module.named_parameters())`` for a JAX module: torch-style dotted names
    (``layers.0.weight``) to arrays, in the module's tree order.

    Parameters are Flax NNX ``nnx.Param`` variables, and the floating point and complex
    array leaves of Equinox modules and other pytrees. A weight tied under two names is
    listed once (the first name), unless ``remove_duplicate=False``.

    >>> import jax.numpy as jnp, jaxfunc
    >>> model = {"layer": {"weight": jnp.ones((2, 2)), "steps": jnp.zeros((), int)}}
    >>> list(jaxfunc.func.named_parameters(model))
    ['layer.weight']

    Differences from torch: a function returning a dict, not a method returning an
    iterator of pairs (JAX modules have no such method); ``dict(...)`` of it works as in
    torch. For Flax NNX the order is NNX's own (attribute names sorted at each level).
    """
    return _named(module, _PARAM, remove_duplicate)


def named_buffers(module: Any, *, remove_duplicate: bool = True) -> dict[str, Any]:
    """``dict(module.named_buffers())`` for a JAX module: the array state that is not a
    parameter (NNX variables other than ``nnx.Param``; integer, boolean and key arrays of
    Equinox modules and pytrees, and ``eqx.nn.StateIndex`` initial values).

    >>> import jax.numpy as jnp, jaxfunc
    >>> model = {"layer": {"weight": jnp.ones((2, 2)), "steps": jnp.zeros((), int)}}
    >>> list(jaxfunc.func.named_buffers(model))
    ['layer.steps']
    """
    return _named(module, _BUFFER, remove_duplicate)


# -- functional_call -------------------------------------------------------------------------


def _merge_dicts(parameter_and_buffer_dicts: Any) -> dict[str, Any]:
    if isinstance(parameter_and_buffer_dicts, dict):
        return parameter_and_buffer_dicts
    if isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError(
                "Expected all elements of parameter_and_buffer_dicts to be dictionaries"
            )
        counts: dict[Any, int] = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(
                f"{repeated} appeared in multiple dictionaries; behavior of functional call is "
                "ambiguous"
            )
        return {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    raise ValueError(
        "Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
        f"{type(parameter_and_buffer_dicts)}"
    )


def _untie(
    given: dict[str, Any], names: list[str], leaves: list[Any], kinds: list[int]
) -> dict[str, Any]:
    """torch's ``_untie_named_tensors_map``: a value given for one name of a tied weight
    goes to all its names; different values for names of one weight are an error."""
    groups: dict[int, list[str]] = {}
    for name, leaf, kind in zip(names, leaves, kinds):
        if kind != _OTHER:
            groups.setdefault(id(leaf), []).append(name)
    tied = {n: g for g in groups.values() if len(g) > 1 for n in g}
    given_tied = [n for n in given if n in tied]
    if not given_tied:
        return given
    for name in given_tied:
        group = tied[name]
        # (torch indexes the given dict by every tied name here, a KeyError when a group of
        # three has two names given; the values given are what it means to compare)
        values = {id(given[n]) for n in group if n in given}
        if len([n for n in group if n in given]) > 1 and len(values) != 1:
            raise ValueError(
                f"functional_call got multiple values for keys {sorted(group)}, which are "
                "tied. Consider using tie_weights=False"
            )
    untied = dict(given)
    for name in given_tied:
        for other in tied[name]:
            untied[other] = given[name]
    return untied


def _check_strict(module: Any, given: dict[str, Any], names: list[str], kinds: list[int]) -> None:
    valid = {n for n, k in zip(names, kinds) if k != _OTHER}
    missing = sorted(valid - set(given))
    unexpected = sorted(set(given) - valid)
    msgs = []
    if unexpected:
        msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
    if missing:
        msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
    if msgs:
        raise RuntimeError(
            f"Error(s) in reparametrizing for {type(module).__name__}:\n\t" + "\n\t".join(msgs)
        )


def _not_tensor(value: Any) -> str:
    return f"{value} is not an instance of torch.Tensor (here: a jax.Array or numpy array)"


def _check_unknown(module: Any, name: str, names: list[str]) -> None:
    """A name that is no parameter or buffer: torch's errors for a path through something
    that is not a submodule, or onto an attribute that is not a tensor; otherwise (a new
    attribute) torch sets it for the call and removes it after: here it changes nothing."""
    prefix, _, attr = name.rpartition(".")
    node = module
    walked: list[str] = []
    for part in prefix.split(".") if prefix else ():
        nxt = _child(node, part)
        if nxt is _MISSING:
            raise AttributeError(f"{type(node).__name__} has no attribute `{part}`")
        walked.append(part)
        if _is_array(nxt) or nxt is None:
            raise TypeError(
                f"submodule `{'.'.join(walked)}`: {nxt} is not an instance of torch.nn.Module"
            )
        node = nxt
    current = _child(node, attr)
    if current is not _MISSING and current is not None and not _is_array(current):
        raise TypeError(f"attribute `{attr}`: {current} is not an instance of torch.Tensor")
    if _is_array(current):  # torch would set it; a pytree rebuild cannot reach it by name
        raise ValueError(
            f"functional_call: `{name}` is an array of {type(module).__name__} but not a leaf "
            f"of its pytree by that name (its leaves are named {', '.join(map(repr, names))}). "
            "Register the class with keys (jax.tree_util.register_dataclass or "
            "register_pytree_with_keys) so that its leaves have attribute names."
        )


_MISSING = object()


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, (list, tuple)) and part.lstrip("-").isdigit():
        try:
            return node[int(part)]
        except IndexError:
            return _MISSING
    nnx = sys.modules.get("flax.nnx")
    try:
        value = getattr(node, part)
    except AttributeError:
        if hasattr(node, "__getitem__") and part.isdigit():  # nnx.List, eqx.nn.Sequential
            try:
                return node[int(part)]
            except Exception:
                return _MISSING
        return _MISSING
    if nnx is not None and isinstance(value, nnx.Variable):
        return value.get_value()
    return value


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Any,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """Call ``module`` with some of its parameters and buffers replaced: torch.func's
    ``functional_call`` for JAX modules (Equinox, Flax NNX, any callable pytree).

    ``parameter_and_buffer_dicts``: one dict, or a tuple/list of dicts with distinct keys,
    of torch-style names (as :func:`named_parameters` gives them) to arrays. Names not
    given keep the module's own values, unless ``strict=True`` (then a missing or an
    unexpected name is torch's RuntimeError). With ``tie_weights`` (default), a value
    given for one name of a tied weight replaces it under all its names. ``args`` is one
    argument or a tuple of them; ``kwargs`` are passed as keywords.

    >>> import dataclasses, jax, jax.numpy as jnp, jaxfunc
    >>> @jax.tree_util.register_dataclass  # Equinox modules are such pytrees too
    ... @dataclasses.dataclass
    ... class Scale:
    ...     w: jax.Array
    ...     def __call__(self, x): return self.w * x
    >>> jaxfunc.func.functional_call(Scale(jnp.asarray(2.0)), {"w": jnp.asarray(3.0)}, (1.0,))
    Array(3., dtype=float32, weak_type=True)

    Differences from torch: the module is never touched (JAX modules are immutable: it is
    rebuilt with the new leaves), so state a module updates while called (NNX batch
    statistics) is not written back into the dicts. ``functional_call`` is plain JAX: it
    works inside every jaxfunc and JAX transform.
    """
    given = _merge_dicts(parameter_and_buffer_dicts)
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    leaves, treedef, layout, kinds = _entries(module)
    names = list(layout.names)
    if tie_weights:
        given = _untie(given, names, leaves, kinds)
    if strict:
        _check_strict(module, given, names, kinds)
    index = {n: i for i, (n, k) in enumerate(zip(names, kinds)) if k != _OTHER}
    new = list(leaves)
    for name, value in given.items():
        if value is not None and not _checks.is_tensor(value):
            raise TypeError(_not_tensor(value))
        i = index.get(name)
        if i is None:
            _check_unknown(module, name, [n for n, k in zip(names, kinds) if k != _OTHER])
            continue
        new[i] = _checks.to_array(value) if value is not None else value
    rebuilt = jax.tree_util.tree_unflatten(treedef, new)
    return rebuilt(*args, **kwargs)


# -- stack_module_state ----------------------------------------------------------------------


def _stack(name: str, values: list[Any]) -> Any:
    shapes = [tuple(v.shape) for v in values]
    for i, s in enumerate(shapes):
        if s != shapes[0]:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shapes[0])} at "
                f"entry 0 and {list(s)} at entry {i}"
            )
    return jax.numpy.stack(values)


def stack_module_state(models: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, buffers)``: the parameters and buffers of ``models`` (modules of one
    class and structure), each stacked along a new leading axis, by torch-style name.

    For ensembling with ``vmap(fmodel, in_dims=(0, 0, None))`` where ``fmodel`` calls
    :func:`functional_call` on one of the models (any of them: only their structure is
    used).

    >>> import jax.numpy as jnp, jaxfunc
    >>> models = [{"w": jnp.ones(2) * i} for i in range(3)]
    >>> params, buffers = jaxfunc.func.stack_module_state(models)
    >>> params["w"].shape, buffers
    ((3, 2), {})

    Differences from torch: JAX modules have no train/eval flag to compare.
    """
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    first_type = type(models[0])
    if not all(type(m) is first_type for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    result = []
    for named in (named_parameters, named_buffers):
        per_model = [named(m) for m in models]
        stacked = {}
        for name in per_model[0]:
            values = []
            for d in per_model:
                if name not in d:
                    raise KeyError(name)  # torch's, indexing a model's named state
                values.append(d[name])
            stacked[name] = _stack(name, values)
        result.append(stacked)
    return result[0], result[1]
