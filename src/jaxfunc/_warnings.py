"""Warnings for torch habits that give silently wrong or slow results under JAX.

Each is said once per function, with a category of jaxfunc's own so that one
``warnings.filterwarnings("ignore", category=...)`` silences it:

- :class:`TorchGradModeWarning`: ``torch.no_grad`` & co. inside a transformed function do
  nothing to JAX (``jaxfunc.no_grad`` does what they do in torch);
- :class:`BakedRandomnessWarning`: numpy's or Python's global RNG inside a transformed
  function: the compiled program keeps the numbers drawn while tracing;
- :class:`EagerFallbackWarning`: the function needs concrete values, so the compile cache
  runs it uncompiled from then on;
- :class:`Float64Warning`: float64 numpy input while JAX's x64 mode is off (it becomes
  float32).

The first two come from reading the function's code (the globals it loads) and what its globals,
closure cells and defaults lead to, user helpers included; they say what the code names,
not what a run executes. The cache calls :func:`check_call` at every call (a dict lookup
once a function is known) and :func:`eager_fallback` when it gives up compiling.
"""

from __future__ import annotations

import contextlib
import dis
import functools
import linecache
import os
import sys
import traceback
import types
import warnings
from typing import Any

import numpy as np

from . import _jit


class JaxfuncWarning(UserWarning):
    """Base class of jaxfunc's warnings: ``filterwarnings("ignore", category=JaxfuncWarning)``
    silences them all."""


class TorchGradModeWarning(JaxfuncWarning):
    """A transformed function refers to torch's grad mode (``torch.no_grad`` ...), which JAX
    never sees: gradients flow through the block. Use ``jaxfunc.no_grad()``."""


class BakedRandomnessWarning(JaxfuncWarning):
    """A transformed function draws from numpy's or Python's global RNG: a compiled program
    replays the numbers drawn while it was traced. Use ``jax.random`` with a key argument."""


class EagerFallbackWarning(JaxfuncWarning):
    """The compile cache runs a function uncompiled (eagerly) from now on, because tracing
    it needed a concrete value (Python control flow on an array, ``float(x)``...)."""


class Float64Warning(JaxfuncWarning):
    """float64 input while JAX's x64 mode is off: JAX computes it in float32."""


_GRAD_MODE_NAMES = ("no_grad", "enable_grad", "set_grad_enabled", "inference_mode")
_MAX_FUNCTIONS = 256  # functions read per analysis: a bound, not a guarantee
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


class _Verdict:
    """What reading a function's code found (computed once per function)."""

    __slots__ = ("clean", "grad_mode", "random", "warned")

    def __init__(self, grad_mode: str | None, random: str | None) -> None:
        self.grad_mode = grad_mode
        self.random = random
        self.clean = grad_mode is None and random is None
        self.warned: set[type] = set()


_verdicts = _jit.WeakIdTable()  # callable -> _Verdict, held weakly


def _key_of(func: Any) -> Any:
    """What a verdict is held for: a bound method's function (a new method object is made
    at every attribute access), jaxfunc's own wrappers' innermost user function."""
    return _held_as(_jit.unwrap(func)[0])


def _held_as(base: Any) -> Any:
    return base.__func__ if type(base) is types.MethodType else base


def _verdict(func: Any) -> _Verdict:
    found = _verdicts.get(func)
    if found is not None:
        return found
    base = _jit.unwrap(func)[0]
    key = _held_as(base)
    verdict = _verdicts.get(key)
    if verdict is None:  # (a bound method is read with its instance: ``self.helper``)
        verdict = _Verdict(*_Reader().read(base))
        _hold(key, verdict)
    if func is not key and type(func) is not types.MethodType:
        _hold(func, verdict)  # a jaxfunc wrapper: found directly next time
    return verdict


def _hold(obj: Any, verdict: _Verdict) -> None:
    with contextlib.suppress(TypeError):  # not weak-referenceable: read again next time
        _verdicts.setdefault(obj, lambda: verdict)


# -- the hooks the compile cache calls ----------------------------------------------------------

#: numpy float64 arrays that ``_checks.to_array`` turned into float32 (x64 off) since the
#: last call was checked; the next :func:`check_call` reports them.
pending_float64: list[Any] = _jit.pending()


