"""Render-neutral report blocks and their two renderers: self-contained HTML and Markdown.

The sections are built once as a list of blocks (:class:`Heading`, :class:`Paragraph`,
:class:`Table`, :class:`Image`, :class:`Details`); :func:`to_html` and :func:`to_markdown` render
the same list, so the two files cannot disagree. Every text is escaped here (HTML: ``html.escape``;
Markdown: pipes and backticks), so callers pass raw strings, including LLM-written code.

The HTML page is self-contained: inline CSS, images as ``data:image/png;base64`` URIs, and no
external resource of any kind.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str
    css: str = ""  # "note" or "warn" in HTML


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    empty: str = "nothing to show yet"


@dataclass
class Image:
    name: str  # file stem for the Markdown copy, e.g. "rounds"
    png: bytes
    caption: str = ""


@dataclass
class Details:
    """A collapsible block: a summary line, key/value lines, and preformatted text."""

    summary: str
    lines: list[str] = field(default_factory=list)
    pre: str = ""


Block = Heading | Paragraph | Table | Image | Details

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
pre{background:#f6f8fa;padding:.7em;overflow-x:auto;font-size:.85em}
details{margin:.4em 0;border:1px solid #ddd;padding:.3em .6em}summary{cursor:pointer}
.note{color:#555;font-size:.9em}.warn{background:#fff4e5;border-left:4px solid #e69500;
padding:.5em .8em}figure{margin:1em 0}figcaption{font-size:.85em;color:#555}
img{max-width:100%}
"""


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _html_table(block: Table) -> str:
    if not block.rows:
        return f'<p class="note">{_esc(block.empty)}</p>'
    head = "".join(f"<th>{_esc(h)}</th>" for h in block.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_esc(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        css = f' class="{_esc(block.css)}"' if block.css else ""
        return f"<p{css}>{_esc(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        cap = f"<figcaption>{_esc(block.caption)}</figcaption>" if block.caption else ""
        alt = _esc(block.caption or block.name)
        return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">{cap}</figure>'
    lines = "".join(f"<div>{_esc(line)}</div>" for line in block.lines)
    pre = f"<pre><code>{_esc(block.pre)}</code></pre>" if block.pre else ""
    return f"<details><summary>{_esc(block.summary)}</summary>{lines}{pre}</details>"


def to_html(title: str, blocks: Sequence[Block]) -> str:
    """A complete, self-contained HTML page."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n<h1>{_esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def _md_cell(text: str) -> str:
    return (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("\n", " ")
    )


def _md_fence(text: str) -> str:
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}\n{text.rstrip()}\n{fence}"


def _longest_backtick_run(text: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best


def _md_block(block: Block, image_paths: dict[str, str]) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return f"> {block.text}" if block.css == "warn" else block.text
    if isinstance(block, Table):
        if not block.rows:
            return f"_{block.empty}_"
        lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |"]
        lines.append("|" + "---|" * len(block.headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        path = image_paths.get(block.name)
        return f"![{block.caption or block.name}]({path})" if path else ""
    parts = [f"**{block.summary}**", *(f"- {line}" for line in block.lines)]
    if block.pre:
        parts.append(_md_fence(block.pre))
    return "\n\n".join(parts)


def to_markdown(title: str, blocks: Sequence[Block], image_paths: dict[str, str]) -> str:
    """The same report as Markdown; images link to ``image_paths[name]`` (relative paths)."""
    rendered = [_md_block(b, image_paths) for b in blocks]
    return f"# {title}\n\n" + "\n\n".join(r for r in rendered if r) + "\n"
