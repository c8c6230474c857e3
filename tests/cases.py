"""The torch 2.13 behaviours of ../shared/spec (verify_torch.py), written once for both sides.

Each entry is ``Case(section, label, body)``; ``body(s)`` runs on a side (see oracle.py).
``messages=False`` marks the few cases where only the exception class is compared, with the
reason next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    section: str
    label: str
    body: Callable[[Any], Any]
    messages: bool = True

    @property
    def id(self) -> str:
        return f"{self.section}: {self.label}"


CASES: list[Case] = []


def case(section: str, label: str, messages: bool = True) -> Callable[[Callable], Callable]:
    def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        CASES.append(Case(section, label, fn, messages))
        return fn

    return deco


def add(section: str, label: str, body: Callable[[Any], Any], messages: bool = True) -> None:
    CASES.append(Case(section, label, body, messages))


def mul(a: Any, b: Any) -> Any:
    """Named like torch.mul so vmap's messages (which name the function) agree."""
    return a * b


def x4(s: Any) -> Any:
    return s.t([0.5, 1.0, 1.5, 2.0])


def x3(s: Any) -> Any:
    return s.t([0.1, 0.2, 0.3])


def y3(s: Any) -> Any:
    return s.t([1.0, 2.0, 3.0])


def foo(a: Any) -> Any:
    return 3 * a[:3]


