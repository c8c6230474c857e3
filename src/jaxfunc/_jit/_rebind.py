"""Rebinding: a user's callable rebuilt so that each hoisted place reads a new value.

At trace time the cache passes tracers for the hoisted arrays; the callable is rebuilt with
copies of its functions (new globals and closure cells) and shallow copies of the objects
and containers on the way to each hoisted place, so the user's own objects are never
touched.
"""

from __future__ import annotations

import copy
import functools
import types
from typing import Any


def rebind(
    root: Any, root_kind: str, fns: list[types.FunctionType], paths: list, values: tuple[Any, ...]
) -> Any:
    """``root`` with the place ``paths[i]`` holding ``values[i]``; ``fns`` are the rebindable
    functions the guard found, in its order (``fns[0]`` is the root's code)."""
    copies = _copy_functions(fns)
    tries: dict[tuple[Any, ...], dict[Any, Any]] = {}
    for (anchor, steps), val in zip(paths, values):
        node = tries.setdefault(anchor, {})
        for step in steps:
            node = node.setdefault(step, {})
        node[_LEAF] = val
    self_obj = root.__self__ if root_kind == "method" else root
    for anchor, trie in tries.items():
        kind = anchor[0]
        if kind == "self":
            self_obj = _rebuild(self_obj, trie)
            continue
        i, key = anchor[1], anchor[2]
        if kind == "global":
            copies[i].__globals__[key] = _rebuild(fns[i].__globals__[key], trie)
        elif kind == "cell":
            original = fns[i].__closure__[key].cell_contents  # type: ignore[index]
            copies[i].__closure__[key].cell_contents = _rebuild(original, trie)  # type: ignore[index]
        else:
            defaults = list(copies[i].__defaults__ or ())
            defaults[key] = _rebuild(defaults[key], trie)
            copies[i].__defaults__ = tuple(defaults)
    top = copies[0]
    if root_kind == "function":
        return top
    if root_kind == "method":
        return types.MethodType(top, self_obj)
    if root_kind == "object":
        return functools.partial(top, self_obj)
    return root  # pragma: no cover - opaque roots hoist nothing


_LEAF = object()


def _rebuild(obj: Any, trie: dict[Any, Any]) -> Any:
    """A copy of ``obj`` with the hoisted places in ``trie`` replaced (shallow copies on the
    way down; the original is untouched)."""
    if _LEAF in trie:
        return trie[_LEAF]
    if isinstance(obj, tuple):
        items = [
            _rebuild(x, trie[("item", i)]) if ("item", i) in trie else x for i, x in enumerate(obj)
        ]
        return type(obj)(*items) if hasattr(type(obj), "_fields") else type(obj)(items)
    if isinstance(obj, list):
        return [
            _rebuild(x, trie[("item", i)]) if ("item", i) in trie else x for i, x in enumerate(obj)
        ]
    if isinstance(obj, dict):
        new = copy.copy(obj)
        for (_, k), sub in trie.items():
            new[k] = _rebuild(obj[k], sub)
        return new
    new = copy.copy(obj)
    for (_, name), sub in trie.items():
        object.__setattr__(new, name, _rebuild(getattr(obj, name), sub))
    return new


def _copy_functions(fns: list[types.FunctionType]) -> list[types.FunctionType]:
    """Copies of ``fns`` that refer to each other's copies (globals and closure cells)."""
    new_globals: dict[int, dict[str, Any]] = {}
    for f in fns:
        if id(f.__globals__) not in new_globals:
            new_globals[id(f.__globals__)] = dict(f.__globals__)
    copies = []
    for f in fns:
        cells = None
        if f.__closure__ is not None:
            cells = tuple(types.CellType() for _ in f.__closure__)
        c = types.FunctionType(
            f.__code__, new_globals[id(f.__globals__)], f.__name__, f.__defaults__, cells
        )
        c.__kwdefaults__ = f.__kwdefaults__
        c.__qualname__ = f.__qualname__
        c.__dict__.update(f.__dict__)
        copies.append(c)
    replace = {id(f): c for f, c in zip(fns, copies)}
    for f, c in zip(fns, copies):
        for old, new in zip(f.__closure__ or (), c.__closure__ or ()):
            try:
                content = old.cell_contents
            except ValueError:
                continue
            new.cell_contents = replace.get(id(content), content)
    for g in new_globals.values():
        for name, value in list(g.items()):
            if id(value) in replace:
                g[name] = replace[id(value)]
    return copies
