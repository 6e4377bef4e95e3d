"""The golden reports judged by real tools (``tests/golden/report``, made by tests/test_report.py).

* HTML: opened in headless Chromium (Debian ``chromium``, over the DevTools protocol) at desktop
  and phone widths: the page loads with no console error, no CSP violation and no exception,
  the lineage SVG is present, visible and has one box per lineage node, the page does not
  scroll sideways on a phone (wide tables scroll inside their own box), a screenshot is taken
  and the page prints to PDF.
* Markdown: the Mermaid block is parsed and rendered by Mermaid itself (npm ``mermaid``, run in
  the same Chromium), which must draw one node per lineage node.
* JSON: ``check-jsonschema`` against ``docs/report.v1.schema.json``, itself checked against the
  JSON Schema metaschema.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cdp import Browser, Page
from tests.judges import require_judge

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "report"
SCHEMA = REPO / "docs" / "report.v1.schema.json"
HTML = sorted(GOLDEN.glob("*/*.html"))
MARKDOWN = [*sorted(GOLDEN.glob("*/*.md")), REPO / "README.md"]
JSON = sorted(GOLDEN.glob("*/*.json"))
MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.S | re.M)

pytestmark = pytest.mark.judge


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(require_judge("chromium")) as opened:
        yield opened


def _lineage_nodes(path: Path) -> int:
    """The lineage's node count, from the JSON report beside ``path`` (README.md shows the
    fraud example's prod lineage)."""
    if path.name == "README.md":
        path = GOLDEN / "fraud-scoring" / "prod.md"
    data = json.loads(path.with_suffix(".json").read_text())
    return len(data["lineage"]["nodes"])


@pytest.mark.parametrize("html", HTML, ids=_name)
def test_html_report_renders_in_chromium(browser: Browser, html: Path) -> None:
    for width, height in ((1280, 900), (390, 844)):
        page = Page(browser, width, height)
        page.open(html)
        box = page.evaluate(
            """(() => {
              const svg = document.querySelector('svg.lineage');
              if (!svg) return null;
              const r = svg.getBoundingClientRect(), s = getComputedStyle(svg);
              return {w: r.width, h: r.height, visibility: s.visibility, display: s.display,
                      nodes: svg.querySelectorAll('g.node').length,
                      title: svg.querySelector('title').textContent,
                      overflow: document.documentElement.scrollWidth - window.innerWidth,
                      headings: document.querySelectorAll('h1').length,
                      headers: document.querySelectorAll('th[scope]').length};
            })()"""
        )
        assert box is not None, "no lineage SVG"
        assert box["w"] > 100 and box["h"] > 50, box
        assert (box["visibility"], box["display"]) == ("visible", "block"), box
        assert box["nodes"] == _lineage_nodes(html)
        assert box["title"].startswith("Lineage of ")
        assert box["overflow"] <= 0, f"the page scrolls sideways at {width}px: {box}"
        assert box["headings"] == 1 and box["headers"] > 0
        shot = page.screenshot()
        assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
        printed = page.call("Page.printToPDF", printBackground=True)["data"]
        assert len(printed) > 1_000
        assert page.problems() == []


@pytest.mark.parametrize("markdown", MARKDOWN, ids=_name)
def test_mermaid_block_parses_and_renders(browser: Browser, markdown: Path, tmp_path: Path) -> None:
    script = Path(require_judge("mermaid"))
    blocks = MERMAID_BLOCK.findall(markdown.read_text())
    assert len(blocks) == 1
    page_file = tmp_path / "mermaid.html"
    page_file.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><script src="{script.as_uri()}">'
        "</script></head><body></body></html>"
    )
    page = Page(browser)
    page.open(page_file)
    drawn = page.evaluate(
        f"""(async () => {{
          mermaid.initialize({{startOnLoad: false, securityLevel: 'strict'}});
          const text = {json.dumps(blocks[0])};
          const parsed = await mermaid.parse(text);
          const {{svg}} = await mermaid.render('lineage', text);
          const holder = document.createElement('div');
          holder.innerHTML = svg;
          return {{type: parsed.diagramType, nodes: holder.querySelectorAll('g.node').length,
                   scripts: holder.querySelectorAll('script').length}};
        }})()"""
    )
    assert drawn["type"] == "flowchart-v2"
    assert drawn["nodes"] == _lineage_nodes(markdown)
    assert drawn["scripts"] == 0
    assert page.problems() == []


def test_json_reports_match_the_schema() -> None:
    judge = require_judge("check-jsonschema")
    meta = subprocess.run(
        [judge, "--check-metaschema", str(SCHEMA)], capture_output=True, text=True, check=False
    )
    assert meta.returncode == 0, meta.stdout + meta.stderr
    assert JSON, "no golden JSON reports"
    proc = subprocess.run(
        [judge, "--schemafile", str(SCHEMA), *map(str, JSON)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