def inner_nograd(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            c = a**2
        return a - c

    return f


def nograd_mul(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            return a * 2

    return f


def nograd_product(s: Any) -> Callable[[Any, Any], Any]:
    def f(a: Any, b: Any) -> Any:
        with s.no_grad():
            c = a * b
        return c * a * b

    return f


# ---------------------------------------------------------------------------------------------
S = "AF.vjp validation"
add(S, "inputs tuple with int", lambda s: s.AF.vjp(foo, (x4(s), 2), s.ones(3)))
add(S, "inputs is a list", lambda s: s.AF.vjp(lambda a, b: a + b, [x3(s), y3(s)], s.ones(3)))
add(S, "inputs python float", lambda s: s.AF.vjp(lambda a: a * 2, 1.0, s.ones()))
add(S, "output (tensor, str)", lambda s: s.AF.vjp(lambda a: (a, "bar"), x3(s), s.ones(3)))
add(S, "output list", lambda s: s.AF.vjp(lambda a: [a, a], x3(s), (s.ones(3), s.ones(3))))
add(S, "output python float", lambda s: s.AF.vjp(lambda a: 1.0, x3(s), s.ones()))
add(S, "output dict", lambda s: s.AF.vjp(lambda a: {"a": a}, x3(s), s.ones(3)))
add(S, "v=None, vector output", lambda s: s.AF.vjp(foo, x4(s)))
add(S, "v=None, scalar output", lambda s: s.AF.vjp(lambda a: s.sum(a), x3(s)))
add(S, "v=None, output (1,1)", lambda s: s.AF.vjp(lambda a: s.sum(a).reshape(1, 1), x3(s)))
add(S, "v=None, output 1-tuple", lambda s: s.AF.vjp(lambda a: (s.sum(a),), x3(s)))
add(S, "v=None, two scalar outputs", lambda s: s.AF.vjp(lambda a: (s.sum(a), s.prod(a)), x3(s)))
add(S, "v 2-tuple single output", lambda s: s.AF.vjp(foo, x4(s), (s.ones(3), s.ones(3))))
add(S, "v 1-tuple for 2 outputs", lambda s: s.AF.vjp(lambda a: (a, a), x3(s), (s.ones(3),)))
add(S, "v wrong shape single", lambda s: s.AF.vjp(foo, x4(s), s.ones(2)))
add(
    S,
    "v wrong shape tuple entry 1",
    lambda s: s.AF.vjp(lambda a: (a, s.sum(a)), x3(s), (s.ones(3), s.ones(2))),
)
add(S, "v shape (1,) for scalar output", lambda s: s.AF.vjp(lambda a: s.sum(a), x3(s), s.ones(1)))
add(S, "v list", lambda s: s.AF.vjp(lambda a: (a, a), x3(s), [s.ones(3), s.ones(3)]))
add(S, "v contains int", lambda s: s.AF.vjp(lambda a: (a, a), x3(s), (s.ones(3), 2)))
add(S, "v float scalar", lambda s: s.AF.vjp(lambda a: s.sum(a), x3(s), 1.0))
add(
    S,
    "v float32 for f64 output",
    lambda s: s.AF.vjp(lambda a: a * 2, x3(s), s.ones(3, dtype="float32")),
)
add(
    S,
    "v complex for real output",
    lambda s: s.AF.vjp(lambda a: a * 2, x3(s), s.ones(3, dtype="complex128")),
)
add(S, "integer input", lambda s: s.AF.vjp(lambda a: a * 2, s.t([1, 2, 3]), s.ones(3)))
add(S, "bool input", lambda s: s.AF.vjp(lambda a: s.double(a), s.t([True, False]), s.ones(2)))
add(S, "integer output", lambda s: s.AF.vjp(lambda a: s.long(a), x3(s), s.ones(3)))
add(
    S,
    "integer output, int v",
    lambda s: s.AF.vjp(lambda a: s.long(a), x3(s), s.ones(3, dtype="int64")),
)
add(
    S,
    "func default kwargs used",
    lambda s: s.AF.vjp(lambda a, scale=4.0: a * scale, x3(s), s.ones(3)),
)
add(S, "real v for complex output", lambda s: s.AF.vjp(lambda z: z * 2, s.t([1 + 2j]), s.ones(1)))

S = "AF.vjp structure"
add(S, "single in, single out", lambda s: s.AF.vjp(lambda a: a * 2, x3(s), s.ones(3)))
add(S, "1-tuple in", lambda s: s.AF.vjp(lambda a: a * 2, (x3(s),), s.ones(3)))
add(S, "1-tuple out, v tensor", lambda s: s.AF.vjp(lambda a: (a * 2,), x3(s), s.ones(3)))
add(S, "1-tuple out, v 1-tuple", lambda s: s.AF.vjp(lambda a: (a * 2,), x3(s), (s.ones(3),)))
add(
    S,
    "adder doc",
    lambda s: s.AF.vjp(lambda a, b: 2 * a + 3 * b, (x3(s)[:2], y3(s)[:2]), s.ones(2)),
)
add(
    S,
    "2 in, 2 out",
    lambda s: s.AF.vjp(
        lambda a, b: (2 * a + 3 * b, a * b), (x3(s), y3(s)), (s.ones(3), s.t([1.0, 0.0, 0.0]))
    ),
)
add(S, "independent input zeros", lambda s: s.AF.vjp(lambda a, b: a * 2, (x3(s), y3(s)), s.ones(3)))
add(
    S,
    "independent float32 input zeros",
    lambda s: s.AF.vjp(lambda a, b: a * 2, (x3(s), s.float32(y3(s))), s.ones(3)),
)
add(S, "constant output", lambda s: s.AF.vjp(lambda a: s.ones(3), x3(s), s.ones(3)))
add(S, "detached output", lambda s: s.AF.vjp(lambda a: s.detach(a) * 2, x3(s), s.ones(3)))
add(S, "identity", lambda s: s.AF.vjp(lambda a: a, x3(s), s.t([1.0, 2.0, 3.0])))
add(S, "scalar input -> vector", lambda s: s.AF.vjp(lambda a: a * s.ones(4), s.t(0.7), s.ones(4)))
add(S, "0-size input", lambda s: s.AF.vjp(lambda a: a * 2, s.ones(0), s.ones(0)))
add(S, "f32 output f64 input", lambda s: s.AF.vjp(lambda a: s.float32(a * 2), x3(s), s.ones(3)))

S = "AF.vjp strict"
add(S, "output detached", lambda s: s.AF.vjp(lambda a: s.detach(a), x3(s), s.ones(3), strict=True))
add(S, "output constant", lambda s: s.AF.vjp(lambda a: s.ones(3), x3(s), s.ones(3), strict=True))
add(
    S,
    "second output constant",
    lambda s: s.AF.vjp(lambda a: (a * 2, s.ones(3)), x3(s), (s.ones(3), s.ones(3)), strict=True),
)
add(
    S,
    "independent of input 1",
    lambda s: s.AF.vjp(lambda a, b: a * 2, (x3(s), y3(s)), s.ones(3), strict=True),
)
add(S, "x*0 connected", lambda s: s.AF.vjp(lambda a: a * 0, x3(s), s.ones(3), strict=True))
add(S, "floor connected", lambda s: s.AF.vjp(lambda a: s.floor(a), x3(s), s.ones(3), strict=True))
add(S, "no_grad inside", lambda s: s.AF.vjp(nograd_mul(s), x3(s), s.ones(3), strict=True))
add(S, "integer output", lambda s: s.AF.vjp(lambda a: s.long(a), x3(s), s.ones(3), strict=True))
add(
    S,
    "cg linear",
    lambda s: s.AF.vjp(lambda a: 3 * a, x3(s), s.ones(3), create_graph=True, strict=True),
)
add(
    S,
    "cg identity",
    lambda s: s.AF.vjp(lambda a: a, x3(s), s.ones(3), create_graph=True, strict=True),
)
add(
    S,
    "cg nonlinear",
    lambda s: s.AF.vjp(lambda a: a**2, x3(s), s.ones(3), create_graph=True, strict=True),
)
add(
    S,
    "cg x*y",
    lambda s: s.AF.vjp(
        lambda a, b: a * b, (x3(s), y3(s)), s.ones(3), create_graph=True, strict=True
    ),
)
add(
    S,
    "cg 2a+3b^2",
    lambda s: s.AF.vjp(
        lambda a, b: 2 * a + 3 * b**2, (x3(s), y3(s)), s.ones(3), create_graph=True, strict=True
    ),
)
add(
    S,
    "create_graph strict, linear input 0 before unused input 1",
    lambda s: s.AF.vjp(
        lambda a, b: a + a, (x3(s), y3(s)), s.ones(3), create_graph=True, strict=True
    ),
)
add(
    S,
    "strict=False cg linear",
    lambda s: s.AF.vjp(lambda a: 3 * a, x3(s), s.ones(3), create_graph=True),
)
add(S, "inner no_grad respected", lambda s: s.AF.vjp(inner_nograd(s), x3(s), s.ones(3)))

S = "AF.jvp"
add(S, "inputs tuple with int", lambda s: s.AF.jvp(foo, (x4(s), 2), s.ones(4)))
add(S, "output (t, str)", lambda s: s.AF.jvp(lambda a: (a, "bar"), x3(s), s.ones(3)))
add(S, "v=None vector input", lambda s: s.AF.jvp(foo, x4(s)))
add(S, "v=None scalar input", lambda s: s.AF.jvp(lambda a: a * s.ones(4), s.t(0.3)))
add(S, "v=None (1,) input", lambda s: s.AF.jvp(lambda a: a * 2, s.t([0.3])))
add(S, "v=None two scalar inputs", lambda s: s.AF.jvp(lambda a, b: a * b, (s.t(0.3), s.t(0.2))))
add(S, "v 2-tuple single input", lambda s: s.AF.jvp(foo, x4(s), (s.ones(4), s.ones(4))))
add(S, "v wrong shape", lambda s: s.AF.jvp(foo, x4(s), s.ones(2)))
add(
    S,
    "v wrong shape tuple",
    lambda s: s.AF.jvp(lambda a, b: a * b, (x3(s), y3(s)), (s.ones(3), s.ones(2))),
)
add(S, "v tuple wrong len", lambda s: s.AF.jvp(lambda a, b: a * b, (x3(s), y3(s)), (s.ones(3),)))
add(S, "single/single", lambda s: s.AF.jvp(lambda a: s.sum(s.exp(a)), x3(s), s.ones(3)))
add(
    S,
    "adder doc",
    lambda s: s.AF.jvp(lambda a, b: 2 * a + 3 * b, (x3(s)[:2], y3(s)[:2]), (s.ones(2), s.ones(2))),
)
add(S, "1 in, 2 out", lambda s: s.AF.jvp(lambda a: (a * 2, s.sum(a)), x3(s), s.ones(3)))
add(S, "1-tuple out", lambda s: s.AF.jvp(lambda a: (a * 2,), x3(s), s.ones(3)))
add(S, "1-tuple in", lambda s: s.AF.jvp(lambda a: a * 2, (x3(s),), s.ones(3)))
add(
    S,
    "strict output detached",
    lambda s: s.AF.jvp(lambda a: s.detach(a), x3(s), s.ones(3), strict=True),
)
add(
    S,
    "strict independent input 1",
    lambda s: s.AF.jvp(lambda a, b: a * 2, (x3(s), y3(s)), (s.ones(3), s.ones(3)), strict=True),
)
add(
    S,
    "independent input 1",
    lambda s: s.AF.jvp(lambda a, b: a * 2, (x3(s), y3(s)), (s.ones(3), s.ones(3))),
)
add(S, "constant output", lambda s: s.AF.jvp(lambda a: s.ones(2), x3(s), s.ones(3)))
add(
    S,
    "strict cg linear",
    lambda s: s.AF.jvp(lambda a: 3 * a, x3(s), s.ones(3), create_graph=True, strict=True),
)
add(
    S,
    "strict cg nonlinear",
    lambda s: s.AF.jvp(lambda a: a**2, x3(s), s.ones(3), create_graph=True, strict=True),
)
add(
    S,
    "strict 2 outputs one constant",
    lambda s: s.AF.jvp(lambda a: (a * 2, s.ones(2)), x3(s), s.ones(3), strict=True),
)
add(S, "inner no_grad respected", lambda s: s.AF.jvp(inner_nograd(s), x3(s), s.ones(3)))
add(S, "integer input", lambda s: s.AF.jvp(lambda a: a * 2, s.t([1, 2]), s.ones(2)))
add(S, "v float32", lambda s: s.AF.jvp(lambda a: a * 2, x3(s), s.ones(3, dtype="float32")))
add(S, "v int", lambda s: s.AF.jvp(lambda a: a * 2, x3(s), s.ones(3, dtype="int64")))
add(
    S,
    "v complex for real input",
    lambda s: s.AF.jvp(lambda a: a * 2, x3(s), s.ones(3, dtype="complex128")),
)
add(S, "f32 output", lambda s: s.AF.jvp(lambda a: s.float32(a * 2), x3(s), s.ones(3)))
add(S, "integer output", lambda s: s.AF.jvp(lambda a: s.long(a), x3(s), s.ones(3)))

S = "AF.jacobian"
add(S, "single/single", lambda s: s.AF.jacobian(lambda a: s.sum(s.exp(a), 1), s.ones(2, 2) * 0.5))
add(S, "1-tuple input", lambda s: s.AF.jacobian(lambda a: a * 2, (x3(s),)))
add(S, "1-tuple output", lambda s: s.AF.jacobian(lambda a: (a * 2,), x3(s)))
add(
    S,
    "2 in 1 out",
    lambda s: s.AF.jacobian(lambda a, b: 2 * s.exp(a) + 3 * b, (x3(s)[:2], y3(s)[:2])),
)
add(S, "1 in 2 out", lambda s: s.AF.jacobian(lambda a: (s.sum(a), a.reshape(3, 1) * 2), x3(s)))
add(
    S,
    "2 in 3 out",
    lambda s: s.AF.jacobian(
        lambda a, b: (a * s.sum(b), s.sum(b), a.reshape(3, 1)), (x3(s), s.ones(2, 2))
    ),
)
add(S, "scalar->scalar", lambda s: s.AF.jacobian(lambda a: a * 3, s.t(2.0)))
add(S, "vectorize", lambda s: s.AF.jacobian(lambda a: a**2, x3(s), vectorize=True))
add(
    S,
    "forward-mode",
    lambda s: s.AF.jacobian(lambda a: a**2, x3(s), vectorize=True, strategy="forward-mode"),
)
add(
    S,
    "forward-mode no vectorize",
    lambda s: s.AF.jacobian(lambda a: a**2, x3(s), strategy="forward-mode"),
)
add(
    S,
    "forward-mode create_graph",
    lambda s: s.AF.jacobian(
        lambda a: a**2, x3(s), vectorize=True, strategy="forward-mode", create_graph=True
    ),
)
add(
    S,
    "forward-mode strict",
    lambda s: s.AF.jacobian(
        lambda a: a**2, x3(s), vectorize=True, strategy="forward-mode", strict=True
    ),
)
add(S, "bad strategy", lambda s: s.AF.jacobian(lambda a: a**2, x3(s), strategy="sideways"))
add(
    S,
    "strict independent input 1",
    lambda s: s.AF.jacobian(lambda a, b: a * 2, (x3(s), y3(s)), strict=True),
)
add(S, "strict output constant", lambda s: s.AF.jacobian(lambda a: s.ones(2), x3(s), strict=True))
add(
    S,
    "strict cg linear",
    lambda s: s.AF.jacobian(lambda a: a * 2, x3(s), strict=True, create_graph=True),
)
add(
    S,
    "strict cg cubic",
    lambda s: s.AF.jacobian(lambda a: a**3, x3(s), strict=True, create_graph=True),
)
add(S, "independent input zeros", lambda s: s.AF.jacobian(lambda a, b: a * 2, (x3(s), y3(s))))
add(S, "inputs tuple with int", lambda s: s.AF.jacobian(foo, (x4(s), 2)))
add(S, "output non-tensor", lambda s: s.AF.jacobian(lambda a: (a, "bar"), x3(s)))
add(S, "complex output", lambda s: s.AF.jacobian(lambda a: a * (1 + 1j), x3(s)))
add(S, "complex input real output", lambda s: s.AF.jacobian(lambda z: s.abs(z), s.t([3 + 4j])))
add(
    S,
    "complex output, vectorize",
    lambda s: s.AF.jacobian(lambda a: a * (1 + 2j), s.t([1.0, 2.0]), vectorize=True),
)
add(
    S,
    "complex to complex, vectorize",
    lambda s: s.AF.jacobian(lambda z: z * z, s.t([3 + 4j, 1 - 2j]), vectorize=True),
)
add(
    S,
    "complex outputs tuple, vectorize",
    lambda s: s.AF.jacobian(
        lambda z, a: (s.sin(z) * a, s.abs(z)), (s.t([3 + 4j, 1 - 2j]), s.t(2.0)), vectorize=True
    ),
)
add(S, "f64 in f32 out reverse", lambda s: s.AF.jacobian(lambda a: s.float32(a * 2), x3(s)))
add(
    S,
    "f64 in f32 out forward",
    lambda s: s.AF.jacobian(
        lambda a: s.float32(a * 2), x3(s), vectorize=True, strategy="forward-mode"
    ),
)
add(S, "int input", lambda s: s.AF.jacobian(lambda a: a * 2, s.t([1, 2])))
add(
    S,
    "forward-mode int input",
    lambda s: s.AF.jacobian(lambda a: a * 2, s.t([1, 2]), vectorize=True, strategy="forward-mode"),
)
add(S, "int output reverse", lambda s: s.AF.jacobian(lambda a: s.long(a * 2), x3(s)))
add(
    S,
    "int output forward",
    lambda s: s.AF.jacobian(
        lambda a: s.long(a * 2), x3(s), vectorize=True, strategy="forward-mode"
    ),
)
add(S, "inner no_grad reverse", lambda s: s.AF.jacobian(inner_nograd(s), x3(s)))
add(
    S,
    "inner no_grad forward",
    lambda s: s.AF.jacobian(inner_nograd(s), x3(s), vectorize=True, strategy="forward-mode"),
)
add(
    S,
    "forward-mode list output",
    lambda s: s.AF.jacobian(lambda a: [a * 2, a], x3(s), vectorize=True, strategy="forward-mode"),
)
for _name, _f, _inp in [
    ("1in1out", lambda s: lambda a: a * 2, lambda s: x3(s)),
    ("2in1out", lambda s: lambda a, b: a * b, lambda s: (x3(s), y3(s))),
    ("1in2out", lambda s: lambda a: (a, a * 2), lambda s: x3(s)),
    ("2in2out", lambda s: lambda a, b: (a * b, a), lambda s: (x3(s), y3(s))),
    ("1tuple-in 1out", lambda s: lambda a: a * 2, lambda s: (x3(s),)),
]:
    for _strat, _vec in [("reverse-mode", False), ("reverse-mode", True), ("forward-mode", True)]:
        add(
            S,
            f"containers {_name} {_strat} vectorize={_vec}",
            lambda s, _f=_f, _inp=_inp, _strat=_strat, _vec=_vec: s.AF.jacobian(
                _f(s), _inp(s), vectorize=_vec, strategy=_strat
            ),
        )


def _hess_nograd(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            c = a**3
        return s.sum(a**3 - c)

    return f


def _mul_nograd(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            c = a**2
        return s.sum(a * c)

    return f


S = "AF.hessian"
m22 = lambda s: s.t([[1.0, 2.0], [3.0, 4.0]])
add(S, "single", lambda s: s.AF.hessian(lambda a: s.sum(a**3), m22(s)))
add(
    S,
    "2 inputs doc",
    lambda s: s.AF.hessian(lambda a, b: s.sum(2 * a**2 + 3 * b**2), (x3(s)[:2], y3(s)[:2])),
)
add(S, "1-tuple input", lambda s: s.AF.hessian(lambda a: s.sum(a**3), (x3(s),)))
add(
    S,
    "shapes 2 in",
    lambda s: s.AF.hessian(lambda a, b: s.sum(s.sum(a) * b), (x3(s), s.ones(2, 2))),
)
add(S, "output (1,1,1)", lambda s: s.AF.hessian(lambda a: s.sum(a**3).reshape(1, 1, 1), x3(s)))
add(S, "output vector", lambda s: s.AF.hessian(lambda a: a**3, x3(s)))
add(S, "output 1-tuple", lambda s: s.AF.hessian(lambda a: (s.sum(a**3),), x3(s)))
add(S, "output (t, str)", lambda s: s.AF.hessian(lambda a: (s.sum(a**3), "x"), x3(s)))
add(S, "output 2-tuple", lambda s: s.AF.hessian(lambda a: (s.sum(a), s.sum(a)), x3(s)))
add(S, "inputs tuple with int", lambda s: s.AF.hessian(lambda a: s.sum(a), (x3(s), 2)))
add(S, "strict linear", lambda s: s.AF.hessian(lambda a: s.sum(3 * a), x3(s), strict=True))
add(S, "strict detach", lambda s: s.AF.hessian(lambda a: s.sum(s.detach(a)), x3(s), strict=True))
add(
    S,
    "strict independent input 1",
    lambda s: s.AF.hessian(lambda a, b: s.sum(a**3), (x3(s), y3(s)), strict=True),
)
add(S, "strict quadratic", lambda s: s.AF.hessian(lambda a: s.sum(a**2), x3(s), strict=True))
add(
    S,
    "strict cubic cg",
    lambda s: s.AF.hessian(lambda a: s.sum(a**3), x3(s), strict=True, create_graph=True),
)
add(
    S,
    "strict x^3 + x*y",
    lambda s: s.AF.hessian(lambda a, b: s.sum(a**3) + s.sum(a * b), (x3(s), y3(s)), strict=True),
)
add(S, "linear zeros", lambda s: s.AF.hessian(lambda a: s.sum(3 * a), x3(s)))
add(S, "independent zeros", lambda s: s.AF.hessian(lambda a, b: s.sum(a**3), (x3(s), y3(s))))
add(S, "vectorize", lambda s: s.AF.hessian(lambda a: s.sum(a**3), x3(s), vectorize=True))
add(
    S,
    "forward-mode outer",
    lambda s: s.AF.hessian(
        lambda a: s.sum(a**3), x3(s), vectorize=True, outer_jacobian_strategy="forward-mode"
    ),
)
add(
    S,
    "forward-mode outer, no vectorize",
    lambda s: s.AF.hessian(lambda a: s.sum(a**3), x3(s), outer_jacobian_strategy="forward-mode"),
)
add(
    S,
    "bad strategy",
    lambda s: s.AF.hessian(lambda a: s.sum(a**3), x3(s), outer_jacobian_strategy="nope"),
)
add(S, "scalar input", lambda s: s.AF.hessian(lambda a: a**3, s.t(2.0)))
add(
    S,
    "complex input",
    lambda s: s.AF.hessian(lambda z: s.sum(s.real(z * s.conj(z))), s.t([3 + 4j])),
)
add(S, "int output", lambda s: s.AF.hessian(lambda a: s.long(s.sum(a)), x3(s)))
add(S, "inner no_grad", lambda s: s.AF.hessian(_hess_nograd(s), x3(s)))
add(
    S,
    "inner no_grad, forward outer",
    lambda s: s.AF.hessian(
        _hess_nograd(s), x3(s), vectorize=True, outer_jacobian_strategy="forward-mode"
    ),
)
add(S, "no_grad factor", lambda s: s.AF.hessian(_mul_nograd(s), x3(s)))
add(
    S,
    "no_grad factor, forward outer",
    lambda s: s.AF.hessian(
        _mul_nograd(s), x3(s), vectorize=True, outer_jacobian_strategy="forward-mode"
    ),
)
for _strat, _vec in [("reverse-mode", False), ("reverse-mode", True), ("forward-mode", True)]:
    add(
        S,
        f"containers 2 inputs {_strat} vectorize={_vec}",
        lambda s, _strat=_strat, _vec=_vec: s.AF.hessian(
            lambda a, b: s.sum(a * b),
            (x3(s), y3(s)),
            vectorize=_vec,
            outer_jacobian_strategy=_strat,
        ),
    )

for _fn in ("vhp", "hvp"):
    S = f"AF.{_fn}"
    g = lambda s, _fn=_fn: getattr(s.AF, _fn)
    add(S, "doc single", lambda s, g=g: g(s)(lambda a: s.sum(a**3), m22(s), s.ones(2, 2)))
    add(
        S,
        "doc two inputs",
        lambda s, g=g: g(s)(
            lambda a, b: s.sum(2 * a**2 + 3 * b**2), (x3(s)[:2], y3(s)[:2]), (s.zeros(2), s.ones(2))
        ),
    )
    add(S, "1-tuple input", lambda s, g=g: g(s)(lambda a: s.sum(a**3), (x3(s),), (s.ones(3),)))
    add(S, "v None vector input", lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s)))
    add(S, "v None scalar input", lambda s, g=g: g(s)(lambda a: a**3, s.t(2.0)))
    add(
        S,
        "output (1,1,1)",
        lambda s, g=g: g(s)(lambda a: s.sum(a**3).reshape(1, 1, 1), x3(s), s.ones(3)),
    )
    add(S, "output vector", lambda s, g=g: g(s)(lambda a: a**3, x3(s), s.ones(3)))
    add(S, "output 1-tuple", lambda s, g=g: g(s)(lambda a: (s.sum(a**3),), x3(s), s.ones(3)))
    add(S, "output (t, str)", lambda s, g=g: g(s)(lambda a: (s.sum(a**3), "x"), x3(s), s.ones(3)))
    add(S, "v wrong shape", lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), s.ones(4)))
    add(S, "v (t, int)", lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), (s.ones(3), 2)))
    add(
        S,
        "v float32",
        lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), s.ones(3, dtype="float32")),
    )
    add(
        S,
        "v complex",
        lambda s, g=g: g(s)(lambda a: s.sum(a**3), x3(s), s.ones(3, dtype="complex128")),
    )
    add(
        S,
        "strict linear",
        lambda s, g=g: g(s)(lambda a: s.sum(3 * a), x3(s), s.ones(3), strict=True),
    )
    add(
        S,
        "strict detach",
        lambda s, g=g: g(s)(lambda a: s.sum(s.detach(a)), x3(s), s.ones(3), strict=True),
    )
    add(
        S,
        "strict independent input 1",
        lambda s, g=g: g(s)(
            lambda a, b: s.sum(a**3), (x3(s), y3(s)), (s.ones(3), s.ones(3)), strict=True
        ),
    )
    add(
        S,
        "strict quadratic",
        lambda s, g=g: g(s)(lambda a: s.sum(a**2), x3(s), s.ones(3), strict=True),
    )
    add(
        S,
        "strict cubic cg",
        lambda s, g=g: g(s)(
            lambda a: s.sum(a**3), x3(s), s.ones(3), strict=True, create_graph=True
        ),
    )
    add(S, "linear zeros", lambda s, g=g: g(s)(lambda a: s.sum(3 * a), x3(s), s.ones(3)))
    add(
        S,
        "independent zeros",
        lambda s, g=g: g(s)(lambda a, b: s.sum(a**3), (x3(s), y3(s)), (s.ones(3), s.ones(3))),
    )
    add(S, "int output", lambda s, g=g: g(s)(lambda a: s.long(s.sum(a)), x3(s), s.ones(3)))
    add(S, "no_grad factor", lambda s, g=g: g(s)(_mul_nograd(s), x3(s), s.ones(3)))


