"""A static HTML page (no scripts, no fonts, no network) and its atomic publication as a folder.

The page is written with its images into a fresh temporary folder beside the target, then
moved into place, so that a failure never leaves a half-written report behind.
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from napkit.errors import NapkitError
from napkit.report.fmt import fmt
from napkit.staging import check_parent, kept_in_place, staging_folder

MARKER = ".napkit-report"  # names a folder as a napkit report, which a new report may replace
DRAWN_PREFIX = "cex_"  # file names of drawn counterexamples (their number varies between runs)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1180px;
margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:3px 9px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.text,th.text{text-align:left}
tr:nth-child(even) td{background:#fafafa}
.verified{color:#1b5e20;font-weight:600}.falsified{color:#b71c1c;font-weight:600}
.unknown{color:#8a6d00}.vacuous{color:#6a1b9a}.skipped{color:#777}
figure{display:inline-block;margin:.6em 1em .6em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.88em;color:#555;max-width:640px}
.note{color:#555;font-size:.92em}nav a{margin-right:1em}code{background:#f3f3f3;padding:0 3px}
"""


def esc(v) -> str:
    return html.escape(str(v), quote=True)


def cell(v, cls: str | None = None, percent: bool = False) -> str:
    """One table cell: numbers through :func:`fmt`, text escaped (left-aligned)."""
    if isinstance(v, str):
        return f"<td class='{esc(cls or 'text')}'>{esc(v)}</td>"
    attr = f" class='{esc(cls)}'" if cls else ""
    return f"<td{attr}>{esc(fmt(v, percent))}</td>"


def table_html(header: list[str], rows: list[list], table_id: str | None = None,
               percent: tuple[int, ...] = (), left: tuple[int, ...] = ()) -> str:
    """A table; cells may be numbers, text, or pre-rendered ``<td>`` strings from :func:`cell`.

    Columns listed in ``percent`` show rates as percentages; those in ``left`` (text) have
    their heading aligned left.
    """
    head = "".join(f"<th class='text'>{esc(h)}</th>" if k in left else f"<th>{esc(h)}</th>"
                   for k, h in enumerate(header))
    body = []
    for r in rows:
        cells = [
            c if isinstance(c, str) and c.startswith("<td") else cell(c, percent=k in percent)
            for k, c in enumerate(r)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    attr = f" id='{esc(table_id)}'" if table_id else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    return f"<table{attr}>{thead}<tbody>{''.join(body)}</tbody></table>"


def figure_html(src: str, caption: str, width: int | None = None) -> str:
    w = f" width='{int(width)}'" if width else ""
    return (f"<figure><img src='{esc(src)}' alt='{esc(caption)}'{w}>"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page_html(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole page: (anchor, heading, body html) sections with a table of contents."""
    nav = " ".join(f"<a href='#{esc(a)}'>{esc(h)}</a>" for a, h, _ in sections)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='generator' content='napkit report'>",
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1><p class='note'>{esc(subtitle)}</p><nav>{nav}</nav>",
    ]
    parts += [f"<section id='{esc(a)}'><h2>{esc(h)}</h2>{body}</section>" for a, h, body in sections]
    parts.append("</body></html>")
    return "\n".join(parts)


def check_report_target(out: Path, merge: bool = False) -> None:
    """Refuse a target the report would clobber: an existing file, or a folder with other
    content (unless ``merge``: the demo adds its report to its own folder)."""
    if out.exists() and not out.is_dir():
        raise NapkitError(f"--out {out} is a file, not a folder")
    if out.is_dir() and not merge and any(out.iterdir()) and not (out / MARKER).exists():
        raise NapkitError(f"--out {out} is a folder with other content; give a new or empty folder")
    parent = check_parent(out)
    if not os.access(parent, os.W_OK):
        raise NapkitError(f"cannot write {out}: folder {parent} is not writable")


def publish(staged: Path, out: Path, merge: bool = False) -> None:
    """Move a finished report into place.

    Without ``merge`` the staged folder replaces ``out`` as a whole (an earlier report there
    is removed only after the new one is in place). With ``merge`` each file is moved into
    ``out`` (each move atomic), ``index.html`` last; so is a folder that cannot be renamed
    away (``.``, a link: :func:`napkit.staging.kept_in_place`).
    """
    (staged / MARKER).write_text("written by napkit report\n")
    if merge or kept_in_place(out):
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f"{DRAWN_PREFIX}*.png"):  # an earlier report's counterexamples
            stale.unlink()
        files = sorted(staged.iterdir(), key=lambda p: p.name == "index.html")
        for f in files:
            os.replace(f, out / f.name)
        staged.rmdir()
        return
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staged, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A folder to build ``out`` in: ``out`` is checked as a report target first, the block
    writes into a temporary sibling, and only a block that finishes replaces ``out`` (an
    interrupted or failed one leaves ``out`` as it was and no temporary folder behind)."""
    check_report_target(out)
    staged = staging_folder(out)
    try:
        yield staged
        publish(staged, out)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
