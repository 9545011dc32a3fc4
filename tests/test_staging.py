"""Atomic outputs: a replaced file appears whole or not at all; nothing is left behind."""

from __future__ import annotations

import pytest

from napkit.errors import NapkitError
from napkit.staging import replacing, save_png


def test_replacing_swaps_in_the_new_file_only_when_the_block_succeeds(tmp_path):
    out = tmp_path / "a.json"
    out.write_text("old")
    with replacing(out) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp != out
        tmp.write_text("new")
        assert out.read_text() == "old"  # readers see the old file until the rename
    assert out.read_text() == "new"
    with pytest.raises(RuntimeError, match="boom"):
        with replacing(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_replacing_turns_os_errors_into_one_napkit_error(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(NapkitError, match="it is a folder"):
        with replacing(tmp_path / "folder") as tmp:
            tmp.write_text("x")
    with pytest.raises(NapkitError, match="cannot write"):
        with replacing(tmp_path / "missing" / "a.txt") as tmp:
            tmp.write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_save_png_writes_a_png_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = save_png(fig, tmp_path / "f.png", dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_check_parent_refuses_a_missing_parent_folder_and_creates_none(tmp_path):
    from napkit.staging import check_parent

    with pytest.raises(NapkitError, match=r"cannot write .*out\.json: .*nowhere does not exist"):
        check_parent(tmp_path / "nowhere" / "out.json")
    assert not (tmp_path / "nowhere").exists()


def test_check_parent_refuses_a_parent_that_is_a_file(tmp_path):
    from napkit.staging import check_parent

    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NapkitError, match="a_file is a file, not a folder"):
        check_parent(tmp_path / "a_file" / "out.json")


def test_check_parent_returns_the_folder_and_dot_for_a_bare_name(tmp_path):
    from pathlib import Path

    from napkit.staging import check_parent

    assert check_parent(tmp_path / "out.json") == tmp_path
    assert check_parent(Path("out.json")) == Path(".")


def test_two_writers_of_one_path_at_once_each_publish_their_whole_file(tmp_path):
    """The temporary name was fixed (``.a.partial.json``): a second writer (two train-tiny
    runs checkpointing one --out, two commands writing one file) truncated the first one's
    file, whose rename then published the other's bytes or failed."""
    out = tmp_path / "a.json"
    with replacing(out) as first:
        first.write_text("first, long " * 100)
        with replacing(out) as second:
            assert second != first
            second.write_text("second")
        assert out.read_text() == "second"
    assert out.read_text() == "first, long " * 100
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
