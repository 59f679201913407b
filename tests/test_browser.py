"""The built book in a real browser, at a 1280 px desktop and a 390 px phone.

Headless Chromium (Debian's `chromium`, driven by the `playwright` Python package with the system browser: no
browser download) loads every page of _build/html with every <details> opened and fails on what a reader
trips over: a table, figure or image wider than its column at 1280 px (at 390 px it may scroll inside its own
box, never the page), the scorecard not fitting a phone, a display equation that clips instead of scrolling,
raw LaTeX left in the text after MathJax ran, and a scorecard link that does not land on its claim.

CI builds the book first (.ci/run), so the checks run there; without _build/html, chromium or playwright the
page checks skip with the reason. The rules themselves are tested on small hand-made pages below.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("KDUTILS_BOOK_HTML") or ROOT / "_build" / "html")  # another build: set the variable
WIDTHS = (1280, 390)
CHROMIUM = os.environ.get("KDUTILS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

# Run inside each page (after every <details> is opened and MathJax has typeset): the page's problems as
# strings, its element ids, and the scorecard's links with the claim of their row.
MEASURE_JS = r"""
(strict) => {
  const problems = [];
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const aw = article.getBoundingClientRect().width;
  const vw = document.documentElement.clientWidth;
  const label = (el) => {
    const cap = el.closest('table') && el.closest('table').querySelector('caption');
    const head = el.querySelector && el.querySelector('th');
    let s = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
    const txt = (cap && cap.textContent) || (head && head.closest('tr').textContent) || el.getAttribute('alt') || '';
    return s + (txt ? ' "' + txt.trim().replace(/\s+/g, ' ').slice(0, 60) + '"' : '');
  };
  const scroller = (el) => {  // the nearest ancestor inside the article that clips or scrolls horizontally
    for (let c = el.parentElement; c && c !== article; c = c.parentElement) {
      const ox = getComputedStyle(c).overflowX;
      if (ox !== 'visible') return [c, ox];
    }
    return [null, 'visible'];
  };
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const blocks = article.querySelectorAll('table, img, figure, div.cell_output svg, .output svg');
  for (const el of blocks) {
    if (!visible(el)) continue;
    const w = Math.max(el.getBoundingClientRect().width, el.scrollWidth || 0);
    const [box, ox] = scroller(el);
    const room = box ? Math.min(box.clientWidth, aw) : aw;
    if (w <= room + 1) continue;
    const scrolls = box && (ox === 'auto' || ox === 'scroll') && box.getBoundingClientRect().width <= aw + 1;
    if (strict || !scrolls) {
      problems.push(`${label(el)} is ${Math.round(w)} px wide in a ${Math.round(room)} px column` +
                    (scrolls ? ' (it scrolls sideways)' : (box ? ` (cut off: overflow ${ox})` : '')));
    }
  }
  for (const el of article.querySelectorAll('mjx-container[display="true"]')) {
    if (!visible(el)) continue;
    const box = el.parentElement;
    const ox = getComputedStyle(el).overflowX;
    const wide = el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().width > aw + 1;
    if (wide && !(ox === 'auto' || ox === 'scroll'))
      problems.push(`a display equation is ${el.scrollWidth} px wide in ${Math.round(el.clientWidth)} px and does not scroll`);
  }
  if (document.documentElement.scrollWidth > vw + 1)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${vw} px window`);
  // Raw LaTeX: text outside code, scripts and rendered maths.
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .MathJax, mjx-assistive-mml';
  const raw = /(\$[^$\s][^$]{0,200}?\$|\\\(|\\\)|\\\[|\\\]|\\(frac|mathrm|mathcal|mathbb|alpha|tau|lVert|sum|begin)\b)/;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(skip) || !visible(p)) continue;
    const m = n.textContent.match(raw);
    if (m) {
      problems.push(`raw LaTeX in the text: "${n.textContent.trim().slice(Math.max(0, m.index - 20), m.index + 40)}"`);
      break;
    }
  }
  // A page with verdicts (a chapter's boxes, the scorecard) shows the first one on its first screen.
  const first = article.querySelector('.kd-vb-head, table.kd-scorecard td.kd-verdict');
  if (first) {
    const top = first.getBoundingClientRect().top + window.scrollY;
    if (top > window.innerHeight - 20)
      problems.push(`the first verdict starts at ${Math.round(top)} px, below the first screen (${window.innerHeight} px)`);
  }
  const ids = Array.from(document.querySelectorAll('[id]'), (e) => e.id);
  const anchors = {};
  for (const id of ids) {  // the text at each claim anchor (its "Claim. ..." paragraph), to check a link's landing
    const el = document.getElementById(id);
    if (id.startsWith('claim-')) anchors[id] = (el.textContent || '').replace(/\s+/g, ' ').slice(0, 4000);
  }
  const links = [];
  const card = document.querySelector('table.kd-scorecard');
  if (card) {
    for (const row of card.querySelectorAll('tbody tr')) {
      const claim = row.querySelector('td.kd-claim');
      for (const a of row.querySelectorAll('a[href]')) {
        links.push({href: a.href, text: a.textContent.trim(), claim: claim ? claim.textContent.trim() : '',
                    verdict: !!a.closest('td.kd-verdict')});
      }
    }
    const cw = card.getBoundingClientRect().width;
    if (cw > aw + 1) problems.push(`the scorecard is ${Math.round(cw)} px wide in a ${Math.round(aw)} px column`);
  }
  return {problems, anchors, links, hasCard: !!card};
}
"""


def _normal(text: str) -> str:
    """Letters and digits only, Greek spelled out: the page may show "τ = 1" where the claim says "tau = 1"."""
    text = text.lower().replace("τ", "tau").replace("α", "alpha").replace("η", "eta")
    return "".join(ch for ch in text if ch.isalnum())


def link_problems(links: list[dict], anchors: dict[str, dict[str, str]]) -> list[str]:
    """A scorecard link's problems: no text; and for a verdict's link (the paper's may go to the chapter's top),
    no #anchor, an anchor missing from its page, or one whose section does not state the link's claim.
    `anchors` maps page URL -> {id: text after the anchor}."""
    out = []
    for link in links:
        page, frag = urldefrag(link["href"])
        claim = link["claim"][:60]
        if not link["text"]:
            out.append(f"a scorecard link with no text (row {claim!r})")
        if not link.get("verdict", True):
            continue
        if not frag:
            out.append(f"scorecard link {link['text']!r} goes to the top of {page.rsplit('/', 1)[-1]}, not to its claim")
            continue
        text = anchors.get(page, {}).get(frag)
        if text is None:
            out.append(f"scorecard link {link['text']!r}: no #{frag} on {page.rsplit('/', 1)[-1]}")
        elif claim and _normal(claim)[:40] not in _normal(text):
            out.append(f"scorecard link {link['text']!r}: #{frag} on {page.rsplit('/', 1)[-1]} does not state "
                       f"its claim {claim!r}")
    return out


def _pages() -> list[Path]:
    """The book's pages: not its generated index and search pages, nor a page that only redirects."""
    return sorted(p for p in HTML.rglob("*.html")
                  if not {"_static", "_sources", "_images"} & set(p.parts) and p.name not in ("genindex.html", "search.html")
                  and 'http-equiv="refresh"' not in p.read_text(errors="replace")[:2000].lower())


def _need_browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(requirements.txt installs it)")


def _measure(page, url: str, width: int) -> dict:
    page.set_viewport_size({"width": width, "height": 900 if width >= 1000 else 844})  # a laptop; a phone
    page.goto(url, wait_until="load")
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
    return page.evaluate(MEASURE_JS, width >= 1000)


@pytest.fixture(scope="module")
def browser():
    sync_api = _need_browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _checked(browser, html: str, width: int, tmp_path: Path) -> dict:
    f = tmp_path / "page.html"
    f.write_text(html)
    page = browser.new_page()
    try:
        return _measure(page, f.as_uri(), width)
    finally:
        page.close()


ARTICLE = '<html><body style="margin:0"><article class="bd-article" style="max-width:600px">{}</article></body></html>'


def test_the_checks_catch_what_they_should(browser, tmp_path):
    """Each rule on a hand-made page: a wide table, the same table in a scroll box, raw LaTeX, a clipped
    equation box; and a scorecard link without an anchor."""
    wide = '<table><tr><td style="white-space:nowrap">' + "wide cell " * 120 + "</td></tr></table>"
    assert any("px wide" in p for p in _checked(browser, ARTICLE.format(wide), 1280, tmp_path)["problems"])
    boxed = f'<div style="overflow-x:auto">{wide}</div>'
    assert _checked(browser, ARTICLE.format(boxed), 1280, tmp_path)["problems"], "at 1280 px a table must fit"
    assert not _checked(browser, ARTICLE.format(boxed), 390, tmp_path)["problems"], "at 390 px it may scroll"
    cut = f'<div style="overflow-x:hidden">{wide}</div>'
    assert any("cut off" in p for p in _checked(browser, ARTICLE.format(cut), 390, tmp_path)["problems"])
    assert not _checked(browser, ARTICLE.format("<table><tr><td>fits</td></tr></table>"), 1280, tmp_path)["problems"]
    raw = _checked(browser, ARTICLE.format(r"<p>the loss $\tau^2 KL$ here</p>"), 1280, tmp_path)["problems"]
    assert any("raw LaTeX" in p for p in raw)
    assert not _checked(browser, ARTICLE.format(r"<pre>$x$ \frac</pre><p>costs 5 $ or more</p>"), 1280,
                        tmp_path)["problems"]
    low = '<div style="height:2000px"></div><div class="kd-vbox"><p class="kd-vb-head">✅ reproduced</p></div>'
    assert any("below the first screen" in p for p in _checked(browser, ARTICLE.format(low), 1280, tmp_path)["problems"])
    card = ('<table class="kd-scorecard"><tbody><tr><td class="kd-claim">Claim one holds.</td>'
            '<td><a href="a.html">Paper</a></td><td class="kd-verdict"><a href="a.html">✅ reproduced</a></td>'
            '</tr></tbody></table>')
    got = _checked(browser, ARTICLE.format(card), 1280, tmp_path)
    assert got["hasCard"] and link_problems(got["links"], {}) == [
        "scorecard link '✅ reproduced' goes to the top of a.html, not to its claim"]
    link = {"href": "file:///b/a.html#claim-one", "text": "✅", "claim": "Claim one holds."}
    assert link_problems([link], {"file:///b/a.html": {"claim-one": "Claim. Claim one holds. Verdict"}}) == []
    assert "does not state" in link_problems([link], {"file:///b/a.html": {"claim-one": "Claim two."}})[0]
    assert "no #claim-one" in link_problems([link], {"file:///b/a.html": {}})[0]


@pytest.mark.skipif(not HTML.is_dir(), reason="the book is not built (_build/html missing): run scripts/book.sh first")
def test_every_page_fits_and_renders_at_desktop_and_phone_width(browser):
    pages = _pages()
    assert pages, f"{HTML} holds no pages"
    problems: dict[str, list[str]] = {}
    anchors: dict[str, dict[str, str]] = {}
    links: list[dict] = []
    cards = 0
    tab = browser.new_page()
    for width in WIDTHS:
        for path in pages:
            got = _measure(tab, path.as_uri(), width)
            if got["problems"]:
                problems[f"{path.relative_to(HTML)} at {width} px"] = got["problems"]
            if width == WIDTHS[0]:
                anchors[path.as_uri()] = got["anchors"]
                links += got["links"]
                cards += got["hasCard"]
    tab.close()
    bad_links = link_problems(links, anchors) if cards else ["no page holds the scorecard (table.kd-scorecard)"]
    if bad_links:
        problems["scorecard links"] = bad_links
    assert not problems, "\n".join(f"{k}: " + "; ".join(v[:6]) + (f" (+{len(v) - 6} more)" if len(v) > 6 else "")
                                   for k, v in problems.items())


def screenshots(pages: list[str], out: Path, html: Path = HTML, full: bool = False) -> list[Path]:
    """First-screen (or full-page) PNGs of `pages` (paths relative to the built book) at both widths, for a
    screenshot tour: `python tests/test_browser.py OUT_DIR notebooks/scorecard book/findings ...`."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = b.new_page()
        for rel in pages:
            for width in WIDTHS:
                tab.set_viewport_size({"width": width, "height": 900 if width > 1000 else 844})
                tab.goto((html / f"{rel}.html").as_uri(), wait_until="load")
                tab.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || null")
                shot = out / f"{rel.replace('/', '_')}_{width}.png"
                tab.screenshot(path=str(shot), full_page=full)
                shots.append(shot)
        b.close()
    return shots


if __name__ == "__main__":
    import sys

    for s in screenshots(sys.argv[2:], Path(sys.argv[1]), full=os.environ.get("FULL") == "1"):
        print(s)