def check_call(func: Any) -> None:
    """The compile cache's ``on_call`` (run before every call but an inline hit, which
    comes only after it has run for the function and while nothing is pending): warn once
    per function about its torch grad-mode and global-RNG references and its float64
    inputs."""
    verdict = _verdicts.get(func)
    if verdict is None:
        verdict = _verdict(func)
    elif verdict.clean and not pending_float64:
        return
    if pending_float64:
        dtype = pending_float64[0]
        pending_float64.clear()
        _once(
            verdict,
            Float64Warning,
            f"jaxfunc: a {dtype} numpy input to {_name(func)} was converted to "
            f"{_narrow(dtype)}: JAX's x64 mode is off, so JAX computes in 32 bits where "
            "torch keeps 64 (results differ around 1e-7 relative). Turn x64 on at startup "
            "with jax.config.update('jax_enable_x64', True), or pass float32 arrays.",
            func,
        )
    if verdict.grad_mode is not None:
        _once(
            verdict,
            TorchGradModeWarning,
            f"jaxfunc: {_name(func)} uses {verdict.grad_mode}, which JAX never sees: "
            "gradients flow through that block as if it were not there. Use "
            "jaxfunc.no_grad() (and jaxfunc.enable_grad()) inside functions jaxfunc "
            "transforms: they do what torch's do.",
            func,
        )
    if verdict.random is not None:
        if _inside_random_error_mode(func):  # torch raises there (``grad(vmap(f))``)
            random_error(func)
        _once(
            verdict,
            BakedRandomnessWarning,
            f"jaxfunc: {_name(func)} draws random numbers from {verdict.random}: once "
            "compiled (from the second call on) it replays the numbers drawn while it was "
            "traced, the same at every call (and, under vmap, for every element). Pass a "
            "jax.random key as an argument and draw with jax.random instead.",
            func,
        )


def _inside_random_error_mode(func: Any) -> bool:
    """Is ``func`` a jaxfunc wrapper (of wrappers) with ``randomness="error"`` among them
    (``vmap``, ``jacfwd``, ``hessian``)?"""
    return any(getattr(t, "randomness", None) == "error" for t in _jit.unwrap(func)[1])


def random_error(func: Any) -> None:
    """``randomness='error'`` (vmap, jacfwd): torch's error for a function that draws from
    numpy's or Python's global RNG (the one hidden RNG state a jnp function can reach; its
    numbers would be the same for every element of the batch)."""
    if _verdict(func).random is not None:
        raise RuntimeError(
            "vmap: called random operation while in randomness error mode. Please either use "
            "the 'same' or 'different' randomness flags on vmap or perform the randomness "
            f"operation out of vmap (jaxfunc: {_name(func)} draws from "
            f"{_verdict(func).random}; with jax.random and a key argument, batching the key "
            "gives different numbers per element and not batching it the same)"
        )


def gave_up(func: Any, reason: str, error: BaseException | None) -> None:
    """The compile cache's ``on_give_up``: say once per function why it runs uncompiled."""
    if error is not None:
        eager_fallback(func, error)
        return
    _once(
        _verdict(func),
        EagerFallbackWarning,
        f"jaxfunc: {_name(func)} runs uncompiled (eagerly) for now, many times slower per "
        f"call: {reason}. jaxfunc.cache_info(f) shows what the cache did.",
        func,
    )


def eager_fallback(func: Any, error: BaseException) -> None:
    """The cache gave up compiling ``func``: say why (the user's line that needed a concrete
    value) and that it now runs uncompiled."""
    where = _user_line(error)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    _once(
        _verdict(func),
        EagerFallbackWarning,
        f"jaxfunc: {_name(func)} cannot be compiled and runs uncompiled (eagerly) from now "
        f"on, many times slower per call. Tracing it needed a concrete value{where}: "
        f"{type(error).__name__}: {reason} Replace Python control flow on array values by "
        "jnp.where / jax.lax.cond, and float(x) / x.item() by array operations.",
        func,
    )


# -- helpers -------------------------------------------------------------------------------------


#: code object -> categories already said for functions with that code: a closure made
#: afresh at every call is one function of the source, said once. By identity: code objects
#: compare equal across files (the same source at the same lines, e.g. one example in two
#: documents), and each must be told.
_said_for_code = _jit.WeakIdTable()


