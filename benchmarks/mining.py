"""Mining benchmark: napkit's streaming capture+mine against the bare forward pass and a
straightforward baseline (collect every activation, dense boolean matrix per class, mean).

Each approach runs in its own fresh process so its time and peak memory are its own.
Run: .venv/bin/python benchmarks/mining.py [--net mnist-net_256x6] [--repeats 1 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MNIST, ONNX, need, peak_rss_mb, rss_mb, run_worker  # noqa: E402

DELTA = 0.99
BATCH = 4096


def _load(net_name: str):
    import torch

    from napkit.network import load_model, to_torch

    net = load_model(need(ONNX / f"{net_name}.onnx.gz"))
    with np.load(need(MNIST)) as f:
        x = (f["x_train"].reshape(60000, -1) / np.float32(255)).astype(np.float32)
        y = f["y_train"].astype(np.int64)
    torch.set_num_threads(2)
    return net, to_torch(net, dtype=torch.float32), x, y


def bare_forward(net, model, x, y, repeats):
    import torch

    with torch.no_grad():
        for _ in range(repeats):
            for lo in range(0, len(x), BATCH):
                model(torch.from_numpy(x[lo : lo + BATCH]))
    return None


def baseline(net, model, x, y, repeats):
    """The paper notebooks' way: keep every activation, then a boolean matrix and mean per class."""
    import torch
    from torch import nn

    acts: list[list[np.ndarray]] = [[] for _ in net.layer_names]
    preds = []
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [
        r.register_forward_hook(lambda m, i, o, k=k: acts[k].append(i[0].numpy().copy()))
        for k, r in enumerate(relus)
    ]
    with torch.no_grad():
        for _ in range(repeats):
            for lo in range(0, len(x), BATCH):
                preds.append(model(torch.from_numpy(x[lo : lo + BATCH])).argmax(1).numpy())
    for h in hooks:
        h.remove()
    full = np.concatenate([np.concatenate(a) for a in acts], axis=1)  # N x neurons
    pred = np.concatenate(preds)
    labels = np.tile(y, repeats)
    active, inactive = [], []
    for c in range(10):
        on = full[(labels == c) & (pred == labels)] > 0  # dense boolean matrix of the class
        p = on.mean(axis=0)
        active.append(p >= DELTA)
        inactive.append(1 - p >= DELTA)
    return np.array(active), np.array(inactive)


def napkit_mine(net, model, x, y, repeats):
    from napkit.patterns import count_patterns

    miner = None
    for _ in range(repeats):  # the same data streamed again: memory must not grow
        miner = count_patterns(net, x, y, batch_size=BATCH, progress=False, miner=miner)
    naps = miner.naps(DELTA)
    return naps.active, naps.inactive


APPROACHES = {"forward": bare_forward, "baseline": baseline, "napkit": napkit_mine}


def worker(name: str, net_name: str, repeats: int) -> None:
    net, model, x, y = _load(net_name)
    bare_forward(net, model, x[:BATCH], y, 1)  # warm up threads and allocator
    before = rss_mb()
    t0 = time.perf_counter()
    out = APPROACHES[name](net, model, x, y, repeats)
    seconds = time.perf_counter() - t0
    digest = None
    if out is not None:
        digest = [np.flatnonzero(out[0]).tolist(), np.flatnonzero(out[1]).tolist()]
    print(json.dumps({"seconds": seconds, "peak_mb": peak_rss_mb() - before, "naps": digest}))


def interleaved_times(net_name: str, repeats: int, trials: int) -> dict[str, float]:
    """Best-of-``trials`` seconds of the bare forward pass and of napkit, run alternately in
    this process so that a load change on a shared machine hits both alike."""
    net, model, x, y = _load(net_name)
    bare_forward(net, model, x[:BATCH], y, 1)
    best = {"forward": float("inf"), "napkit": float("inf")}
    for _ in range(trials):
        for name in best:
            t0 = time.perf_counter()
            APPROACHES[name](net, model, x, y, repeats)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worker", nargs=3, metavar=("APPROACH", "NET", "REPEATS"))
    ap.add_argument("--net", default="mnist-net_256x6")
    ap.add_argument("--repeats", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--trials", type=int, default=5, help="alternating timing runs (best of)")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    need(MNIST)
    script = Path(__file__).resolve()
    print(f"# mining benchmark: {args.net}, δ = {DELTA}, MNIST train (60000 images) x repeats\n")
    print(
        "Peak memory (and the baseline's time) from one fresh process per approach; the times of the "
        f"bare forward pass and napkit are the best of {args.trials} runs made alternately in one process.\n"
    )
    print("| samples | approach | seconds | peak MiB above start | ratio to bare forward |")
    print("|---|---|---|---|---|")
    for rep in args.repeats:
        res = {name: run_worker(script, name, args.net, str(rep)) for name in APPROACHES}
        best = interleaved_times(args.net, rep, args.trials)
        for name in best:
            res[name]["seconds"] = best[name]
        same = res["baseline"]["naps"] == res["napkit"]["naps"]
        for name in APPROACHES:
            r = res[name]
            ratio = r["seconds"] / res["forward"]["seconds"]
            print(f"| {60000 * rep} | {name} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {ratio:.2f}x |")
        print(f"| {60000 * rep} | identical NAPs (napkit vs baseline) | {same} | | |")
        if not same:
            sys.exit("NAPs differ between napkit and the baseline")
    print()


if __name__ == "__main__":
    main()