# ---------------------------------------------------------------------------------------------
S = "func.vjp"
add(S, "primal float", lambda s: s.TF.vjp(lambda a: a * 2, 1.0))
add(S, "primal int tensor", lambda s: s.TF.vjp(lambda a: a * 2, s.t([1, 2])))
add(
    S,
    "primal pytree",
    lambda s: s.TF.vjp(lambda p: p[0] * p[1][0], (s.t(2.0), (s.t(3.0), s.t(4.0))))[1](s.t(1.0)),
)
add(S, "primal list", lambda s: s.TF.vjp(lambda p: p[0] * p[1], [s.t(2.0), s.t(3.0)])[1](s.t(1.0)))
add(
    S,
    "primal dict",
    lambda s: s.TF.vjp(lambda p: p["a"] * p["b"], {"a": s.t(2.0), "b": s.t(3.0)})[1](s.t(1.0)),
)
add(
    S,
    "primal dict order",
    lambda s: s.TF.vjp(lambda d: d["b"] * d["a"], {"b": x3(s), "a": y3(s)})[1](s.ones(3)),
)
add(S, "no primals", lambda s: s.TF.vjp(lambda: s.ones(2)))
add(S, "no primals vjp_fn", lambda s: s.TF.vjp(lambda: s.ones(2))[1](s.ones(2)))
add(S, "inner no_grad respected", lambda s: s.TF.vjp(inner_nograd(s), x3(s))[1](s.ones(3)))
add(
    S,
    "no_grad product of both inputs",
    lambda s: s.TF.vjp(nograd_product(s), x3(s), y3(s))[1](s.ones(3)),
)
add(S, "output None", lambda s: s.TF.vjp(lambda a: None, x3(s)))
add(S, "output ()", lambda s: s.TF.vjp(lambda a: (), x3(s)))
add(S, "output 1", lambda s: s.TF.vjp(lambda a: 1, x3(s)))
add(S, "output (t, 1.0)", lambda s: s.TF.vjp(lambda a: (a, 1.0), x3(s)))
add(S, "output (t, None)", lambda s: s.TF.vjp(lambda a: (a, None), x3(s)))
add(S, "output int tensor", lambda s: s.TF.vjp(lambda a: s.long(a), x3(s)))
add(S, "output bool tensor", lambda s: s.TF.vjp(lambda a: a > 0, x3(s)))
add(S, "has_aux output list", lambda s: s.TF.vjp(lambda a: [a, a], x3(s), has_aux=True))
add(S, "has_aux 3-tuple", lambda s: s.TF.vjp(lambda a: (a, a, a), x3(s), has_aux=True))
add(S, "has_aux plain tensor", lambda s: s.TF.vjp(lambda a: a, x3(s), has_aux=True))
add(S, "has_aux aux int", lambda s: s.TF.vjp(lambda a: (a, 1), x3(s), has_aux=True))
add(S, "has_aux aux [t, 'abc']", lambda s: s.TF.vjp(lambda a: (a, [a, "abc"]), x3(s), has_aux=True))
add(S, "has_aux aux None", lambda s: s.TF.vjp(lambda a: (a, None), x3(s), has_aux=True))
add(S, "has_aux ok", lambda s: s.TF.vjp(lambda a: (s.sin(a), {"c": s.cos(a)}), x3(s), has_aux=True))
add(
    S,
    "has_aux aux dict order",
    lambda s: s.TF.vjp(lambda a: (a, {"z": a, "a": a * 2}), x3(s), has_aux=True),
)
add(
    S,
    "kwargs to vjp",
    lambda s: s.TF.vjp(lambda a, scale=4.0: a * scale, x3(s), scale=2.0),
    messages=False,
)
add(
    S,
    "kwargs default used",
    lambda s: s.TF.vjp(lambda a, scale=4.0: a * scale, x3(s))[1](s.ones(3)),
)
add(
    S,
    "matmul two primals",
    lambda s: s.TF.vjp(s.matmul, s.ones(2, 3), s.ones(3, 2))[1](s.ones(2, 2)),
)
add(S, "single primal 1-tuple", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(3)))
add(S, "cot tuple for tensor", lambda s: s.TF.vjp(s.sin, x3(s))[1]((s.ones(3),)))
add(S, "cot list vs tuple", lambda s: s.TF.vjp(lambda a: (a, a), x3(s))[1]([s.ones(3), s.ones(3)]))
add(S, "cot wrong shape", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(2)))
add(S, "cot shape (1,)", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(1)))
add(S, "cot scalar for vector", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.t(1.0)))
add(S, "cot python float", lambda s: s.TF.vjp(lambda a: s.sum(a), x3(s))[1](1.0))
add(S, "cot float32", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(3, dtype="float32")))
add(S, "cot complex for real", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(3, dtype="complex128")))
add(S, "cot int", lambda s: s.TF.vjp(s.sin, x3(s))[1](s.ones(3, dtype="int64")))
add(S, "cot None scalar", lambda s: s.TF.vjp(lambda a: s.sum(a), x3(s))[1](None))
add(S, "cot None vector", lambda s: s.TF.vjp(lambda a: a * 2, x3(s))[1](None))
add(
    S,
    "cot None in tuple",
    lambda s: s.TF.vjp(lambda a: (a * 2, s.sum(a)), x3(s))[1]((s.ones(3), None)),
)
add(
    S,
    "cot dict",
    lambda s: s.TF.vjp(lambda a: {"first": s.sin(a), "second": s.cos(a)}, x3(s))[1](
        {"first": s.ones(3), "second": s.ones(3)}
    ),
)
add(
    S,
    "cot dict missing key",
    lambda s: s.TF.vjp(lambda a: {"first": s.sin(a), "second": s.cos(a)}, x3(s))[1](
        {"first": s.ones(3)}
    ),
)
add(
    S,
    "output dict",
    lambda s: s.TF.vjp(lambda a: {"first": s.sin(a), "second": s.cos(a)}, x3(s))[0],
)
add(S, "output dict order", lambda s: s.TF.vjp(lambda a: {"z": s.sin(a), "a": s.cos(a)}, x3(s))[0])
add(
    S,
    "nested output",
    lambda s: s.TF.vjp(lambda a: [(s.sum(a), {"a": a, "out": [a, s.sum(a)]})], x3(s))[0],
)
add(S, "unrelated output", lambda s: s.TF.vjp(lambda a: y3(s), x3(s))[1](s.ones(3)))
add(
    S,
    "unrelated multi",
    lambda s: s.TF.vjp(lambda w, a: (y3(s), y3(s), a), x3(s), y3(s))[1](
        (s.ones(3), s.ones(3), s.ones(3))
    ),
)
add(
    S,
    "vjp_fn called twice",
    lambda s: (lambda o_f: (o_f[1](s.ones(3)), o_f[1](2 * s.ones(3))))(s.TF.vjp(s.sin, x3(s))),
)
add(S, "has_aux positional", lambda s: s.TF.vjp(lambda a: (a, a), x3(s), True))
add(S, "inner no_grad", lambda s: s.TF.vjp(inner_nograd(s), x3(s))[1](s.ones(3)))


