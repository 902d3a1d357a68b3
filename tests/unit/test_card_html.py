"""The HTML model card is self-contained: tables rendered, the card's own PNGs embedded, nothing else fetched."""
from __future__ import annotations

import base64

from tracking.card_html import render_html, write_html

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
                       "rkJggg==")


def test_tables_and_figures_inline(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    card = tmp_path / "model_card.md"
    card.write_text("# Model card: m v1\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![acc](a.png)\n\n![gone](missing.png)\n"
                    "\n![far](../x.png)\n\n<script>alert(1)</script>\n")
    page = write_html(card).read_text()
    assert "<title>Model card: m v1</title>" in page and "<td>1</td>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert 'src="missing.png"' in page and 'src="../x.png"' in page          # only the card's own files
    assert "<script>" not in page                                             # raw HTML in the card is escaped


def test_render_without_figures(tmp_path):
    assert "<h1>T</h1>" in render_html("# T\n", tmp_path)