def _once(verdict: _Verdict, category: type[Warning], message: str, func: Any = None) -> None:
    if category in verdict.warned:
        return
    verdict.warned.add(category)
    code = getattr(_key_of(func), "__code__", None)
    if isinstance(code, types.CodeType):
        said = _said_for_code.setdefault(code, set)
        if category in said:
            return
        said.add(category)
    warnings.warn(message, category, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The stack level of the first frame outside jaxfunc (the user's call)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PKG_DIR):
        frame = frame.f_back
        level += 1
    return level


def _name(func: Any) -> str:
    func = _key_of(func)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return f"`{name}`" if name else repr(func)


def _narrow(dtype: Any) -> str:
    return {"float64": "float32", "complex128": "complex64"}.get(str(dtype), "32 bits")


_LIBRARY_DIRS = ("jax", "jaxlib", "numpy", "torch", "equinox", "flax")


def _user_line(error: BaseException) -> str:
    """`` at file:line: `source` ``: the innermost frame of the traceback in user code."""
    found = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        filename = frame.f_code.co_filename
        path = os.path.abspath(filename)
        parts = path.split(os.sep)
        if path.startswith(_PKG_DIR) or any(p in _LIBRARY_DIRS for p in parts[-4:-1]):
            continue
        if "site-packages" in parts or filename.startswith("<frozen"):
            continue
        found = (filename, lineno)
    if found is None:
        return ""
    filename, lineno = found
    source = linecache.getline(filename, lineno).strip()
    shown = f"`{source}`" if source else "(source unavailable)"
    return f" at {os.path.basename(filename)}:{lineno}: {shown}"


# -- reading the code -----------------------------------------------------------------------------


def _walk_code(code: types.CodeType) -> Any:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _walk_code(const)


def _root(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        name = getattr(obj, "__module__", None)
        if not isinstance(name, str):
            name = type(obj).__module__ or ""
    return name


class _Reader:
    """Reads a function's code, then what its globals, cells and defaults lead to."""

    def __init__(self) -> None:
        self.grad_mode: str | None = None
        self.random: str | None = None
        self.seen: set[int] = set()
        self.methods_read: dict[int, set[str]] = {}  # per class, by id
        self.functions = 0

    def read(self, func: Any) -> tuple[str | None, str | None]:
        with contextlib.suppress(Exception):  # best effort: a verdict never breaks a call
            self.callable(func)
        return self.grad_mode, self.random

    def callable(self, obj: Any, names: Any = frozenset()) -> None:
        """``names``: the attributes the code reads on ``obj`` (an instance of a user class:
        its methods read are those and what they name)."""
        if id(obj) in self.seen or self.functions > _MAX_FUNCTIONS:
            return
        self.seen.add(id(obj))
        if isinstance(obj, types.MethodType):
            fn = obj.__func__
            self.value(obj.__self__, frozenset({getattr(fn, "__name__", "")}))
            self.callable(fn)
        elif isinstance(obj, types.FunctionType):
            self.function(obj)
        elif hasattr(obj, "func") and hasattr(obj, "args") and hasattr(obj, "keywords"):
            self.callable(obj.func)  # functools.partial
            for a in (*obj.args, *obj.keywords.values()):
                self.value(a, ())
        elif not isinstance(obj, type) and _is_user(type(obj)):
            self.instance_class(type(obj), names)

    def function(self, fn: types.FunctionType) -> None:
        if not _is_user(fn):
            wrapped = getattr(fn, "__wrapped__", None)  # torch's decorate_context, functools
            for cell in fn.__closure__ or ():
                self.value(_contents(cell), frozenset())
            if wrapped is not None:
                self.callable(wrapped)
            return
        self.functions += 1
        chains, loaded = _attribute_chains(fn.__code__)
        g = fn.__globals__
        for name in loaded:
            if name in g:
                self.value(g[name], chains.get(name, frozenset()))
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        for name, cell in cells.items():
            self.value(_contents(cell), chains.get(name, frozenset()))
        for d in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            self.value(d, frozenset())
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            self.callable(wrapped)

    def value(self, obj: Any, names: Any) -> None:
        """Something the code can reach: torch's grad mode, a global RNG, or a user helper."""
        if obj is None or isinstance(obj, (int, float, str, bytes, np.ndarray)):
            return
        root = _root(obj)
        top = root.split(".", 1)[0]
        if top == "torch":
            self.torch_thing(obj, names)
            return
        if isinstance(obj, types.ModuleType):
            if obj.__name__ == "random" or obj.__name__.startswith("numpy.random"):
                self.random = self.random or obj.__name__
            elif obj.__name__ == "numpy" and "random" in names:
                self.random = self.random or "numpy.random"
            elif _is_user(obj):  # a user module: the attributes the code reads from it
                for attr in names:
                    self.value(getattr(obj, attr, None), frozenset())
            return
        if isinstance(obj, (np.random.Generator, np.random.RandomState)):
            self.random = self.random or f"a numpy {type(obj).__name__}"
            return
        if _is_python_random(obj):
            self.random = self.random or "Python's random module"
            return
        if isinstance(obj, types.BuiltinMethodType):
            owner = getattr(obj, "__self__", None)
            if isinstance(owner, (np.random.Generator, np.random.RandomState)):
                self.random = self.random or f"numpy.random.{obj.__name__}"
            elif _is_python_random(owner):
                self.random = self.random or f"random.{obj.__name__}"
            return
        if top in ("jax", "jaxlib", "jaxfunc", "numpy", "builtins", "equinox", "flax"):
            return
        if isinstance(obj, (types.FunctionType, types.MethodType)):
            self.callable(obj)
        elif isinstance(obj, type):
            if _is_user(obj):
                self.user_class(obj)
        elif isinstance(obj, (tuple, list)) and len(obj) <= 64:
            for item in obj:
                self.value(item, names)
        elif isinstance(obj, dict) and len(obj) <= 64:
            for item in obj.values():
                self.value(item, names)
        elif _is_user(type(obj)) or (hasattr(obj, "func") and hasattr(obj, "keywords")):
            self.callable(obj, names)

    def user_class(self, cls: type) -> None:
        """A class the code names (it may construct one): all its methods."""
        methods = _methods(cls)
        self.read_methods(cls, methods, list(methods))

    def instance_class(self, cls: type, names: Any) -> None:
        """The class of an instance the code reaches: the methods it names, the special
        methods that run without being named (``__call__``, operators) but not those that
        make an instance (it exists already), and what those name in turn (``self.helper``):
        a ``reset_parameters`` that draws from numpy's RNG is not a draw of ``forward``."""
        methods = _methods(cls)
        first = [
            k
            for k in methods
            if k in names or (k.startswith("__") and k.endswith("__") and k not in _MAKING)
        ]
        self.read_methods(cls, methods, first)

    def read_methods(self, cls: type, methods: dict[str, Any], todo: list[str]) -> None:
        done = self.methods_read.setdefault(id(cls), set())
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            fn = methods[name]
            self.callable(fn)
            todo.extend(n for n in _jit.code_names(fn.__code__) if n in methods)

    def torch_thing(self, obj: Any, names: Any) -> None:
        if isinstance(obj, types.MethodType):  # e.g. the factory torch's decorator holds
            obj = obj.__self__
        if isinstance(obj, types.ModuleType):
            used = [n for n in _GRAD_MODE_NAMES if n in names]
            if used:
                self.grad_mode = self.grad_mode or f"torch.{used[0]}"
            return
        cls = obj if isinstance(obj, type) else type(obj)
        name = getattr(cls, "__name__", "")
        if name in _GRAD_MODE_NAMES and _root(cls).startswith("torch.autograd"):
            self.grad_mode = self.grad_mode or f"torch.{name}"


_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_FAST"})
_ATTRS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


#: Special methods that make an instance: never run on one the code already holds.
_MAKING = frozenset({"__init__", "__new__", "__post_init__", "__init_subclass__", "__set_name__"})


def _methods(cls: type) -> dict[str, Any]:
    """The functions a user class (and its user bases) defines, by name, as ``cls.name``
    finds them (staticmethods, classmethods and properties' getters included)."""
    out: dict[str, Any] = {}
    for c in reversed(cls.__mro__):
        if not _is_user(c):
            continue
        for name, entry in vars(c).items():
            if isinstance(entry, (staticmethod, classmethod)):
                entry = entry.__func__
            elif isinstance(entry, property):
                entry = entry.fget
            if isinstance(entry, types.FunctionType):
                out[name] = entry
            else:
                out.pop(name, None)
    return out


@functools.lru_cache(maxsize=1024)  # (a closure made at each call is read again each time)
def _attribute_chains(code: types.CodeType) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """name -> the attributes read in chains starting at it (``np.random.randn``: ``np`` ->
    {random, randn}), so that ``np.random`` and ``jax.random`` are told apart; and the
    names loaded as globals (``co_names`` also holds attribute names)."""
    chains: dict[str, set[str]] = {}
    loaded: set[str] = set()
    for c in _walk_code(code):
        base: str | None = None
        for ins in dis.get_instructions(c):
            if ins.opname in _LOADS:
                base = str(ins.argval)
                chains.setdefault(base, set())
                if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    loaded.add(base)
            elif ins.opname in _ATTRS and base is not None:
                chains[base].add(str(ins.argval))
            elif ins.opname not in ("CACHE", "EXTENDED_ARG"):
                base = None
    return {k: frozenset(v) for k, v in chains.items()}, frozenset(loaded)


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _is_user(obj: Any) -> bool:
    top = _root(obj).split(".", 1)[0]
    return top not in sys.stdlib_module_names and top not in (
        "jax", "jaxlib", "jaxfunc", "numpy", "torch", "equinox", "flax", "optax", "scipy",
    )  # fmt: skip


def _is_python_random(obj: Any) -> bool:
    import random

    return isinstance(obj, random.Random)
