"""README.md stays true: its Python examples run, and its two set-up commands are the ones
.ci/run executes."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    spaces = [{} for _ in blocks]
    for block, namespace in zip(blocks, spaces):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    # the first example's values, checked against the derivative by hand
    namespace = spaces[0]
    x = namespace["x"]
    np.testing.assert_allclose(namespace["dy_dx"], 2 * x + 2 * x * jnp.cos(x**2), rtol=1e-6)
    np.testing.assert_allclose(namespace["jac"], jnp.diag(namespace["dy_dx"]), atol=1e-6)


def test_setup_commands():
    for marker in ("demo-command", "test-command"):
        match = re.search(rf"<!-- {marker} -->\n```\n(.+)\n```", README)
        assert match, marker
    ci = (pathlib.Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
