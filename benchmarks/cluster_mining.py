"""Mining 600k samples from a zarr store: on a 2-worker dask.distributed LocalCluster against in-process.

The store holds the bit-packed on/off patterns of mnist-net_256x2 over the 60000 MNIST training
images, ten times over (600000 rows, 512 neurons). Each side runs in a fresh process; the cluster
side starts a LocalCluster of 2 worker processes (1 thread each, loopback TCP), mines with
``mine_store(..., scheduler=...)`` and reports the peak memory of its workers as well. Both must
give identical NAPs.

    python benchmarks/cluster_mining.py [--store /tmp/napkit-cluster-bench/acts.zarr] [--out results.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MNIST, ONNX, need, peak_rss_mb, run_worker  # noqa: E402

NET = "mnist-net_256x2"
REPEATS = 10  # 10 × 60000 rows
CHUNK = 8192
DELTA = 0.99


def build_store(path: Path) -> None:
    """Write the 600k-row store a chunk at a time (never 600k inputs in memory)."""
    from napkit.capture import ActivationStore, iter_activations
    from napkit.network import load_model

    if (path / "zarr.json").exists() and ActivationStore.open(path).complete:
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    net = load_model(need(ONNX / f"{NET}.onnx.gz"))
    with np.load(need(MNIST)) as f:
        x = (f["x_train"].reshape(60000, -1) / np.float32(255)).astype(np.float32)
        y = f["y_train"].astype(np.int64)
    store = ActivationStore.create(path, dict(zip(net.layer_names, net.layer_sizes, strict=True)),
                                   REPEATS * len(x), net.fingerprint(), mode="bits", chunk_rows=CHUNK)
    for _ in range(REPEATS):  # 60000 is not a multiple of CHUNK: chunks straddle passes, as data streams do
        for batch in iter_activations(net, x, batch_size=CHUNK, progress=False):
            rows = slice(batch.start, batch.start + len(batch.logits))
            store.append(batch.acts, y[rows], batch.logits.argmax(axis=1))


def worker(side: str, store_path: str) -> dict:
    from napkit.capture import ActivationStore
    from napkit.patterns import mine_store

    store = ActivationStore.open(store_path)
    if side == "local":
        t0 = time.perf_counter()
        naps = mine_store(store, DELTA, 10)
        seconds, start_s, workers_mb = time.perf_counter() - t0, 0.0, []
    else:
        from dask.distributed import Client, LocalCluster

        t_start = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        start_s = time.perf_counter() - t_start
        try:
            t0 = time.perf_counter()
            naps = mine_store(store, DELTA, 10, scheduler=cluster.scheduler_address)
            seconds = time.perf_counter() - t0
            with Client(cluster.scheduler_address) as client:
                workers_mb = sorted(client.run(peak_rss_mb).values())
        finally:
            cluster.close()
    return {"side": side, "seconds": seconds, "cluster_start_s": start_s, "parent_peak_mb": peak_rss_mb(),
            "workers_peak_mb": workers_mb, "rows": store.n_committed,
            "naps": naps.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("/tmp/napkit-cluster-bench/acts.zarr"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", nargs=2, metavar=("SIDE", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    args.store.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_store(args.store)
    print(f"store ready in {time.perf_counter() - t0:.1f} s: {args.store}", flush=True)
    local = run_worker(Path(__file__), "local", str(args.store))
    remote = run_worker(Path(__file__), "cluster", str(args.store))
    same = local.pop("naps") == remote.pop("naps")
    rows = [
        ("in-process", local["seconds"], "-", local["parent_peak_mb"], "-"),
        ("2-worker LocalCluster", remote["seconds"], remote["cluster_start_s"], remote["parent_peak_mb"],
         " / ".join(f"{m:.0f}" for m in remote["workers_peak_mb"])),
    ]
    lines = [
        f"{local['rows']} rows × 512 neurons (bit-packed), δ = {DELTA}",
        "",
        "| where | mining seconds | cluster start-up s | peak MiB, calling process | peak MiB, each worker |",
        "|---|---|---|---|---|",
        *[f"| {w} | {s:.2f} | {c if isinstance(c, str) else f'{c:.1f}'} | {p:.0f} | {k} |" for w, s, c, p, k in rows],
        "",
        f"cluster / in-process time: {remote['seconds'] / local['seconds']:.2f}×; identical NAPs: {same}",
    ]
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("# Mining a zarr store on a dask.distributed cluster\n\nCommand: "
                            f"`python benchmarks/cluster_mining.py --out {args.out}`\n\n" + "\n".join(lines) + "\n")
    if not same:
        sys.exit("the cluster's NAPs differ from the local ones")


if __name__ == "__main__":
    main()
