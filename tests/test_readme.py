"""README.md stays true: its Python examples run, and its two set-up commands are the ones
.ci/run executes."""

import importlib.util
import pathlib
import re

import jax.numpy as jnp
import numpy as np

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    # the first example's values, checked against the derivative by hand
    x, dy_dx = namespace["x"], namespace["dy_dx"]
    np.testing.assert_allclose(dy_dx, 2 * x + 2 * x * jnp.cos(x**2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(namespace["jac"], jnp.diag(dy_dx), rtol=1e-5, atol=1e-5)
    for block in blocks[1:]:  # later examples continue the first one's session
        if "import equinox" in block and importlib.util.find_spec("equinox") is None:
            continue  # the Modules example needs the optional equinox (in the test extra)
        exec(compile(block, "README.md", "exec"), namespace)


def test_setup_commands():
    for marker in ("demo-command", "test-command"):
        match = re.search(rf"<!-- {marker} -->\n```\n(.+)\n```", README)
        assert match, marker
    ci = (pathlib.Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