def _inner_enable(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad(), s.enable_grad():
            c = a**2
        return a - c

    return f


def _outer_nograd_vjp(s: Any) -> Any:
    with s.no_grad():
        _, fn = s.TF.vjp(lambda a: a**2, x3(s))
        return fn(s.ones(3))


add(S, "inner no_grad + enable_grad", lambda s: s.TF.vjp(_inner_enable(s), x3(s))[1](s.ones(3)))
add(S, "outer no_grad ignored", _outer_nograd_vjp)

S = "func.jvp"
add(S, "primals not tuple", lambda s: s.TF.jvp(s.sin, x3(s), (s.ones(3),)))
add(S, "primals list", lambda s: s.TF.jvp(s.sin, [x3(s)], [s.ones(3)]))
add(S, "tangents tensor", lambda s: s.TF.jvp(s.sin, (x3(s),), s.ones(3)))
add(S, "tangents list", lambda s: s.TF.jvp(s.sin, (x3(s),), [s.ones(3)]))
add(S, "tangents too many", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(3), s.ones(3))))
add(S, "primal float", lambda s: s.TF.jvp(s.sin, (1.0,), (s.ones(3),)))
add(S, "tangent float", lambda s: s.TF.jvp(s.sin, (x3(s),), (1.0,)))
add(S, "empty", lambda s: s.TF.jvp(s.sin, (), ()))
add(S, "tangent wrong shape", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(2),)))
add(S, "tangent (1,)", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(1),)))
add(S, "tangent float32", lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(3, dtype="float32"),)))
add(
    S,
    "tangent complex for real",
    lambda s: s.TF.jvp(s.sin, (x3(s),), (s.ones(3, dtype="complex128"),)),
)
add(S, "tangent int", lambda s: s.TF.jvp(lambda a: a * 2, (x3(s),), (s.ones(3, dtype="int64"),)))
add(S, "int primal", lambda s: s.TF.jvp(lambda a: a * 2, (s.t([1, 2]),), (s.ones(2),)))
add(
    S,
    "int primal wrong shape",
    lambda s: s.TF.jvp(lambda a: a * 2, (s.t([1, 2, 3]),), (s.ones(2),)),
)
add(S, "int output", lambda s: s.TF.jvp(lambda a: s.long(a), (x3(s),), (s.ones(3),)))
add(S, "output None", lambda s: s.TF.jvp(lambda a: None, (x3(s),), (s.ones(3),)))
add(S, "output 'abc'", lambda s: s.TF.jvp(lambda a: "abc", (x3(s),), (s.ones(3),)))
add(S, "has_aux list", lambda s: s.TF.jvp(lambda a: [a, a], (x3(s),), (s.ones(3),), has_aux=True))
add(
    S,
    "has_aux ok",
    lambda s: s.TF.jvp(lambda a: (s.sin(a), s.cos(a)), (x3(s),), (s.ones(3),), has_aux=True),
)
add(
    S,
    "strict unrelated output",
    lambda s: s.TF.jvp(lambda a: (a, y3(s)), (x3(s),), (s.ones(3),), strict=True),
)
add(
    S,
    "strict unrelated input 1",
    lambda s: s.TF.jvp(lambda a, b: a * 2, (x3(s), y3(s)), (s.ones(3), s.ones(3)), strict=True),
)
add(S, "unrelated output zeros", lambda s: s.TF.jvp(lambda a: (a, y3(s)), (x3(s),), (s.ones(3),)))
add(S, "strict x*0", lambda s: s.TF.jvp(lambda a: a * 0, (x3(s),), (s.ones(3),), strict=True))
add(
    S,
    "strict positional",
    lambda s: s.TF.jvp(lambda a: a, (x3(s),), (s.ones(3),), True),
    messages=False,
)
add(
    S,
    "pytree primals",
    lambda s: s.TF.jvp(
        lambda p, y, z: p[0] + 2 * p[1] + 3 * y + 4 * z,
        ((s.t(1.0), s.t(1.0)), s.t(1.0), s.t(1.0)),
        ((s.t(1.0), s.t(1.0)), s.t(1.0), s.t(1.0)),
    ),
)
add(
    S,
    "dict output",
    lambda s: s.TF.jvp(lambda a: {"x": a, "xsum": s.sum(a)}, (x3(s),), (s.ones(3),)),
)
add(
    S,
    "dict output order",
    lambda s: s.TF.jvp(lambda a: {"z": a, "a": s.sum(a)}, (x3(s),), (s.ones(3),)),
)
add(S, "list output", lambda s: s.TF.jvp(lambda a: [a, s.sum(a)], (x3(s),), (s.ones(3),)))
add(S, "ignores inner no_grad", lambda s: s.TF.jvp(inner_nograd(s), (x3(s),), (s.ones(3),)))
add(S, "kwargs default", lambda s: s.TF.jvp(lambda a, sc=4.0: a * sc, (x3(s),), (s.ones(3),)))
add(
    S,
    "doc example",
    lambda s: s.TF.jvp(lambda x: x * s.t([1.0, 2.0, 3.0]), (s.t(0.5),), (s.t(1.0),)),
)


