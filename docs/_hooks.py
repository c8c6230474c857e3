"""MkDocs hooks for jaxfunc's documentation site (mkdocs.yml: ``hooks: [docs/_hooks.py]``).

- The API reference (``api.md``) is generated at build time from each public module's
  ``__all__``, so a name added to ``__all__`` is documented without touching the docs.
- The notebooks (``notebooks/*.ipynb``) and the benchmark plot live outside ``docs/``; the
  site carries them under the same paths, and the pages link to them as ``../notebooks/...``
  (so the links also work when the Markdown is read on GitHub). Every notebook is added to
  the "Notebooks" section of the navigation.
- Docstrings are written as doctests (``>>>`` without fences); a Markdown preprocessor turns
  such runs of lines into ``pycon`` code blocks, so the API pages show them as code.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import types
from pathlib import Path
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
#: Repository files outside docs/ that the site carries, under the same relative path.
CARRIED = ["notebooks/*.ipynb", "benchmarks/results/cpu_vs_n.png"]
API_PAGE = "api.md"
NOTEBOOKS_SECTION = "Notebooks"


# -- the API reference -----------------------------------------------------------------------


def public_modules(name: str = "jaxfunc") -> list[types.ModuleType]:
    """``jaxfunc`` and every module reachable through ``__all__`` entries that are modules."""
    module = importlib.import_module(name)
    found = [module]
    for member in getattr(module, "__all__", []):
        value = getattr(module, member)
        if isinstance(value, types.ModuleType) and value.__name__.startswith(name + "."):
            found += public_modules(value.__name__)
    return found


def public_names(module: types.ModuleType) -> list[str]:
    """What the module's ``__all__`` exports, less submodules and dunders (``__version__``)."""
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module.__name__} has no __all__: the API page needs one"
    return [
        n
        for n in names
        if not n.startswith("__") and not isinstance(getattr(module, n), types.ModuleType)
    ]


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


def api_markdown() -> str:
    lines = [
        "# API reference",
        "",
        "Every public name, generated from the docstrings of each public module's `__all__`.",
        "The examples in them run as doctests in the test suite.",
        "",
    ]
    sections = [(m, public_names(m)) for m in public_modules()]
    sections = [(m, names) for m, names in sections if names]
    for module, _ in sections:
        lines += [f"- [`{module.__name__}`](#{module.__name__.replace('.', '')})"]
    for module, names in sections:
        lines += ["", f"## `{module.__name__}`", ""]
        first = (inspect.getdoc(module) or "").strip().split("\n\n")[0]
        lines += [first, "", "| name | what it does |", "|---|---|"]
        for n in names:
            lines.append(f"| [`{n}`](#{module.__name__}.{n}) | {_summary(getattr(module, n))} |")
        for n in names:
            lines += ["", f"::: {module.__name__}.{n}"]
    return "\n".join(lines) + "\n"


# -- files and navigation ------------------------------------------------------------------------


def _notebook_title(path: Path) -> str:
    """The notebook's first Markdown heading, as plain text."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip().replace("`", "")
    return path.stem.replace("_", " ")


def _carried() -> list[Path]:
    return sorted(p for pattern in CARRIED for p in ROOT.glob(pattern))


@event_priority(100)  # before mkdocstrings reads the Markdown extensions
def on_config(config: Any) -> Any:
    config.markdown_extensions.append(DoctestBlocks())
    notebooks = [
        {_notebook_title(p): p.relative_to(ROOT).as_posix()}
        for p in _carried()
        if p.suffix == ".ipynb"
    ]
    for entry in config.nav or []:
        if isinstance(entry, dict) and NOTEBOOKS_SECTION in entry:
            entry[NOTEBOOKS_SECTION] = notebooks
            break
    else:
        raise ValueError(f"mkdocs.yml's nav has no {NOTEBOOKS_SECTION!r} section")
    return config


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, API_PAGE, content=api_markdown()))
    for path in _carried():
        # a File whose source folder is the repository root (mkdocs-jupyter wraps Files in a
        # way that loses the source path of File.generated)
        uri = path.relative_to(ROOT).as_posix()
        files.append(File(uri, str(ROOT), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links written for GitHub (``../notebooks/x.ipynb``) point at the carried copies."""
    for path in _carried():
        uri = path.relative_to(ROOT).as_posix()
        depth = page.file.src_uri.count("/")
        markdown = markdown.replace("../" * (depth + 1) + uri, "../" * depth + uri)
    return markdown


# -- doctest blocks in docstrings ----------------------------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")


class _DoctestPreprocessor(Preprocessor):
    """Wraps each run of ``>>>``/``...`` lines and their output (up to a blank line) in a
    ``pycon`` fence; fenced code is left alone."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_fence = in_doctest = False
        for line in lines:
            if in_doctest and not line.strip():
                out += ["```", ""]
                in_doctest = False
            if not in_doctest and _FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence and not in_doctest and line.lstrip().startswith(">>>"):
                out += ["", "```pycon"]
                in_doctest = True
            out.append(line)
        if in_doctest:
            out.append("```")
        return out


class DoctestBlocks(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        # before fenced blocks are read (superfences / fenced_code: 25), so they read ours
        md.preprocessors.register(_DoctestPreprocessor(md), "jaxfunc_doctest_blocks", 27)
