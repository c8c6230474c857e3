"""Data-parallel training with jaxfunc across processes (``jax.distributed``).

Every process runs this same file. Each owns some devices (here 4 virtual CPU devices); the
batch is split over the devices of all processes, the parameters are replicated, and the
gradients from ``jaxfunc.func`` come out averaged over the whole batch, on every process::

    export JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=4
    python data_parallel.py --coordinator 127.0.0.1:12345 --num-processes 2 --process-id 0 &
    python data_parallel.py --coordinator 127.0.0.1:12345 --num-processes 2 --process-id 1

The training step runs twice: inside ``jax.jit`` and eagerly, where jaxfunc's compile cache
compiles at the first call and reuses the program from then on.
tests/test_multiprocess.py runs this file on two processes and compares the result with one
process computing on the whole batch.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxfunc

LEARNING_RATE = 0.1
STEPS = 3


def init_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"w1": rng.normal(size=(4, 16)), "b1": np.zeros(16), "w2": rng.normal(size=(16,))}


def make_batch() -> tuple[np.ndarray, np.ndarray]:
    """The global batch: 64 examples, 8 per device on 8 devices."""
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 4)), rng.normal(size=(64,))


def loss(params, x, y):
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


def sgd(params, grads):
    return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads)


@jax.jit
def train_step(params, x, y):
    grads, value = jaxfunc.func.grad_and_value(loss)(params, x, y)
    return sgd(params, grads), grads, value


def main(coordinator: str, num_processes: int, process_id: int) -> dict:
    jax.config.update("jax_enable_x64", True)  # float64, so the test can compare to 1e-12
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        coordinator_bind_address=coordinator,  # listen where the others connect, nowhere else
        initialization_timeout=120,
    )

    mesh = Mesh(np.array(jax.devices()), ("data",))  # every device of every process
    split = NamedSharding(mesh, P("data"))  # the batch axis, split over the mesh
    replicated = NamedSharding(mesh, P())

    def global_array(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
        # Each process builds the same host array and puts its own slices on its devices.
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    x_host, y_host = make_batch()
    x, y = global_array(x_host, split), global_array(y_host, split)
    params = {k: global_array(v, replicated) for k, v in init_params().items()}

    history = {}

    # 1. The training step inside jax.jit: jaxfunc's grad is plain JAX there.
    p, grads, losses = params, [], []
    for _ in range(STEPS):
        p, g, value = train_step(p, x, y)
        grads.append(g)
        losses.append(value)
    history["jit"] = (p, grads, losses)

    # 2. The same step eagerly: call 1 compiles, calls 2 and 3 reuse the cached program;
    # the arrays keep their shardings throughout.
    grad_and_value = jaxfunc.func.grad_and_value(loss)
    p, grads, losses = params, [], []
    for _ in range(STEPS):
        g, value = grad_and_value(p, x, y)
        p = sgd(p, g)
        grads.append(g)
        losses.append(value)
    history["eager"] = (p, grads, losses)

    def to_host(tree):  # replicated arrays: every process holds the whole value
        return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)).tolist(), tree)

    result = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "batch_shards": len(x.sharding.device_set),
        "params_replicated": all(a.sharding.is_fully_replicated for a in jax.tree.leaves(p)),
    }
    for path, (p, grads, losses) in history.items():
        result[path] = {"params": to_host(p), "grads": to_host(grads), "losses": to_host(losses)}
    jax.distributed.shutdown()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", required=True, help="host:port of process 0")
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--process-id", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(main(args.coordinator, args.num_processes, args.process_id)))