def _two(s: Any) -> tuple[Any, Any]:
    return s.t(2.0), s.t(3.0)


S = "func.grad"
add(S, "vector output", lambda s: s.TF.grad(lambda a: a * 2)(x3(s)))
add(S, "(1,) output", lambda s: s.TF.grad(lambda a: s.sum(a).reshape(1))(x3(s)))
add(S, "float output", lambda s: s.TF.grad(lambda a: 1.0)(x3(s)))
add(S, "tuple output", lambda s: s.TF.grad(lambda a: (s.sum(a), s.sum(a)))(x3(s)))
add(S, "None output", lambda s: s.TF.grad(lambda a: None)(x3(s)))
add(S, "has_aux list", lambda s: s.TF.grad(lambda a: [s.sum(a), a], has_aux=True)(x3(s)))
add(S, "has_aux 3-tuple", lambda s: s.TF.grad(lambda a: (s.sum(a), a, a), has_aux=True)(x3(s)))
add(S, "has_aux aux int", lambda s: s.TF.grad(lambda a: (s.sum(a), 1), has_aux=True)(x3(s)))
add(S, "has_aux aux None", lambda s: s.TF.grad(lambda a: (s.sum(a), None), has_aux=True)(x3(s)))
add(
    S, "has_aux ok", lambda s: s.TF.grad(lambda a: (s.sum(s.sin(a)), s.cos(a)), has_aux=True)(x3(s))
)
add(
    S,
    "grad_and_value has_aux",
    lambda s: s.TF.grad_and_value(lambda a: (s.sum(s.sin(a)), s.cos(a)), has_aux=True)(x3(s)),
)
add(
    S,
    "grad_and_value has_aux nested aux",
    lambda s: s.TF.grad_and_value(lambda a: (s.sum(a), (a, {"k": a})), has_aux=True)(x3(s)),
)
add(S, "grad_and_value", lambda s: s.TF.grad_and_value(lambda a: s.sum(s.sin(a)))(x3(s)))
add(S, "grad_and_value argnums tuple", lambda s: s.TF.grad_and_value(mul, argnums=(0, 1))(*_two(s)))
add(S, "argnums=1", lambda s: s.TF.grad(mul, argnums=1)(*_two(s)))
add(S, "argnums=(0,)", lambda s: s.TF.grad(mul, argnums=(0,))(*_two(s)))
add(S, "argnums=(1,0)", lambda s: s.TF.grad(mul, argnums=(1, 0))(*_two(s)))
add(S, "argnums=-1", lambda s: s.TF.grad(mul, argnums=-1)(*_two(s)))
add(S, "argnums=2", lambda s: s.TF.grad(mul, argnums=2)(*_two(s)))
add(S, "argnums=-3", lambda s: s.TF.grad(mul, argnums=-3)(*_two(s)))
add(S, "argnums=[0]", lambda s: s.TF.grad(mul, argnums=[0])(*_two(s)))
add(S, "argnums=('0',)", lambda s: s.TF.grad(mul, argnums=("0",))(*_two(s)))
add(S, "argnums=(0,0)", lambda s: s.TF.grad(mul, argnums=(0, 0))(*_two(s)))
add(S, "argnums=(0,-2)", lambda s: s.TF.grad(mul, argnums=(0, -2))(*_two(s)))
add(S, "argnums=()", lambda s: s.TF.grad(mul, argnums=())(*_two(s)))
add(S, "argnums=0.0", lambda s: s.TF.grad(mul, argnums=0.0)(*_two(s)))
add(S, "no args", lambda s: s.TF.grad(lambda: s.t(1.0))())
add(S, "float at argnum", lambda s: s.TF.grad(lambda a, b: a * b)(2.0, s.t(3.0)))
add(S, "float not at argnum", lambda s: s.TF.grad(lambda a, b: a * b)(s.t(3.0), 2.0))
add(S, "int input", lambda s: s.TF.grad(lambda a: s.sum(a * 2))(s.t([1, 2])))
add(S, "int output", lambda s: s.TF.grad(lambda a: s.long(s.sum(a)))(x3(s)))
add(S, "kwargs passed", lambda s: s.TF.grad(lambda a, b: s.sum(a * b))(x3(s), b=y3(s)))
add(
    S,
    "kwargs not differentiated",
    lambda s: s.TF.grad(lambda a, b=None: s.sum(a * b), argnums=0)(x3(s), b=y3(s)),
)
add(S, "dict input", lambda s: s.TF.grad(lambda d: s.sum(d["a"] ** 2))({"a": x3(s), "b": y3(s)}))
add(
    S,
    "dict input order",
    lambda s: s.TF.grad(lambda d: s.sum(d["b"] ** 2))({"b": x3(s), "a": y3(s)}),
)
add(
    S,
    "nested pytree",
    lambda s: s.TF.grad(lambda a, b: 1 * a[0] + 2 * a[1] + 3 * b["foo"], argnums=(0, 1))(
        (s.t(1.0), s.t(1.0)), {"foo": s.t(1.0)}
    ),
)
add(S, "unrelated", lambda s: s.TF.grad(lambda a: s.sum(y3(s)))(x3(s)))
add(
    S,
    "complex input |z|^2",
    lambda s: s.TF.grad(lambda z: s.sum(s.real(z * s.conj(z))))(s.t([3 + 4j])),
)
add(S, "complex output", lambda s: s.TF.grad(lambda z: s.sum(z * z))(s.t([3 + 4j])))


