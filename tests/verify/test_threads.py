"""Torch loads only when a stage needs it, and then runs on one thread inside a verification."""

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def run_python(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_a_query_decided_by_bounds_never_loads_torch():
    out = run_python(
        "import sys, numpy as np\n"
        "from napkit.network import ReluNetwork\n"
        "from napkit.verify import linf_ball, verify_robustness\n"
        "net = ReluNetwork((np.eye(2), np.array([[1.0, 0.0], [-1.0, 0.0]])), (np.zeros(2), np.zeros(2)))\n"
        "res = verify_robustness(net, linf_ball(np.array([1.0, 0.0]), 0.1), 0, timeout=5)\n"
        "print(res.verdict, 'torch' in sys.modules)\n"
    )
    assert out == "verified False"


def test_one_thread_pins_torch_loaded_inside_it_and_restores_the_count():
    out = run_python(
        "import sys\n"
        "from napkit.verify.threads import one_thread, torch_pinned\n"
        "with one_thread():\n"
        "    assert 'torch' not in sys.modules\n"
        "    torch_pinned()\n"
        "    import torch\n"
        "    inside = torch.get_num_threads()\n"
        "print(inside)\n"
    )
    assert out == "1"


def test_one_thread_restores_the_count_it_found():
    out = run_python(
        "import torch\n"
        "from napkit.verify.threads import one_thread\n"
        "torch.set_num_threads(2)\n"
        "with one_thread():\n"
        "    inside = torch.get_num_threads()\n"
        "print(inside, torch.get_num_threads())\n"
    )
    assert out == "1 2"
