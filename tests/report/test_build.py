"""build_report: a complete, self-contained folder written atomically, numbers as in figures.json."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.report import build, build_report, fmt
from napkit.report.html import MARKER


class _Page(HTMLParser):
    """Collects image sources, link targets and the cell texts of each table by id."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.tables = [], [], {}
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag in ("link", "script") or (tag == "a" and not a.get("href", "#").startswith("#")):
            self.links.append((tag, a))
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id", f"t{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture
def report(built_report):
    return built_report


def test_folder_is_self_contained(report):
    out, figs = report
    page = parse(out / "index.html")
    assert page.links == [], "no external stylesheets, scripts or links"
    assert {"naps.png", "delta_sweep.png", "roc.png", "violations.png", "ambiguity.png"} <= set(page.images)
    for src in page.images:
        assert "/" not in src and (out / src).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == sorted(set(page.images))
    assert not list(out.parent.glob(".report.*")), "no staging folder left behind"


def test_per_class_tables_hold_one_row_per_class(report, tiny):
    out, figs = report
    page = parse(out / "index.html")
    for table in ("per-class-naps", "per-class-verification"):
        body = page.tables[table][1:]
        assert [int(r[0]) for r in body] == tiny.naps.labels.tolist()


def test_page_numbers_are_the_json_numbers(report):
    out, figs = report
    assert json.loads((out / "figures.json").read_text()) == {k: v for k, v in figs.items() if k != "report"}
    page = parse(out / "index.html")
    head, *body = page.tables["per-class-naps"]
    for row, fig in zip(body, figs["naps"]["classes"], strict=True):
        assert row[head.index("recall")] == fmt(fig["recall"])
        assert row[head.index("precision")] == fmt(fig["precision"])
    head, *body = page.tables["operating-points"]
    for row, p in zip(body, figs["monitor"]["operating_points"], strict=True):
        assert row[head.index("flagged")] == fmt(p["flagged_rate"], percent=True)
    text = re.sub(r"<style>.*?</style>", "", (out / "index.html").read_text(), flags=re.S)
    for v in re.findall(r"\d+\.\d+", text):
        assert len(v.split(".")[1]) in (1, 3), f"{v} is not rounded by the one rule"


def test_figures_describe_the_run(report, tiny):
    out, figs = report
    acc = float((tiny.net.predict(tiny.x_test) == tiny.y_test).mean())
    assert figs["model"]["accuracy"] == round(acc, 3)
    assert figs["image_shape"] == [8, 8]
    assert [r["delta"] for r in figs["sweep"]] == [1.0, 0.99, 0.95, 0.9, 0.8]
    ver = figs["verification"]
    assert ver["max_queries"] is not None and ver["queries"] == ver["max_queries"]
    assert len(ver["classes"]) == 10 and len(ver["pairs"]) == 45
    drawn = [c for c in figs["counterexamples"] if c["image"]]
    assert len(drawn) == len(figs["counterexamples"])  # 8 × 8 inputs are drawn
    n_falsified = sum(r[k]["result"] == "falsified" for r in ver["classes"] for k in ("domain", "local"))
    n_falsified += sum(p["result"] == "falsified" for p in ver["pairs"])
    assert len(figs["counterexamples"]) == n_falsified


def test_an_earlier_report_is_replaced_whole(tiny, tmp_path):
    out = tmp_path / "r"
    build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, out, verify_timeout=0.5, max_queries=0)
    (out / "cex_domain_0.png").write_bytes(b"stale")
    assert (out / MARKER).exists()
    figs = build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, out, verify_timeout=0.5, max_queries=0)
    assert not (out / "cex_domain_0.png").exists()
    assert figs["sweep"] is None and not (out / "delta_sweep.png").exists()
    assert "--mine-data" in (out / "index.html").read_text()


def test_a_foreign_folder_is_refused_untouched(tiny, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with pytest.raises(NapkitError, match="other content"):
        build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, out, max_queries=0)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    with pytest.raises(NapkitError, match="does not exist"):
        build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, tmp_path / "no" / "r", max_queries=0)


def test_merge_adds_to_a_folder(tiny, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "model.safetensors").write_text("x")
    build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, out, max_queries=0, merge=True)
    assert (out / "model.safetensors").read_text() == "x" and (out / "index.html").exists()


def test_a_failure_half_way_leaves_nothing(tiny, tmp_path, monkeypatch):
    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build, "plot_ambiguity", broken)
    with pytest.raises(NapkitError, match="No space left"):
        build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, tmp_path / "r", max_queries=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs(tiny, tmp_path):
    with pytest.raises(NapkitError, match="image shape"):
        build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, tmp_path / "r", image_shape=(7, 7))
    with pytest.raises(NapkitError, match="labels"):
        build_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test[:-1], tmp_path / "r")
    other = tiny.naps
    other.fingerprint, fp = "0" * 64, other.fingerprint
    try:
        with pytest.raises(NapkitError, match="another model"):
            build_report(tiny.net, other, tiny.x_test, tiny.y_test, tmp_path / "r")
    finally:
        other.fingerprint = fp
    assert list(tmp_path.iterdir()) == []
    assert np.isfinite(tiny.x_test).all()


def test_staged_output_publishes_a_folder_with_the_permissions_mkdir_gives(tmp_path):
    """The demo's folder is a staging folder renamed into place: not left private (``mkdtemp``
    makes 0700), and nothing else left beside it."""
    import os

    from napkit.report import staged_output

    mask = os.umask(0o022)
    try:
        with staged_output(tmp_path / "out") as work:
            (work / "f.txt").write_text("x")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(mask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "plain"]
    assert (tmp_path / "out" / "f.txt").read_text() == "x"
