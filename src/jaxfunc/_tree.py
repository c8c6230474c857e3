"""Pytrees the way torch sees them, built on ``jax.tree_util``.

Two differences from JAX's defaults matter for fidelity: torch treats ``None`` as a leaf
(so ``f`` returning ``None`` is an error, not an empty output), and torch keeps a dict's
keys in insertion order where JAX sorts them. Structure strings in error messages mimic
torch's ``TreeSpec`` and ``treespec_pprint`` output.
"""

from __future__ import annotations

import collections
import collections.abc
from typing import Any

import jax

from . import _compat, _jit

_NOT_ITERATORS = frozenset({_compat.ArrayImpl, dict, tuple, list})


def _is_leaf(x: Any) -> bool:
    """torch's leaves JAX would not take as leaves: ``None``, and iterators (generators,
    ``map`` objects), which JAX is deprecating as leaves and which must not be consumed."""
    if type(x) in _NOT_ITERATORS:  # (JAX asks for every node: the common ones in one look)
        return False
    return x is None or isinstance(x, collections.abc.Iterator)


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """Leaves and treedef, with ``None`` and iterators as leaves (torch's rule)."""
    return jax.tree_util.tree_flatten(tree, is_leaf=_is_leaf)


def leaves(tree: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(tree, is_leaf=_is_leaf)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _plain_dict(x: Any) -> bool:
    return type(x) is dict or type(x) is collections.defaultdict


def _dict_orders(tree: Any) -> tuple[tuple[Any, ...], ...] | None:
    """Key order of every plain dict, in JAX's traversal order; None when JAX's sort is right.
    (One walk: each dict's keys sorted once.)"""
    orders: list[tuple[Any, ...]] = []
    unsorted = False
    stack = [tree]
    while stack:
        x = stack.pop()
        t = type(x)
        if t is dict or t is collections.defaultdict:
            keys = tuple(x)
            ordered = sorted(keys)
            unsorted = unsorted or list(keys) != ordered
            orders.append(keys)
            stack.extend([x[k] for k in reversed(ordered)])
        elif isinstance(x, (tuple, list)):
            stack.extend(x[::-1])
        elif isinstance(x, collections.OrderedDict):
            stack.extend(list(x.values())[::-1])
    return tuple(orders) if unsorted else None


class _Hole:
    """Where leaf ``i`` goes, in a skeleton of a structure."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _fill(skeleton: Any, orders: tuple[tuple[Any, ...], ...], leaves: Any) -> Any:
    """Rebuild ``skeleton`` with its dicts in ``orders`` and its holes filled by ``leaves``
    (which may be trees themselves: the walk never looks inside them)."""
    it = iter(orders)

    def walk(x: Any) -> Any:
        if type(x) is _Hole:
            return leaves[x.i]
        if _plain_dict(x):
            keys = next(it)
            rebuilt = {k: walk(x[k]) for k in sorted(x)}
            items = [(k, rebuilt[k]) for k in keys]
            if type(x) is dict:
                return dict(items)
            return collections.defaultdict(x.default_factory, items)  # type: ignore[attr-defined]
        if _is_namedtuple(x):
            return type(x)(*(walk(c) for c in x))
        if isinstance(x, (tuple, list)):
            return type(x)(walk(c) for c in x)
        if isinstance(x, collections.OrderedDict):
            return type(x)((k, walk(v)) for k, v in x.items())
        return jax.tree_util.tree_map(  # a custom pytree node: JAX rebuilds it
            lambda h: leaves[h.i], x, is_leaf=lambda y: type(y) is _Hole
        )

    return walk(skeleton)


class Structure:
    """A pytree structure that also remembers dict key order (hashable, comparable)."""

    __slots__ = ("_hash", "orders", "treedef")
    jaxfunc_static = True  # keys a compile (see _jit._keys.typed_key)

    def __init__(self, treedef: Any, orders: tuple[tuple[Any, ...], ...] | None) -> None:
        self.treedef = treedef
        self.orders = orders
        self._hash: int | None = None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Structure)
            and self.treedef == other.treedef
            and self.orders == other.orders
        )

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self.treedef, self.orders))
        return self._hash

    @property
    def num_leaves(self) -> int:
        return self.treedef.num_leaves

    def unflatten(self, new_leaves: Any) -> Any:
        if self.orders is None:
            return jax.tree_util.tree_unflatten(self.treedef, new_leaves)
        holes = [_Hole(i) for i in range(self.treedef.num_leaves)]
        skeleton = jax.tree_util.tree_unflatten(self.treedef, holes)
        return _fill(skeleton, self.orders, list(new_leaves))

    def pprint(self) -> str:
        """torch's ``treespec_pprint`` text for this structure."""
        return treespec_pprint(self.unflatten([_Star()] * self.num_leaves))


class _Star:
    pass


def matches(given: Structure, expected: Structure) -> bool:
    """Do two structures match the way torch compares them (dict key order included)?

    Inside a JAX trace that is not the compile cache's own (a user's ``jax.jit`` or
    ``jax.vmap``), JAX has handed every dict argument in sorted key order whatever order the
    user built it in, so there two dicts with the same keys match in any order: the leaves
    pair up by key."""
    if given == expected:
        return True
    if given.treedef != expected.treedef or _compat.at_top_level():
        return False
    return not _jit.tracing()


def flatten_structure(tree: Any) -> tuple[list[Any], Structure]:
    """Leaves (``None`` is a leaf) and a :class:`Structure` that rebuilds ``tree`` exactly."""
    if type(tree) is _compat.ArrayImpl:
        return [tree], LEAF
    flat, treedef = flatten(tree)
    return flat, Structure(treedef, _dict_orders(tree))


#: The structure of a single array (shared, so it can be recognised by identity).
LEAF = Structure(jax.tree_util.tree_structure(0), None)


# -- torch's structure strings --------------------------------------------------------------


def _spec_children(x: Any) -> tuple[str, Any, list[Any]] | None:
    if _is_namedtuple(x):
        return type(x).__name__, None, list(x)
    if type(x) is tuple:
        return "tuple", None, list(x)
    if type(x) is list:
        return "list", None, list(x)
    if isinstance(x, collections.OrderedDict):
        return "OrderedDict", list(x.keys()), list(x.values())
    if isinstance(x, collections.defaultdict):
        return "defaultdict", list(x.keys()), list(x.values())
    if isinstance(x, dict):
        return "dict", list(x.keys()), list(x.values())
    return None


def treespec_repr(x: Any, indent: int = 0) -> str:
    """The text torch prints for ``tree_flatten(x)[1]``, e.g. ``TreeSpec(tuple, None, [*])``."""
    node = _spec_children(x)
    if node is None:
        return "*"
    name, context, children = node
    inner_indent = indent + 2
    parts = [treespec_repr(c, inner_indent) for c in children]
    sep = ",\n" + " " * inner_indent
    return f"TreeSpec({name}, {context!r}, [{sep.join(parts)}])"


def treespec_pprint(x: Any) -> str:
    """The text torch's ``treespec_pprint`` prints, e.g. ``(*, *)`` or ``{'a': *}``."""
    node = _spec_children(x)
    if node is None:
        return "*"
    name, context, children = node
    parts = [treespec_pprint(c) for c in children]
    if name == "tuple":
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if name == "list":
        return "[" + ", ".join(parts) + "]"
    if name == "dict":
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(context, parts)) + "}"
    if name in ("OrderedDict", "defaultdict"):
        return f"{name}([" + ", ".join(f"({k!r}, {p})" for k, p in zip(context, parts)) + "])"
    return f"{name}(" + ", ".join(parts) + ")"
