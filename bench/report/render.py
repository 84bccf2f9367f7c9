"""A small document model rendered twice: GitHub markdown and one self-contained HTML file.

Every string is escaped on output (``html.escape`` in HTML; entities and backslash escapes
in markdown), so that a variant, config value or file name such as ``<script>`` shows as
text. The HTML embeds its images as base64 PNG data URIs and references nothing outside
itself; it is also well-formed XML, so a strict parser can read it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from pathlib import Path


@dataclasses.dataclass
class Code:
    text: str


@dataclasses.dataclass
class Bold:
    text: str


Inline = str | Code | Bold


@dataclasses.dataclass
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclasses.dataclass
class Para:
    parts: list[Inline]


@dataclasses.dataclass
class Bullets:
    items: list[list[Inline]]


@dataclasses.dataclass
class Table:
    header: list[str]
    rows: list[list[Inline]]
    numeric: list[bool] | None = None  # right-align these columns


@dataclasses.dataclass
class Image:
    path: Path  # a PNG written by the report
    alt: str


@dataclasses.dataclass
class Details:
    """Blocks a reader opens on demand: ``<details>`` in HTML (closed) and in GitHub markdown."""

    summary: str
    blocks: list


Block = Heading | Para | Bullets | Table | Image | Details


def _parts(parts) -> list[Inline]:
    return [parts] if isinstance(parts, (str, Code, Bold)) else list(parts)


# -- markdown ------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|#~!])")


def md_escape(text) -> str:
    """Literal text in GitHub markdown (also inside a table cell)."""
    text = re.sub(r"\s+", " ", str(text))  # no line breaks: they would end a table row
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_inline(parts) -> str:
    out = []
    for part in _parts(parts):
        if isinstance(part, Code):
            out.append(f"<code>{md_escape(part.text)}</code>")
        elif isinstance(part, Bold):  # spaces outside the markers, or ** would not close
            text = md_escape(part.text)
            lead, core, trail = re.match(r"^(\s*)(.*?)(\s*)$", text, re.S).groups()
            out.append(f"{lead}**{core}**{trail}" if core else text)
        else:
            out.append(md_escape(part))
    return "".join(out)


def to_markdown(blocks: list[Block], base: Path) -> str:
    """Markdown with images linked relative to ``base`` (the folder report.md is written to)."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + md_escape(block.text), ""]
        elif isinstance(block, Para):
            lines += [md_inline(block.parts), ""]
        elif isinstance(block, Bullets):
            lines += [f"- {md_inline(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            numeric = block.numeric or [False] * len(block.header)
            lines.append("| " + " | ".join(md_escape(h) for h in block.header) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
            lines += ["| " + " | ".join(md_inline(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            target = Path(block.path).resolve().relative_to(Path(base).resolve()).as_posix()
            lines += [f"![{md_escape(block.alt)}](<{target}>)", ""]
        elif isinstance(block, Details):  # GitHub renders it; a blank line lets markdown in
            lines += [f"<details><summary>{md_escape(block.summary)}</summary>", "",
                      to_markdown(block.blocks, base), "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- HTML ----------------------------------------------------------------------------------
def h(text) -> str:
    return html.escape(str(text), quote=True)


def html_inline(parts) -> str:
    out = []
    for part in _parts(parts):
        if isinstance(part, Code):
            out.append(f"<code>{h(part.text)}</code>")
        elif isinstance(part, Bold):
            out.append(f"<strong>{h(part.text)}</strong>")
        else:
            out.append(h(part))
    return "".join(out)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 76em;
       padding: 0 1em; color: #1f2328; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { background: #f6f8fa; padding: 0 0.25em; border-radius: 3px; }
div.table { max-width: 100%; overflow-x: auto; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
img { max-width: 100%; border: 1px solid #d0d7de; margin: 0.4em 0 1.2em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; margin-top: 1.8em; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{h(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + _html_body(blocks)
        + "\n</body></html>\n"
    )


def _html_body(blocks: list[Block]) -> str:
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{h(block.anchor)}"' if block.anchor else ""
            body.append(f"<h{block.level}{anchor}>{h(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{html_inline(block.parts)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{html_inline(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Table):
            numeric = block.numeric or [False] * len(block.header)
            head = "".join(f"<th>{h(c)}</th>" for c in block.header)
            rows = "".join(
                "<tr>" + "".join(
                    f'<td class="num">{html_inline(c)}</td>' if n else f"<td>{html_inline(c)}</td>"
                    for c, n in zip(row, numeric, strict=False)
                ) + "</tr>"
                for row in block.rows
            )
            # a table wider than the page scrolls in its own box; the page never scrolls sideways
            body.append(f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
                        "</table></div>")
        elif isinstance(block, Image):
            body.append(f'<figure><img src="{data_uri(block.path)}" alt="{h(block.alt)}"/>'
                        f"<figcaption>{h(block.alt)}</figcaption></figure>")
        elif isinstance(block, Details):
            inner = _html_body(block.blocks)
            body.append(f"<details><summary>{h(block.summary)}</summary>\n{inner}\n</details>")
    return "\n".join(body)
