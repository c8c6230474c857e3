"""README.md and the docs stay true: their Python examples run, and the README's set-up
commands are the ones .ci/run executes.

Every ```python block of README.md and of each docs/*.md page runs, in order, each page in a
fresh namespace (later blocks continue earlier ones). A block whose fence carries more than the
language (```python title="examples/data_parallel.py"```) shows a file tested elsewhere
(tests/test_multiprocess.py) and is not run here.
"""

import pathlib
import re

import jax.numpy as jnp
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def run_blocks(text: str, name: str) -> dict:
    namespace: dict = {}
    for block in python_blocks(text):
        exec(compile(block, name, "exec"), namespace)
    return namespace


def test_readme_examples_run():
    assert len(python_blocks(README)) >= 2
    ns = run_blocks(README, "README.md")
    # the first example's values, checked against the derivative by hand
    x, dy_dx = ns["x"], ns["dy_dx"]
    np.testing.assert_allclose(dy_dx, 2 * x + 2 * x * jnp.cos(x**2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ns["g"], dy_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ns["jac"], jnp.diag(dy_dx), rtol=1e-5, atol=1e-5)
    # the no_grad example: d/dx (x - const) = 1
    assert float(ns["dh"]) == 1.0


@pytest.mark.parametrize("page", [p.name for p in DOCS])
def test_docs_examples_run(page):
    run_blocks((ROOT / "docs" / page).read_text(), f"docs/{page}")


def test_docs_have_examples():
    """The examples moved out of the README are still run: some pages have blocks."""
    with_blocks = [p.name for p in DOCS if python_blocks(p.read_text())]
    assert {"index.md", "getting-started.md", "no-grad.md"} <= set(with_blocks), with_blocks


def test_setup_commands():
    commands = {}
    for marker in ("demo-command", "test-command", "oracle-command"):
        match = re.search(rf"^<!-- {marker} -->\n```\n(.+)\n```", README, re.M)
        assert match, marker
        commands[marker] = match.group(1)
    # the newcomer's test command installs no torch; the contributors' one does
    assert "oracle" not in commands["test-command"] and "torch" not in commands["test-command"]
    assert "[test,oracle]" in commands["oracle-command"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci and "oracle-command" in ci
