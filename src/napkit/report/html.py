"""A static HTML page that gathers a run's tables and figures (no scripts, no network)."""

from __future__ import annotations

import html
from pathlib import Path


def table_html(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]], images: list[str]) -> Path:
    """Write ``index.html``: (heading, html body) sections, then the images (paths relative to it)."""
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}img{max-width:100%;margin:1em 0}"
    )
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    ]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.extend(f"<img src='{html.escape(img)}' alt='{html.escape(img)}'>" for img in images)
    p = Path(path)
    p.write_text("\n".join(parts), encoding="utf-8")
    return p