def _outer_nograd_grad(s: Any) -> Any:
    with s.no_grad():
        return s.TF.grad(lambda a: s.sum(a**2))(x3(s))


def _h_nested(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            shift = s.TF.grad(lambda t: 0.25 * t**4)(a)
        return a**3 - shift

    return f


def _g_nograd(s: Any) -> Callable[[Any], Any]:
    def f(a: Any) -> Any:
        with s.no_grad():
            c = a**2
        return a**2 - c

    return f


add(S, "outer no_grad ignored", _outer_nograd_grad)
add(
    S,
    "grad of grad detach",
    lambda s: s.TF.grad(s.TF.grad(lambda a: a**2 - s.detach(a**2)))(s.t(1.5)),
)
add(S, "no_grad(grad) nested", lambda s: s.TF.grad(_h_nested(s))(s.t(1.5)))
add(S, "x^2 - nograd x^2", lambda s: s.TF.grad(_g_nograd(s))(s.t(1.5)))
add(S, "grad(grad(x^2 - nograd x^2))", lambda s: s.TF.grad(s.TF.grad(_g_nograd(s)))(s.t(1.5)))

S = "func.jacrev/jacfwd/hessian"
add(S, "jacrev sin", lambda s: s.TF.jacrev(s.sin)(x3(s)))
add(S, "jacfwd sin", lambda s: s.TF.jacfwd(s.sin)(x3(s)))
add(
    S,
    "jacrev argnums tuple 2 outputs",
    lambda s: s.TF.jacrev(lambda a, b: (2 * a + 3 * b, 4 * a + 5 * b), argnums=(0, 1))(
        x3(s), y3(s)
    ),
)
add(
    S,
    "jacrev argnums (0,) 2 outputs",
    lambda s: s.TF.jacrev(lambda a, b: (2 * a + 3 * b, 4 * a + 5 * b), argnums=(0,))(x3(s), y3(s)),
)
add(
    S,
    "jacfwd dict output",
    lambda s: s.TF.jacfwd(lambda a, b: {"left": 2 * a + 3 * b, "right": 4 * a * b}, argnums=(0, 1))(
        x3(s), y3(s)
    ),
)
add(
    S,
    "jacrev dict input",
    lambda s: s.TF.jacrev(lambda d: {"c": s.sin(d["a"]), "d": s.cos(d["b"])})(
        {"a": x3(s), "b": y3(s)}
    ),
)
add(S, "jacrev scalar", lambda s: s.TF.jacrev(lambda a: a)(s.t(1.0)))
add(S, "jacrev (1,)", lambda s: s.TF.jacrev(lambda a: a)(s.ones(1)))
add(S, "jacrev has_aux", lambda s: s.TF.jacrev(lambda a: (s.sin(a), s.cos(a)), has_aux=True)(x3(s)))
add(S, "jacfwd has_aux", lambda s: s.TF.jacfwd(lambda a: (s.sin(a), s.cos(a)), has_aux=True)(x3(s)))
add(
    S,
    "jacfwd has_aux positional",
    lambda s: s.TF.jacfwd(lambda a: (s.sin(a), s.cos(a)), 0, True)(x3(s)),
)
add(
    S,
    "jacrev has_aux positional",
    lambda s: s.TF.jacrev(lambda a: (s.sin(a), s.cos(a)), 0, True)(x3(s)),
    messages=False,  # Python's own "takes from 1 to 2 positional arguments" text names the function
)
add(S, "jacrev has_aux aux int", lambda s: s.TF.jacrev(lambda a: (a, 1), has_aux=True)(x3(s)))
add(S, "jacrev chunk_size=0", lambda s: s.TF.jacrev(s.sin, chunk_size=0)(x3(s)))
add(S, "jacrev chunk_size=-2", lambda s: s.TF.jacrev(s.sin, chunk_size=-2))
add(S, "jacrev chunk_size=2", lambda s: s.TF.jacrev(s.sin, chunk_size=2)(x3(s)))
add(S, "jacrev chunk_size=1", lambda s: s.TF.jacrev(s.sin, chunk_size=1)(x3(s)))
add(S, "jacrev complex input", lambda s: s.TF.jacrev(lambda z: s.conj(z))(s.t([1 + 1j])))
add(S, "jacfwd complex input", lambda s: s.TF.jacfwd(lambda z: s.conj(z))(s.t([1 + 1j])))
add(S, "jacrev complex output", lambda s: s.TF.jacrev(lambda a: a * 0.5j)(x3(s)))
add(S, "jacfwd complex output", lambda s: s.TF.jacfwd(lambda a: a * 0.5j)(x3(s)))
add(S, "jacrev argnums=()", lambda s: s.TF.jacrev(s.sin, argnums=())(x3(s)))
add(S, "jacrev argnums=2", lambda s: s.TF.jacrev(s.sin, argnums=2)(x3(s)))
add(S, "jacfwd argnums=(0,0)", lambda s: s.TF.jacfwd(s.sin, argnums=(0, 0))(x3(s)))
add(S, "jacrev argnums float", lambda s: s.TF.jacrev(s.sin, argnums=0.0)(x3(s)))
add(S, "jacrev empty output", lambda s: s.TF.jacrev(lambda a, b: ())(x3(s), y3(s)))
add(S, "jacfwd empty output", lambda s: s.TF.jacfwd(lambda a, b: ())(x3(s), y3(s)))
add(S, "jacrev output 1", lambda s: s.TF.jacrev(lambda a: 1)(x3(s)))
add(S, "jacfwd output 1", lambda s: s.TF.jacfwd(lambda a: 1)(x3(s)))
add(S, "jacrev kwargs", lambda s: s.TF.jacrev(lambda a, sc=1.0: a * sc)(x3(s), sc=2.0))
add(S, "jacrev non-tensor arg", lambda s: s.TF.jacrev(lambda t, k: t + k)(x3(s), 3))
add(S, "jacfwd non-tensor arg", lambda s: s.TF.jacfwd(lambda t, k: t + k)(x3(s), 3))
add(S, "jacrev int input", lambda s: s.TF.jacrev(lambda a: a * 2)(s.t([1, 2])))
add(S, "jacfwd int input", lambda s: s.TF.jacfwd(lambda a: a * 2.0)(s.t([1, 2])))
add(S, "jacrev int output", lambda s: s.TF.jacrev(lambda a: s.long(a))(x3(s)))
add(S, "jacfwd int output", lambda s: s.TF.jacfwd(lambda a: s.long(a))(x3(s)))
add(S, "jacrev unrelated output", lambda s: s.TF.jacrev(lambda a: y3(s))(x3(s)))
add(
    S, "jacfwd unrelated input", lambda s: s.TF.jacfwd(lambda a, b: a, argnums=(0, 1))(x3(s), y3(s))
)
add(S, "jacrev inner no_grad", lambda s: s.TF.jacrev(inner_nograd(s))(x3(s)))
add(S, "jacfwd inner no_grad ignored", lambda s: s.TF.jacfwd(inner_nograd(s))(x3(s)))
add(S, "hessian scalar", lambda s: s.TF.hessian(lambda a: s.sum(s.sin(a)))(x3(s)))
add(S, "hessian vector output", lambda s: s.TF.hessian(s.sin)(x3(s)))
add(
    S,
    "hessian argnums tuple",
    lambda s: s.TF.hessian(lambda a, b: s.sum(a**2 * b), argnums=(0, 1))(x3(s), y3(s)),
)
add(S, "hessian inner no_grad", lambda s: s.TF.hessian(_hess_nograd(s))(x3(s)))
add(S, "jacrev(jacrev) inner no_grad", lambda s: s.TF.jacrev(s.TF.jacrev(_hess_nograd(s)))(x3(s)))
add(S, "hessian no_grad factor", lambda s: s.TF.hessian(_mul_nograd(s))(x3(s)))
add(S, "jacrev(jacrev) no_grad factor", lambda s: s.TF.jacrev(s.TF.jacrev(_mul_nograd(s)))(x3(s)))

S = "func.linearize"
add(S, "basic", lambda s: (lambda o_f: (o_f[0], o_f[1](s.ones(3))))(s.TF.linearize(s.sin, x3(s))))
add(S, "two primals", lambda s: s.TF.linearize(mul, x3(s), y3(s))[1](s.ones(3), s.ones(3)))
add(S, "wrong structure", lambda s: s.TF.linearize(s.sin, x3(s))[1]((s.ones(3), s.ones(3))))
add(S, "wrong shape", lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(2)))
add(S, "wrong dtype", lambda s: s.TF.linearize(s.sin, x3(s))[1](s.ones(3, dtype="float32")))
add(
    S, "output tuple", lambda s: s.TF.linearize(lambda a: (s.cos(a), s.sum(a)), x3(s))[1](s.ones(3))
)
add(
    S,
    "unrelated output",
    lambda s: s.TF.linearize(lambda a: (s.cos(a), y3(s)), x3(s))[1](s.ones(3)),
)
add(S, "inner no_grad ignored", lambda s: s.TF.linearize(inner_nograd(s), x3(s))[1](s.ones(3)))
add(S, "float primal", lambda s: s.TF.linearize(s.sin, 1.0), messages=False)
add(S, "kwargs", lambda s: s.TF.linearize(lambda a, sc=1.0: a * sc, x3(s), sc=2.0), messages=False)

