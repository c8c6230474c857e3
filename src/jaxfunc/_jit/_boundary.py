"""The jit boundary codec: what a compiled program's result loses crossing ``jax.jit``, and
how it is put back.

Three things: ``jax.jit`` rebuilds a returned dict with its keys sorted (the user's
insertion order is kept by :class:`OrderedNode` across the boundary); it copies every
returned leaf that is one of its own arguments (such leaves are left out of the result and
taken from the call's arrays after it); and JAX's own caches keep the structure of every
jit result they see (thousands of them, for the life of the process), so a result's
structure must not hold anything heavy (a ``vjp_fn``'s linearized program): it stays on our
side, in a :class:`Structures` store that lives with the cache entry, and only its number
crosses. A plain result (tuples and lists of arrays) needs none of this and crosses as it
is. ``encode`` runs inside the traced program, ``decode`` on its result.
"""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp


class OrderedNode(dict):
    """A dict that keeps insertion order when flattened, made by :func:`freeze_order` inside
    compiled calls. Its structure unflattens to a plain dict, in that order: ``decode``
    gives the user's dicts back in one pass."""


def _as_dict(keys: tuple[Any, ...], values: Any) -> Any:
    return dict(zip(keys, values))


jax.tree_util.register_pytree_node(
    OrderedNode, lambda d: (list(d.values()), tuple(d.keys())), _as_dict
)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _contains_dict(tree: Any) -> bool:
    if isinstance(tree, dict):
        return True
    if isinstance(tree, (tuple, list)):
        return any(_contains_dict(c) for c in tree)
    return False


def freeze_order(tree: Any) -> Any:
    """Replace plain dicts by ``OrderedNode`` so a jit boundary keeps their key order."""
    if type(tree) is dict:
        return OrderedNode((k, freeze_order(v)) for k, v in tree.items())
    return _rebuild(tree, freeze_order)


def _rebuild(tree: Any, child: Any) -> Any:
    """``tree`` rebuilt with ``child`` applied to each child of its built-in containers."""
    if _is_namedtuple(tree):
        return type(tree)(*(child(v) for v in tree))
    if type(tree) in (tuple, list):
        return type(tree)(child(v) for v in tree)
    if isinstance(tree, dict):
        items = [(k, child(v)) for k, v in tree.items()]
        if type(tree) is collections.defaultdict:
            return collections.defaultdict(tree.default_factory, items)  # type: ignore[attr-defined]
        return type(tree)(items)
    return tree


def _as_jax(x: Any) -> Any:
    """What jit would have returned for argument ``x``: a jax array (numpy and Python
    scalars converted as jit converts them)."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


class Structures(list):
    """The result structures of one compiled program's traces, numbered (a list: looked up
    in C on every call)."""

    __slots__ = ()

    def add(self, treedef: Any) -> int:
        for i, known in enumerate(self):
            if known == treedef:
                return i
        self.append(treedef)
        return len(self) - 1


def _plain(out: Any, arrays: Any) -> bool:
    """Does ``out`` cross a jit boundary unchanged? Tuples and lists of arrays, none of them
    one of the call's own arguments: their structure is light for JAX's caches to keep, and
    jit gives it back as it was."""
    inputs = None
    stack = [out]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is tuple or t is list:
            stack.extend(x)
        elif isinstance(x, jax.Array):
            if inputs is None:
                inputs = {id(a) for a in jax.tree_util.tree_leaves(arrays)}
            if id(x) in inputs:
                return False
        elif x is not None:
            return False
    return True


def encode(out: Any, arrays: Any, structures: Structures) -> Any:
    """Inside the traced program: a plain result as it is; any other as ``{code: leaves}``
    (a one-key dict, which jit rebuilds without calling back into Python), its dicts frozen
    in order, the leaves that are the call's own arguments left out. ``structures`` keeps
    ``(treedef, slots)``: ``slots`` gives, per leaf, the index of the argument leaf it is
    (-1: a leaf that crosses), or is None when no leaf is an argument. ``code`` is the
    structure's number."""
    if _plain(out, arrays):
        return out
    if _contains_dict(out):
        out = freeze_order(out)
    leaves, treedef = jax.tree_util.tree_flatten(out)
    index = {id(a): i for i, a in enumerate(jax.tree_util.tree_leaves(arrays))}
    slots: tuple[int, ...] | None = tuple(index.get(id(leaf), -1) for leaf in leaves)
    if max(slots, default=-1) < 0:  # type: ignore[arg-type]
        slots = None
    else:
        leaves = [leaf for leaf, i in zip(leaves, slots) if i < 0]  # type: ignore[arg-type]
    return {structures.add((treedef, slots)): leaves}


def decode(result: Any, arrays: Any, structures: Structures) -> Any:
    """On the compiled program's result: its structure back (dicts in their order), the
    argument leaves back from ``arrays``."""
    if type(result) is not dict:
        return result  # (a plain result: no dict in it)
    ((code, leaves),) = result.items()
    treedef, slots = structures[code]
    if slots is not None:
        args = jax.tree_util.tree_leaves(arrays)
        crossed = iter(leaves)
        leaves = [next(crossed) if i < 0 else _as_jax(args[i]) for i in slots]
    return treedef.unflatten(leaves)
