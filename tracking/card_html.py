"""The model card as one self-contained HTML file (``model_card.html``), so that MLflow's artefact viewer shows
it rendered, tables and figures included: MLflow renders ``.html`` artefacts in the run's Artifacts tab but
shows Markdown as plain text and cannot resolve a Markdown file's relative image links. The figures are
embedded as base64 PNG data URIs; the Markdown card beside it stays the source."""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:1.5em auto;padding:0 1em;line-height:1.45}"
         "table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:right}th{background:#f3f3f3}img{max-width:100%}code,pre{background:#f6f6f6}"
         "pre{padding:.6em;overflow-x:auto}")


def render_html(markdown_text: str, figures_dir: Path, title: str = "Model card") -> str:
    """``markdown_text`` as an HTML page whose ``<img src="NAME.png">`` are replaced by the PNG's bytes."""
    from markdown_it import MarkdownIt
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def inline(m: re.Match) -> str:
        path = figures_dir / html.unescape(m.group(1))
        if path.suffix.lower() != ".png" or not path.is_file() or path.parent.resolve() != figures_dir.resolve():
            return m.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'
    body = re.sub(r'src="([^"/:]+)"', inline, body)
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def write_html(card: Path) -> Path:
    """Write ``model_card.html`` beside the Markdown ``card``."""
    card = Path(card)
    text = card.read_text()
    first = text.splitlines()[0].lstrip("# ").strip() if text else "Model card"
    out = card.with_suffix(".html")
    out.write_text(render_html(text, card.parent, first))
    return out
