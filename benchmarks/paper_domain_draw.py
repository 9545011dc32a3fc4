"""Draw the whole-domain counterexamples saved by ``paper_domain.py --save DIR`` (one panel
each, with the network's float64 logits of the NAP's class and of the winner).

    .venv/bin/python benchmarks/paper_domain_draw.py benchmarks/results/paper_domain_ce
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ONNX, need  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napkit.network import from_onnx, load_onnx_model

    files = sorted(args.folder.glob("*_class*.npy"))
    if not files:
        sys.exit(f"no counterexamples (*_class*.npy) in {args.folder}")
    fig, axes = plt.subplots(1, len(files), figsize=(1.9 * len(files), 2.3), squeeze=False)
    nets = {}
    for ax, f in zip(axes[0], files, strict=True):
        name, c = f.stem.split("_class")
        c = int(c)
        if name not in nets:
            nets[name] = from_onnx(load_onnx_model(need(ONNX / f"mnist-net_{name}.onnx.gz")))
        x = np.load(f)
        y = nets[name].forward(x[None])[0][0]
        j = int(np.argmax(y))
        ax.imshow(x.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{name} NAP {c}\ny{c}={y[c]:.2f} y{j}={y[j]:.2f}", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    out = args.folder / "counterexamples.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
