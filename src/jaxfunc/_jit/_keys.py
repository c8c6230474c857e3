"""What keys a compiled program: typed, frozen values.

Python's ``==`` says ``0 == 0.0 == False``; a compile key must not, or a program compiled
for a valid option is reused for an invalid one and the check that would have raised never
runs. :func:`typed_key` turns a value into something whose equality is equality of type and
value; :class:`Static` is the base of every frozen dataclass the cache keys on (each
transform's program and the description of how a wrapper was made), comparing by typed
field values.
"""

from __future__ import annotations

import dataclasses
import operator
import types
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import numpy as np

from . import _guard


class _Unkeyable:
    """Stands in a key for a value no compile can be keyed on (a mutable object, whose later
    changes no key could see): hashing it raises TypeError, and the cache runs that call
    uncompiled."""

    __slots__ = ()

    def __hash__(self) -> int:
        raise TypeError("not a value a compiled program can be keyed on")

    def __repr__(self) -> str:
        return "<unkeyable>"


UNKEYABLE = _Unkeyable()
_SCALARS = (type(None), bool, int, str, bytes)


def typed_key(x: Any) -> Any:
    """A hashable stand-in for ``x`` that is equal only for the same type and value:
    ``True``, ``1`` and ``1.0`` differ, and so do ``0.0`` and ``-0.0``. Tuples, lists and
    dicts are keyed item by item; :class:`Static` values and other hashable jaxfunc values
    (structures) key themselves; anything else is :data:`UNKEYABLE`."""
    if x is None or x is True or x is False:
        return x  # (singletons: equal only to themselves)
    t = type(x)
    if t in _SCALARS:
        return (t, x)
    if t is float:
        return (t, x.hex())
    if t is complex:
        return (t, x.real.hex(), x.imag.hex())
    if isinstance(x, (tuple, list)):
        return (t, tuple(typed_key(i) for i in x))
    if t is dict:
        return (t, tuple((typed_key(k), typed_key(v)) for k, v in x.items()))
    if isinstance(x, Static):
        return x.typed()
    if getattr(t, "jaxfunc_static", False):
        return x
    if isinstance(x, np.generic) and not isinstance(x, np.object_):
        return (t, x.tobytes())
    if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
        return (t, str(x))
    if isinstance(x, _LIBRARY_CALLABLES) and _guard.is_library(x):
        # fixed library code (an Equinox module's activation, jax.nn.relu): by identity, as
        # the guard checks it, so a module passed as an argument compiles
        return (t, x)
    return UNKEYABLE


_LIBRARY_CALLABLES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    np.ufunc,
    type(jax.jit(lambda: None)),
    jax.custom_jvp,
    jax.custom_vjp,
)


def _key_or_self(v: Any) -> Any:
    # (None/True/False are their own keys, and a Static's key is cached: the common field
    # values, without the walk down typed_key's cases)
    if v is None or v is True or v is False:
        return v
    return v.typed() if isinstance(v, Static) else typed_key(v)


class Static:
    """Base of the frozen dataclasses that key compiles. Subclasses are declared with
    ``@dataclasses.dataclass(frozen=True, eq=False)`` and compare by the typed keys of
    their fields, in declaration order."""

    __slots__ = ()

    def typed(self) -> tuple[Any, ...]:
        """The typed key of this value: a plain tuple (hashed and compared in C), computed
        once (the instance is frozen). The cache keys its dicts on it."""
        d = self.__dict__
        found = d.get("_typed")
        if found is None:
            cls = type(self)
            found = (cls, *[_key_or_self(v) for v in _getter(cls)(self)])
            d["_typed"] = found  # (the instance's own dict: frozen blocks only setattr)
        return found

    #: ``Cls.of(**fields)``: ``Cls(**fields)``, shared (see :class:`_Of`).
    of: ClassVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.of = _Of()  # (each class its own: the first use puts the generated one there)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.typed() == other.typed()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.typed())

    def options(self) -> dict[str, Any]:
        """The fields by name (how a wrapper is rebuilt: never by position)."""
        return {n: getattr(self, n) for n in _field_names(type(self))}