S = "func.vmap"
add(S, "basic", lambda s: s.TF.vmap(s.dot)(s.ones(2, 3), s.ones(2, 3)))
add(S, "in_dims (0, None)", lambda s: s.TF.vmap(mul, in_dims=(0, None))(s.ones(2, 3), y3(s)))
add(S, "in_dims list", lambda s: s.TF.vmap(mul, in_dims=[0, None])(s.ones(2, 3), y3(s)))
add(S, "in_dims wrong len", lambda s: s.TF.vmap(mul, in_dims=(0,))(s.ones(2, 3), y3(s)))
add(S, "size mismatch", lambda s: s.TF.vmap(mul)(s.ones(2, 3), s.ones(3, 3)))
add(S, "in_dim out of range", lambda s: s.TF.vmap(s.sin, in_dims=2)(s.ones(2, 3)))
add(S, "in_dim on float", lambda s: s.TF.vmap(lambda a, b: a * b)(s.ones(2), 2.0))
add(
    S,
    "in_dim None float",
    lambda s: s.TF.vmap(lambda a, b: a * b, in_dims=(0, None))(s.ones(2), 2.0),
)
add(S, "no inputs", lambda s: s.TF.vmap(lambda: s.ones(2))())
add(S, "in_dims None", lambda s: s.TF.vmap(s.sin, in_dims=None)(s.ones(2)))
add(S, "in_dims (None,)", lambda s: s.TF.vmap(s.sin, in_dims=(None,))(s.ones(2)))
add(S, "out_dims=1", lambda s: s.TF.vmap(lambda a: a * 2, out_dims=1)(s.ones(2, 3)))
add(S, "out_dims tuple", lambda s: s.TF.vmap(lambda a: (a, a), out_dims=(0, 1))(s.ones(2, 3)))
add(
    S, "out_dims wrong len", lambda s: s.TF.vmap(lambda a: (a, a), out_dims=(0, 1, 0))(s.ones(2, 3))
)
add(S, "out_dims None batched", lambda s: s.TF.vmap(lambda a: a, out_dims=None)(s.ones(2, 3)))
add(
    S,
    "out_dims None unbatched",
    lambda s: s.TF.vmap(lambda a: (a, y3(s)), out_dims=(0, None))(s.ones(2, 3)),
)
add(S, "unbatched output broadcast", lambda s: s.TF.vmap(lambda a: y3(s))(s.ones(2, 3)))
add(S, "float output", lambda s: s.TF.vmap(lambda a: 1.0)(s.ones(2, 3)))
add(S, "randomness bad", lambda s: s.TF.vmap(s.sin, randomness="bogus"))
add(S, "chunk_size=0", lambda s: s.TF.vmap(s.sin, chunk_size=0))
add(S, "chunk_size=2", lambda s: s.TF.vmap(s.sin, chunk_size=2)(s.ones(5, 2)))
add(S, "kwargs not batched", lambda s: s.TF.vmap(lambda a, sc=None: a * sc)(s.ones(2, 3), sc=y3(s)))
add(
    S,
    "dict in_dims",
    lambda s: s.TF.vmap(lambda d: d["a"] * d["b"], in_dims=({"a": 0, "b": None},))(
        {"a": s.ones(2, 3), "b": y3(s)}
    ),
)
add(S, "negative in_dim", lambda s: s.TF.vmap(lambda a: s.sum(a), in_dims=-1)(s.ones(2, 3)))
add(S, "in_dims float", lambda s: s.TF.vmap(s.sin, in_dims=0.0)(s.ones(2)))
add(S, "nested", lambda s: s.TF.vmap(s.TF.vmap(s.dot))(s.ones(2, 3, 4), s.ones(2, 3, 4)))
add(S, "returns list/dict", lambda s: s.TF.vmap(lambda a: {"a": [a, s.sum(a)]})(s.ones(2, 3)))
add(
    S,
    "vmap(grad) per-sample",
    lambda s: s.TF.vmap(s.TF.grad(lambda w, x: s.sum(w * x)), in_dims=(None, 0))(
        y3(s), s.ones(2, 3)
    ),
)

