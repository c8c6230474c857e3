"""The python examples of the docs pages run, in order, each page in one namespace."""

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = {"modules.md": ("equinox",), "porting.md": ()}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_examples_run(page):
    for module in PAGES[page]:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, page
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), namespace)
