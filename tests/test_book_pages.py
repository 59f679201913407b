"""The built book as a reader sees it: no test scaffolding, no tracebacks, no NaN cells and no paths of the
machine that built it on any page.

CI builds the book (scripts/book.sh) before the tests, so _build/html exists there; elsewhere the page scan is
skipped with the reason. The notebook checks below need no build.
"""
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("KDUTILS_BOOK_HTML") or ROOT / "_build" / "html")  # another build: set the variable
NAN_CELL = re.compile(r"<t[dh][^>]*>\s*(?:NaN|nan|<NA>)\s*</t[dh]>")
# Notebooks whose cells this test holds to "results, not machinery" (the reader's-book pages).
# The checkout and the home folder of whoever built the book: a reader's copy must not show them.
LOCAL_PATHS = (str(ROOT) + "/", str(Path.home()) + "/")
READER_NOTEBOOKS = ("scorecard", "benchmarks", "invariance_modelnet_demo", "invariance_data")


def _pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


def _problems(text: str) -> list[str]:
    found = []
    if "NBVAL" in text:
        found.append("an nbval marker (NBVAL)")
    if "Traceback" in text:
        found.append("a Traceback")
    m = NAN_CELL.search(text)
    if m:
        found.append(f"a NaN table cell ({m.group(0)[:60]})")
    for local in LOCAL_PATHS:
        if local in text:
            found.append(f"a path of the building machine ({local})")
    return found


def test_the_scan_catches_what_it_should():
    assert _problems("<td>NaN</td>") and _problems('<td class="x"> nan </td>') and _problems("# NBVAL_SKIP")
    assert _problems("Traceback (most recent call last)")
    assert not _problems("<td>—</td><td>NaNo</td><p>Banana</p>")
    assert _problems(f"<code>{ROOT}/results/hinton_mnist/x.json</code>")


@pytest.mark.skipif(not HTML.is_dir(), reason="the book is not built (_build/html missing): run scripts/book.sh first")
def test_no_page_shows_scaffolding_tracebacks_or_nan():
    pages = _pages()
    assert pages, f"{HTML} holds no pages"
    bad = {str(p.relative_to(HTML)): probs for p in pages if (probs := _problems(p.read_text(errors="replace")))}
    assert not bad, "pages a reader would trip on: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in bad.items())


@pytest.mark.skipif(not HTML.is_dir(), reason="the book is not built (_build/html missing): run scripts/book.sh first")
def test_maths_is_served_locally():
    methods = (HTML / "book" / "methods.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in methods and "cdn.jsdelivr" not in methods
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_nbval_honours_the_cell_tags():
    """The notebooks mark cells with tags, not comments: check nbval reads those tags as the markers."""
    from nbval.plugin import find_metadata_tags

    assert dict(find_metadata_tags({"tags": ["nbval-ignore-output", "remove-input"]})) == {"check": False}
    assert dict(find_metadata_tags({"tags": ["nbval-skip"]})) == {"skip": True}


@pytest.mark.parametrize("name", READER_NOTEBOOKS)
def test_reader_notebooks_hide_code_and_carry_no_markers(name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be papermill's parameters"
    for c in code:
        src = "".join(c["source"])
        tags = set(c["metadata"].get("tags", []))
        assert "NBVAL" not in src, f"{name}: an nbval comment marker in a cell (use a tag): {src[:60]!r}"
        assert tags & {"hide-input", "remove-input", "remove-cell"}, f"{name}: code shown to readers: {src[:60]!r}"
        for out in c.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert text.strip() not in ("True", "[True, True, True]"), f"{name}: a cell that only prints True"


@pytest.mark.skipif(not HTML.is_dir(), reason="the book is not built (_build/html missing): run scripts/book.sh first")
def test_a_downloaded_notebook_shows_the_page_not_the_smoke_profile():
    """The .ipynb behind each page's download button is the notebook as executed for the page (see
    _ext/executed_downloads.py), not the committed copy: the scorecard's says the book's profile."""
    nb = json.loads((HTML / "_sources" / "notebooks" / "scorecard.ipynb").read_text())
    text = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "At the `cpu` profile" in text, "the downloaded scorecard does not show the page's outputs"


def test_executed_downloads_replace_only_notebooks_that_were_executed(tmp_path):
    import sys
    sys.path.insert(0, str(ROOT / "_ext"))
    import executed_downloads as ed
    import nbformat

    (tmp_path / "nb").mkdir()
    for name in ("a", "b"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), tmp_path / "nb" / f"{name}.ipynb")

    def executed(path):
        if path.stem != "a":
            return None
        nb = nbformat.read(path, as_version=4)
        nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
        return nb

    assert ed.replace_sources(tmp_path, executed) == ["nb/a.ipynb"]
    assert nbformat.read(tmp_path / "nb" / "a.ipynb", as_version=4).cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert nbformat.read(tmp_path / "nb" / "b.ipynb", as_version=4).cells[0].outputs == []
