"""torch <-> JAX through DLPack: values, dtypes, structure, and memory sharing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (interop needs it)")

from jaxfunc.interop import from_torch, to_torch  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.complex128])
def test_roundtrip(dtype):
    t = (torch.arange(6) + 1).reshape(2, 3).to(dtype)
    x = from_torch(t)
    assert isinstance(x, jax.Array)
    assert x.shape == (2, 3)
    assert str(x.dtype) == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    back = to_torch(x)
    assert isinstance(back, torch.Tensor) and back.dtype == dtype
    assert torch.equal(back, t)


def test_pytrees_and_non_arrays_pass_through():
    tree = {"w": torch.ones(2), "b": (torch.zeros(1), 3.0)}
    out = from_torch(tree)
    assert isinstance(out["w"], jax.Array) and out["b"][1] == 3.0
    back = to_torch(out)
    assert torch.equal(back["w"], tree["w"]) and back["b"][1] == 3.0


def test_zero_copy_on_cpu():
    t = torch.arange(4, dtype=torch.float64)
    x = from_torch(t)
    assert x.unsafe_buffer_pointer() == t.data_ptr()
    y = jnp.arange(4.0)
    assert to_torch(y).data_ptr() == y.unsafe_buffer_pointer()


def test_requires_grad_and_non_contiguous_and_conj():
    t = torch.arange(6.0, requires_grad=True)
    np.testing.assert_array_equal(np.asarray(from_torch(t)), np.arange(6.0))
    nc = torch.arange(6.0).reshape(2, 3).t()
    np.testing.assert_array_equal(np.asarray(from_torch(nc)), nc.numpy())
    z = torch.tensor([1 + 2j]).conj()
    np.testing.assert_array_equal(np.asarray(from_torch(z)), np.array([1 - 2j]))


def test_dict_order_is_kept():
    """The tutorial's zip(names, params.values()) pattern: keys in insertion order."""
    tree = {"b": torch.ones(1), "a": torch.ones(2), "c": {"z": torch.ones(3), "y": torch.ones(4)}}
    out = from_torch(tree)
    assert list(out) == ["b", "a", "c"] and list(out["c"]) == ["z", "y"]
    assert [v.shape for v in out["c"].values()] == [(3,), (4,)]
    back = to_torch(out)
    assert list(back) == ["b", "a", "c"] and list(back["c"]) == ["z", "y"]
    import collections

    od = collections.OrderedDict([("q", torch.ones(1)), ("p", torch.ones(2))])
    assert list(from_torch(od)) == ["q", "p"] and type(from_torch(od)) is collections.OrderedDict


def test_int64_kept_with_x64_and_narrowing_said_without():
    import jaxfunc

    t = torch.arange(3)  # int64
    assert from_torch(t).dtype == jnp.int64  # the suite runs with x64 on
    with jax.enable_x64(False):
        assert from_torch(t).dtype == jnp.int32  # JAX has no 64-bit types then
        with pytest.warns(jaxfunc.Float64Warning, match="float64 tensors became float32"):
            x = from_torch({"w": torch.ones(2, dtype=torch.float64)})
        assert x["w"].dtype == jnp.float32


def test_torch_tensor_input_names_from_torch():
    import jaxfunc

    with pytest.raises(
        TypeError, match=r"got a torch\.Tensor: convert it with jaxfunc\.interop\.from_torch"
    ):
        jaxfunc.func.grad(lambda x: x.sum())(torch.ones(3))
    with pytest.raises(TypeError, match=r"jaxfunc\.interop\.from_torch"):
        jaxfunc.func.vmap(lambda x: x)(torch.ones(3))
    with pytest.raises(TypeError, match=r"jaxfunc\.interop\.from_torch"):
        jaxfunc.autograd.functional.jacobian(lambda x: x, torch.ones(3))
