"""Rebinding: a user's callable rebuilt so that each hoisted place reads a new value.

At trace time the cache passes tracers for the hoisted values; the callable is rebuilt with
copies of its functions (new globals, closure cells and attributes) and copies of the
objects and containers on the way to each hoisted place, so the user's own objects are
never touched. No user code runs while rebuilding: tuples are made with ``tuple.__new__``
(a NamedTuple's own ``__new__`` may convert its input), objects with ``object.__new__`` and
their ``__dict__``/slots copied over (never ``copy.copy``: ``__copy__``/``__reduce__`` are
the user's, and may return the object itself); the guard only plans such copies for classes
without ``__del__`` (a copy's would run when it dies).
"""

from __future__ import annotations

import functools
import types
from collections import OrderedDict, defaultdict
from typing import Any

_LEAF = object()


def rebind(
    root: Any,
    root_kind: str,
    fns: list[types.FunctionType],
    replaces: list[Any],
    paths: list,
    values: tuple[Any, ...],
) -> Any:
    """``root`` with the place ``paths[i]`` holding ``values[i]``. ``fns`` are the
    rebindable functions the guard found, in its order (``fns[0]`` is the root's code);
    ``replaces[i]`` is the object that ``fns[i]``'s copy stands in for, wherever a global
    or closure cell of a copy holds it (the function itself, or the ``jax.jit`` around it)."""
    copies = _copy_functions(fns, replaces)
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
        elif kind == "fattr":
            copies[i].__dict__[key] = _rebuild(fns[i].__dict__[key], trie)
        else:
            defaults = list(copies[i].__defaults__ or ())
            defaults[key] = _rebuild((fns[i].__defaults__ or ())[key], trie)
            copies[i].__defaults__ = tuple(defaults)
    top = copies[0]
    if root_kind == "function":
        return top
    if root_kind == "method":
        return types.MethodType(top, self_obj)
    if root_kind == "object":
        return functools.partial(top, self_obj)
    return root  # pragma: no cover - opaque roots hoist nothing


def _rebuild(obj: Any, trie: dict[Any, Any]) -> Any:
    """A copy of ``obj`` with the hoisted places in ``trie`` replaced (copies on the way
    down, made without calling the object's own code; the original is untouched)."""
    if _LEAF in trie:
        return trie[_LEAF]
    t = type(obj)
    if isinstance(obj, (tuple, list)):
        items = [
            _rebuild(x, trie[("item", i)]) if ("item", i) in trie else x for i, x in enumerate(obj)
        ]
        if t is list:
            return items
        if t is tuple:
            return tuple(items)
        new = tuple.__new__(t, items)  # a NamedTuple's __new__ is not called again
        _copy_state(obj, new)
        return new
    if isinstance(obj, dict):
        if t is OrderedDict:
            new = OrderedDict(obj)
        elif t is defaultdict:
            new = defaultdict(obj.default_factory, obj)  # type: ignore[attr-defined]
        else:
            new = dict(obj)
        for (_, k), sub in trie.items():
            new[k] = _rebuild(dict.__getitem__(obj, k), sub)
        return new
    if isinstance(obj, types.ModuleType):
        new = types.ModuleType(obj.__name__)
        new.__dict__.update(obj.__dict__)
        for (_, name), sub in trie.items():
            new.__dict__[name] = _rebuild(obj.__dict__[name], sub)
        return new
    new = object.__new__(t)
    _copy_state(obj, new)
    own = _dict_of(new)
    for (_, name), sub in trie.items():
        if own is not None and name in own:
            own[name] = _rebuild(own[name], sub)
        else:  # a slot
            object.__setattr__(new, name, _rebuild(object.__getattribute__(obj, name), sub))
    return new


def _dict_of(obj: Any) -> dict[str, Any] | None:
    try:
        return object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None


def _copy_state(src: Any, dst: Any) -> None:
    """``src``'s ``__dict__`` and slots onto ``dst``, bypassing the class's hooks."""
    d = _dict_of(src)
    if d is not None:
        _dict_of(dst).update(d)  # type: ignore[union-attr]
    for c in type(src).__mro__:
        slots = c.__dict__.get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                value = object.__getattribute__(src, name)
            except AttributeError:
                continue
            object.__setattr__(dst, name, value)


def snapshot(root: Any, root_kind: str, fns: list[types.FunctionType], replaces: list[Any]) -> Any:
    """``root`` with copies of ``fns`` (their globals dicts copied at once, their cells and
    defaults as they are now) standing in for the plain functions among them; wrapped
    helpers (a ``jax.jit``) are left as they are."""
    stand_ins = [r if r is f else object() for f, r in zip(fns, replaces)]
    top = _copy_functions(fns, stand_ins)[0]
    return top if root_kind == "function" else types.MethodType(top, root.__self__)


def _copy_functions(fns: list[types.FunctionType], replaces: list[Any]) -> list[types.FunctionType]:
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
    replace = {id(r): c for r, c in zip(replaces, copies)}
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