S = "complex convention"
z = lambda s: s.t([3.0 + 4.0j])
add(S, "AF.vjp |z|^2", lambda s: s.AF.vjp(lambda z: s.real(z * s.conj(z)), z(s), s.ones(1)))
add(S, "func.grad |z|^2", lambda s: s.TF.grad(lambda z: s.sum(s.real(z * s.conj(z))))(z(s)))
add(S, "AF.vjp z^2 v=1", lambda s: s.AF.vjp(lambda z: z * z, z(s), s.ones(1, dtype="complex128")))
add(S, "AF.vjp z^2 v=1j", lambda s: s.AF.vjp(lambda z: z * z, z(s), s.t([1j])))
add(S, "func.vjp z^2 v=1j", lambda s: s.TF.vjp(lambda z: z * z, z(s))[1](s.t([1j])))
add(
    S,
    "func.vjp z conj(z) z",
    lambda s: s.TF.vjp(lambda z: z * s.conj(z) * z, z(s))[1](s.t([1 + 2j])),
)
add(S, "func.vjp conj", lambda s: s.TF.vjp(lambda z: s.conj(z), z(s))[1](s.t([1 + 2j])))
add(S, "func.jvp z^2", lambda s: s.TF.jvp(lambda z: z * z, (z(s),), (s.t([1j]),)))
add(
    S,
    "func.jvp z conj(z) z",
    lambda s: s.TF.jvp(lambda z: z * s.conj(z) * z, (z(s),), (s.t([1 + 2j]),)),
)
add(S, "AF.jvp z^2", lambda s: s.AF.jvp(lambda z: z * z, z(s), s.t([1j])))
add(
    S,
    "AF.vjp real->complex v=1",
    lambda s: s.AF.vjp(lambda a: a * (1 + 2j), s.t([2.0]), s.t([1.0 + 0j])),
)
add(
    S,
    "AF.vjp real->complex v=1j",
    lambda s: s.AF.vjp(lambda a: a * (1 + 2j), s.t([2.0]), s.t([1j])),
)
add(
    S,
    "func.vjp real->complex",
    lambda s: s.TF.vjp(lambda a: a * (1 + 2j), s.t([2.0]))[1](s.t([1j])),
)
add(
    S,
    "AF.vjp complex->real",
    lambda s: s.AF.vjp(lambda z: s.real(z) * 3 + s.imag(z) * 5, z(s), s.ones(1)),
)
add(S, "AF.vjp v=None complex output", lambda s: s.AF.vjp(lambda z: s.sum(z * z), z(s)))
add(
    S,
    "AF.jvp complex in real out",
    lambda s: s.AF.jvp(lambda z: s.abs(z), s.t([1 + 2j]), s.t([1j])),
)
add(S, "func.vjp real cot for complex out", lambda s: s.TF.vjp(lambda z: z * 2, z(s))[1](s.ones(1)))
add(
    S,
    "AF.vhp complex input",
    lambda s: s.AF.vhp(lambda z: s.sum(s.real(z * s.conj(z))), s.t([1 + 2j]), s.t([1 + 0j])),
)

S = "dict key order"
add(
    S,
    "jacrev unsorted dict in and out",
    lambda s: s.TF.jacrev(lambda d: {"z": d["a"] * 2, "a": s.sin(d["b"])})(
        {"b": x3(s), "a": y3(s)}
    ),
)
add(
    S,
    "jacfwd unsorted dict in and out",
    lambda s: s.TF.jacfwd(lambda d: {"z": d["a"] * 2, "a": s.sin(d["b"])})(
        {"b": x3(s), "a": y3(s)}
    ),
)
add(
    S,
    "hessian unsorted dict input",
    lambda s: s.TF.hessian(lambda d: s.sum(d["b"] ** 2 * d["a"]))({"b": x3(s), "a": y3(s)}),
)
add(
    S,
    "grad has_aux unsorted dict aux",
    lambda s: s.TF.grad(lambda a: (s.sum(a), {"z": a, "a": a * 2}), has_aux=True)(x3(s)),
)
add(
    S,
    "grad_and_value unsorted dict argument",
    lambda s: s.TF.grad_and_value(lambda d: s.sum(d["z"] * d["a"]))({"z": x3(s), "a": y3(s)}),
)
add(
    S,
    "vmap unsorted dict output",
    lambda s: s.TF.vmap(lambda a: {"z": a, "a": s.sum(a)})(s.ones(2, 3)),
)

S = "complex v=None"
for _fn in ("jvp", "vhp", "hvp"):
    add(
        S,
        f"AF.{_fn} v=None complex input",
        lambda s, _fn=_fn: getattr(s.AF, _fn)(
            (lambda z: z * 2) if _fn == "jvp" else (lambda z: s.sum(s.real(z * s.conj(z)))),
            s.t([1 + 2j]),
        ),
    )