class _Of:
    """``Cls.of(**fields)``: ``Cls(**fields)``, shared: one instance per distinct typed
    value, so that a call building the same program as before skips the frozen construction
    and the typed key, and the cache knows the program at a glance (by identity). A call
    passing the very objects of the class's last call gets its instance by identity checks
    alone (``0`` is not ``False`` there either). ``Cls(...)`` directly is equal, only
    slower.

    The function is generated per class on first use (the dataclass decorator has made the
    fields by then), with the fields as keyword-only parameters: no ``**kwargs`` dict, no
    loop, on every transform call. It then takes this descriptor's place in the class (each
    class has its own, from ``Static.__init_subclass__``): no descriptor call either."""

    def __get__(self, obj: Any, cls: type) -> Callable[..., Any]:
        made = _make_of(cls)
        if cls.__dict__.get("of") is self:
            cls.of = staticmethod(made)  # type: ignore[attr-defined]
        return made


def _make_of(cls: type) -> Callable[..., Any]:
    names = _field_names(cls)
    if not names or any(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
    ):
        return lambda **fields: _intern(cls, fields)[0]
    params = ", ".join(names)
    source = (  # (its own names start with "_": no field is called that)
        f"def of(*, {params}):\n"
        "    _last = _box[0]\n"
        f"    if {' and '.join(f'_last[{i}] is {n}' for i, n in enumerate(names))}:\n"
        f"        return _last[{len(names)}]\n"
        f"    _found, _shared = _intern(_cls, {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n"
        "    if _shared:  # (an unkeyable value is not held: it may be a big mutable object)\n"
        f"        _box[0] = ({params}, _found)\n"
        "    return _found\n"
    )
    namespace: dict[str, Any] = {"_box": [(_NEVER,) * len(names)], "_intern": _intern, "_cls": cls}
    exec(compile(source, f"<{cls.__qualname__}.of>", "exec"), namespace)
    return namespace["of"]


_NEVER = object()  # (no field value is this object: the first call misses)
#: Instances made by ``of``, by typed key (small, plain values: bounded by clearing, which
#: costs only a reconstruction).
_INTERNED: dict[tuple[Any, ...], Any] = {}
MAX_INTERNED = 4096


def _intern(cls: type, fields: dict[str, Any]) -> tuple[Any, bool]:
    """``(the shared instance, True)``, or ``(a new one, False)`` where there can be no
    shared one (a value no key can be made of)."""
    names = _field_names(cls)
    if len(fields) != len(names):  # (defaults left out: construct as usual)
        return cls(**fields), False
    try:
        key = (cls, *[_key_or_self(fields[n]) for n in names])
        found = _INTERNED.get(key)
    except (KeyError, TypeError):  # a wrong name; an unkeyable value
        return cls(**fields), False
    if found is None:
        found = cls(**fields)
        found.__dict__["_typed"] = key
        if len(_INTERNED) >= MAX_INTERNED:
            _INTERNED.clear()
        _INTERNED[key] = found
    return found, True


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return names


def _getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """The class's field values as a tuple, read in C."""
    get = _GETTERS.get(cls)
    if get is None:
        names = _field_names(cls)
        if len(names) == 1:
            one = operator.attrgetter(names[0])
            get = lambda obj: (one(obj),)
        else:
            get = operator.attrgetter(*names)
        _GETTERS[cls] = get
    return get


class Program(Static):
    """The whole JAX mapping of one transform for one kind of call: ``program(func,
    arrays)`` runs it. Its fields are everything the call contributed that is not an array
    (options, argument structure, non-array arguments); the cache compiles one program per
    distinct value."""

    __slots__ = ()

    def __call__(self, func: Any, arrays: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Transform(Static):
    """How a jaxfunc wrapper (``grad(f)``, ``vmap(f, ...)``) was made: its options by name.
    ``make`` is the public function; ``wrap(func)`` makes the same wrapper around ``func``,
    passing every option by keyword."""

    __slots__ = ()
    make: ClassVar[Any]

    def wrap(self, func: Any) -> Any:
        return type(self).make(func, **self.options())


Static.of = _Of()
