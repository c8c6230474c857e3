"""The jit boundary codec: what a compiled program's result loses crossing ``jax.jit``, and
how it is put back.

Two things: ``jax.jit`` rebuilds a returned dict with its keys sorted (the user's insertion
order is kept by :class:`OrderedNode` across the boundary), and it copies every returned
leaf that is one of its own arguments (such leaves are left out of the result and taken
from the call's arrays after it: :class:`WithoutInputs`). ``encode`` runs inside the traced
program, ``decode`` on its result.
"""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp


class OrderedNode(dict):
    """A dict that keeps insertion order when flattened; lives only inside compiled calls."""


jax.tree_util.register_pytree_node(
    OrderedNode,
    lambda d: (list(d.values()), tuple(d.keys())),
    lambda keys, values: OrderedNode(zip(keys, values)),
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


def thaw_order(tree: Any) -> Any:
    """Undo :func:`freeze_order`."""
    if type(tree) is OrderedNode:
        return {k: thaw_order(v) for k, v in tree.items()}
    return _rebuild(tree, thaw_order)


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


class WithoutInputs:
    """A compiled program's result less the leaves that are its own array arguments (a
    ``vjp_fn``'s residuals, an identity output): ``jax.jit`` would copy each one it returns.
    ``slots``: per leaf of the result, the index of the argument leaf it is, or -1. A pytree
    whose structure is static, so every trace of a jit keeps its own."""

    __slots__ = ("kept", "slots", "treedef")

    def __init__(self, kept: tuple[Any, ...], treedef: Any, slots: tuple[int, ...]) -> None:
        self.kept, self.treedef, self.slots = kept, treedef, slots

    @classmethod
    def strip(cls, out: Any, arrays: Any) -> Any:
        leaves, treedef = jax.tree_util.tree_flatten(out)
        index = {id(a): i for i, a in enumerate(jax.tree_util.tree_leaves(arrays))}
        slots = tuple(index.get(id(leaf), -1) for leaf in leaves)
        if max(slots, default=-1) < 0:
            return out
        return cls(tuple(x for x, i in zip(leaves, slots) if i < 0), treedef, slots)

    def rebuild(self, arrays: Any) -> Any:
        """The whole result, the stripped leaves taken from the call's own ``arrays``."""
        args = jax.tree_util.tree_leaves(arrays)
        kept = iter(self.kept)
        return self.treedef.unflatten(
            [next(kept) if i < 0 else _as_jax(args[i]) for i in self.slots]
        )


def _as_jax(x: Any) -> Any:
    """What jit would have returned for argument ``x``: a jax array (numpy and Python
    scalars converted as jit converts them)."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


jax.tree_util.register_pytree_node(
    WithoutInputs,
    lambda w: (w.kept, (w.treedef, w.slots)),
    lambda aux, kept: WithoutInputs(tuple(kept), *aux),
)


class Encoded:
    """A result as it crosses the boundary, and what the other side must undo."""

    __slots__ = ("ordered", "value")

    def __init__(self, value: Any, ordered: bool) -> None:
        self.value, self.ordered = value, ordered


jax.tree_util.register_pytree_node(
    Encoded,
    lambda e: ((e.value,), e.ordered),
    lambda ordered, children: Encoded(children[0], ordered),
)


def encode(out: Any, arrays: Any) -> Encoded:
    """Inside the traced program: dicts frozen in order, argument leaves stripped."""
    ordered = _contains_dict(out)
    if ordered:
        out = freeze_order(out)
    return Encoded(WithoutInputs.strip(out, arrays), ordered)


def decode(result: Encoded, arrays: Any) -> Any:
    """On the compiled program's result: stripped leaves back from ``arrays``, dicts thawed."""
    out = result.value
    if type(out) is WithoutInputs:
        out = out.rebuild(arrays)
    return thaw_order(out) if result.ordered else out
