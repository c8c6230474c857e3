"""jaxfunc across processes: examples/data_parallel.py on 2 processes joined by
``jax.distributed.initialize`` (CPU, gloo collectives, loopback only), 4 virtual devices each.

The batch is split over all 8 devices of the global mesh; the training step runs inside
``jax.jit`` and eagerly through jaxfunc's compile cache (eager, compile, cached). Checked:
both processes see 8 devices and end with identical parameters; every step's gradients and
losses, and the parameters after 3 steps, equal one process computing with plain ``jax.grad``
on the whole batch; the eager path reached the compiled program; every socket the workers
opened is on the loopback interface. The docs page shows the tested file verbatim.

Each worker and the whole run are bounded in time, and the workers are killed whatever happens.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "data_parallel.py"
DOC = ROOT / "docs" / "multi-process.md"
NUM_PROCESSES = 2
LOCAL_DEVICES = 4
TIMEOUT_S = 240  # the run takes ~10 s alone; this is for a loaded 2-core machine

# Runs the example's main() and adds what only the harness looks at: the compile cache's
# counters and this process's TCP sockets (read from /proc just before the example shuts
# jax.distributed down, while they are all still open).
WRAPPER = r"""
import json, os, runpy, sys
import jax
script, coordinator, n, i = sys.argv[1:]
module = runpy.run_path(script, run_name="data_parallel")
extra = {}

def sockets():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    found.append({"table": table, "local": cols[1], "remote": cols[2], "state": cols[3]})
    return found

shutdown = jax.distributed.shutdown
def shutdown_after_looking():
    extra["sockets"] = sockets() if sys.platform == "linux" else None
    shutdown()
jax.distributed.shutdown = shutdown_after_looking

result = module["main"](coordinator, int(n), int(i))
from jaxfunc._jit import _cache
result["cache_stats"] = _cache.stats()
result.update(extra)
print("RESULT " + json.dumps(result))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hex_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address column of /proc/net/tcp{,6} (hex, host byte order per 32-bit word)."""
    address = text.split(":")[0]
    raw = bytes.fromhex(address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _is_loopback(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _run_workers(tmp_path: Path) -> list[dict[str, Any]]:
    coordinator = f"127.0.0.1:{_free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={LOCAL_DEVICES}"
    ).strip()
    procs, logs = [], []
    try:
        for i in range(NUM_PROCESSES):
            out = open(tmp_path / f"worker{i}.out", "w+")  # noqa: SIM115 - closed below
            err = open(tmp_path / f"worker{i}.err", "w+")  # noqa: SIM115
            logs.append((out, err))
            cmd = [sys.executable, "-c", WRAPPER, str(SCRIPT), coordinator, str(NUM_PROCESSES)]
            procs.append(
                subprocess.Popen(
                    [*cmd, str(i)],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=tmp_path,
                    start_new_session=True,  # its own process group, killed as one below
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                break
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    results, report = [], []
    for i, (p, (out, err)) in enumerate(zip(procs, logs)):
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        out.close()
        err.close()
        report.append(f"--- worker {i}: exit {p.returncode}\n{stdout[-3000:]}\n{stderr[-8000:]}")
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        results.append(json.loads(lines[-1][len("RESULT ") :]) if lines else None)
    ok = all(p.returncode == 0 for p in procs) and all(r is not None for r in results)
    assert ok, (
        f"the {NUM_PROCESSES}-process run failed or passed its {TIMEOUT_S} s limit "
        "(negative exit: killed)\n" + "\n".join(report)
    )
    return results


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("data_parallel_reference", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _single_process_reference() -> dict[str, Any]:
    """One process, one device, the whole batch, plain ``jax.grad``: the result to match."""
    ex = _load_example()
    assert jax.config.jax_enable_x64, "conftest turns on float64, as the example does"
    x, y = ex.make_batch()
    params = {k: jax.numpy.asarray(v) for k, v in ex.init_params().items()}
    grads, losses = [], []
    for _ in range(ex.STEPS):
        value, g = jax.value_and_grad(ex.loss)(params, x, y)
        params = jax.tree.map(lambda p, g: p - ex.LEARNING_RATE * g, params, g)
        grads.append(g)
        losses.append(value)
    return {"params": params, "grads": grads, "losses": losses}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[dict[str, Any]]:
    host = socket.gethostname()
    resolved = ipaddress.ip_address(socket.gethostbyname(host))
    # gloo listens on the address the host name resolves to (JAX gives it no other); the test
    # must not send traffic anywhere but loopback, so it refuses to start otherwise.
    assert resolved.is_loopback, (
        f"this host's name {host!r} resolves to {resolved}, not a loopback address: gloo "
        f"would listen there. Map it to loopback first (e.g. '127.0.0.1 {host}' in /etc/hosts)."
    )
    return _run_workers(tmp_path_factory.mktemp("multiprocess"))


def test_two_processes_eight_devices(runs):
    assert sorted(r["process_index"] for r in runs) == list(range(NUM_PROCESSES))
    for r in runs:
        assert r["process_count"] == NUM_PROCESSES
        assert r["local_device_count"] == LOCAL_DEVICES
        assert r["device_count"] == NUM_PROCESSES * LOCAL_DEVICES
        assert r["batch_shards"] == NUM_PROCESSES * LOCAL_DEVICES
        assert r["params_replicated"]


@pytest.mark.parametrize("path", ["jit", "eager"])
def test_same_parameters_on_every_process(runs, path):
    first = runs[0][path]
    for r in runs[1:]:
        assert r[path]["params"] == first["params"]  # bit for bit
        assert r[path]["grads"] == first["grads"]


@pytest.mark.parametrize("path", ["jit", "eager"])
def test_equal_to_one_process_on_the_whole_batch(runs, path):
    want = _single_process_reference()
    for r in runs:
        got = r[path]
        for key in ("params", "grads", "losses"):
            # got holds nested lists where want holds arrays: want's structure is the prefix
            jax.tree.map(
                lambda w, g: np.testing.assert_allclose(
                    np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-12
                ),
                want[key],
                got[key],
            )
        # and training moved: the parameters after 3 steps are not the initial ones
        start = _load_example().init_params()
        assert not np.allclose(np.asarray(got["params"]["w1"]), start["w1"])


def test_eager_calls_ran_the_compiled_program(runs):
    for r in runs:
        stats = r["cache_stats"]
        assert stats.get("trace", 0) >= 1, stats  # the first call compiled
        assert stats.get("hit", 0) >= 3, stats  # every call ran the compiled program


@pytest.mark.skipif(sys.platform != "linux", reason="reads the sockets from Linux's /proc")
def test_every_socket_is_loopback(runs):
    for r in runs:
        assert r["sockets"], "no TCP socket found: the check did not look"
        for s in r["sockets"]:
            local = _hex_address(s["local"])
            assert _is_loopback(local), s
            if s["state"] != "0A":  # a connection, not a listener: its peer is local too
                assert _is_loopback(_hex_address(s["remote"])), s


def test_the_docs_show_the_tested_script():
    text = DOC.read_text()
    match = re.search(r'```python title="examples/data_parallel.py"\n(.*?)```', text, re.S)
    assert match, f"{DOC.name} has no code block titled examples/data_parallel.py"
    assert match.group(1) == SCRIPT.read_text(), f"{DOC.name} differs from {SCRIPT.name}"
