"""The README's command-line tour runs as written (issue 10, §6).

Every ``$ ...`` line in the fenced blocks of the README's "## The command line" section is
run in order, in one folder holding the ``../shared`` files the tour links there, and its
exit code and the shape of its output are compared with what the README prints under it:
error lines, JSON keys, table headers, and plain lines with numbers and verdicts left free.
A new "### ..." subsection written in the same style is picked up; one that cannot run here
goes into SKIP with its reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import MNIST_FC, SHARED, need_shared

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## The command line"
SKIP: dict[str, str] = {}  # "### title" of a subsection -> why its commands are not run here
VERDICT_COMMANDS = {"verify", "vnnlib", "ambiguity"}  # exit 1 is a verdict (falsified/sat/ambiguous)
VERDICTS = r"\b(verified|falsified|unknown|vacuous|unsat|sat|error|timeout)\b"
BOX = "┏┃┡│└━╇┳┻┗┛┓"


@dataclass
class Step:
    subsection: str
    command: str
    expected: list[str] = field(default_factory=list)


def tour_steps(readme: str) -> list[Step]:
    """The ``$`` commands of the CLI section, each with the output lines printed under it."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end > 0 else None]
    steps: list[Step] = []
    for chunk in re.split(r"\n(?=### )", section):
        title = chunk.splitlines()[0].strip()
        if title in SKIP:
            continue
        for block in re.findall(r"\n```[a-z]*\n(.*?)\n```", chunk, re.S):
            current, continued = None, False  # lines before a block's first `$` are set-up text
            for line in block.splitlines():
                if continued:  # a command continued with a trailing backslash
                    current.command = current.command[:-1].rstrip() + " " + line.strip()
                elif line.startswith("$ "):
                    current = Step(title, line[2:].strip())
                    steps.append(current)
                elif current is not None:
                    current.expected.append(line)
                continued = current is not None and current.command.endswith("\\") and (
                    continued or line.startswith("$ "))
    return steps


def shape(line: str) -> str:
    """A line with what varies from run to run left out: numbers, verdicts, reasons."""
    s, before = line, None
    while s != before:  # innermost parentheses first: "(time out (2 open); timeout)" is one reason
        before, s = s, re.sub(r"\([^()]*\)", "⟨⟩", s)
    s = re.sub(VERDICTS, "V", s.replace("⟨⟩", "(…)"))
    s = re.sub(r"\d+(\.\d+)?", "#", s)
    s = re.sub(r"# V(, # V)+", "# V…", s)
    return " ".join(s.split())


def check_output(step: Step, code: int, out: str, err: str) -> None:
    what = f"`{step.command}` ({step.subsection})"
    words = step.command.split()
    expected = [ln for ln in step.expected if ln.strip() and ln.strip() != "..."]
    if expected and expected[0].startswith("napkit: error"):
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("napkit: error:"), (what, code, err)
        assert shape(lines[0]) == shape(expected[0]), (what, lines[0])
        return
    if words[0] == "napkit" and words[1] in VERDICT_COMMANDS:
        assert code in (0, 1), (what, code, err)
    else:
        assert code == 0, (what, code, err)
    if not expected:
        return
    if expected[0].startswith("{"):
        keys = set(re.findall(r'"(\w+)":', " ".join(expected)))
        got = json.loads(out.strip().splitlines()[-1])
        assert keys <= set(got), (what, keys - set(got))
        return
    actual = shape(" ".join(out.split()))  # rich wraps a long table title over several lines
    for line in expected:
        text = line.strip()
        if text.startswith("┃"):  # a table header: the same columns
            cells = [c.strip() for c in text.strip("┃").split("┃")]
            headers = [[c.strip() for c in ln.strip().strip("┃").split("┃")]
                       for ln in out.splitlines() if ln.strip().startswith("┃")]
            assert cells in headers, (what, cells, headers)
        elif text[0] in BOX or "..." in text:
            continue  # table body rows and elided lines: numbers vary
        else:
            assert shape(text) in actual, (what, text, out)  # a line of the output, or a wrapped title


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """The tour folder: the shared files linked as the README's set-up lines do."""
    need_shared("data", "mnist.npz")
    need_shared("benchmarks", "mnist_fc", "onnx")
    folder = tmp_path_factory.mktemp("readme") / "tour"
    folder.mkdir()
    for src in [*sorted((MNIST_FC / "onnx").iterdir()), *sorted((MNIST_FC / "vnnlib").iterdir()),
                SHARED / "data" / "mnist.npz"]:
        (folder / src.name).symlink_to(src.resolve())
    return folder


def test_the_tour_has_the_commands_of_every_subsection():
    steps = tour_steps((ROOT / "README.md").read_text())
    titles = {s.subsection for s in steps}
    assert {"### Mine", "### Capture", "### Stats", "### Monitor", "### Verify", "### Batches",
            "### Minimise a NAP", "### Codes and representational similarity"} <= titles
    assert all(s.command.split()[0] in ("napkit", "echo", "printf") for s in steps), steps


def test_every_command_of_the_readme_tour_runs_as_written(tour):
    steps = tour_steps((ROOT / "README.md").read_text())
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    last_code = None
    for step in steps:
        if step.command == "echo $?":
            assert step.expected and last_code == int(step.expected[0]), (step, last_code)
            continue
        proc = subprocess.run(["bash", "-c", step.command], cwd=tour, env=env, capture_output=True,
                              text=True, timeout=180)
        last_code = proc.returncode
        check_output(step, proc.returncode, proc.stdout, proc.stderr)


def test_shape_leaves_numbers_and_verdicts_free():
    a = "class 3 following the NAP of class 3: unknown in 3.05 s (MILP time limit; timeout)"
    b = "class 3 following the NAP of class 3: verified in 0.40 s (proved by bounds)"
    assert shape(a) == shape(b)
    assert shape("9 verified, 1 falsified") == shape("8 verified, 1 falsified, 1 unknown")
    assert shape("wrote naps.json in 7.69 s") != shape("wrote exp/a.onnx and exp/b.vnnlib")
    assert shape("x: unknown (time out (2 open); timeout)") == shape("x: verified (proved by bounds)")
