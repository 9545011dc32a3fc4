"""VNN-COMP benchmark files: ``instances.csv`` in, a results CSV in VNN-COMP's format out.

``instances.csv`` holds one query per line, ``onnx,vnnlib,timeout``, paths relative to the
CSV's folder (as in the VNN-COMP benchmark repositories). The results CSV has VNN-COMP's
columns ``benchmark,onnx,vnnlib,prepare_time,result,run_time`` with results ``sat``,
``unsat``, ``timeout``, ``unknown`` or ``error``, so VNN-COMP's scoring scripts read it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from napkit.errors import NapkitError
from napkit.network import ReluNetwork, load_model
from napkit.staging import replacing
from napkit.verify.batch import BatchJob, query_id
from napkit.verify.vnnlib import read_vnnlib

VNNCOMP_COLUMNS = ("benchmark", "onnx", "vnnlib", "prepare_time", "result", "run_time")
# napkit's verdict of a VNN-LIB query (is there x with the unsafe outputs?) in VNN-COMP's words
VNNCOMP_RESULT = {"verified": "unsat", "vacuous": "unsat", "falsified": "sat", "error": "error"}


@dataclass(frozen=True)
class Instance:
    """One line of ``instances.csv``: paths as written and resolved, and the timeout."""

    onnx: str
    vnnlib: str
    timeout: float
    onnx_path: Path
    vnnlib_path: Path


def read_instances(path: str | Path) -> list[Instance]:
    """The queries of a VNN-COMP ``instances.csv``, each file checked to exist."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise NapkitError(f"instances file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NapkitError(f"cannot read {p}: {exc}") from None
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        row = [c.strip() for c in row]
        if not row or not any(row):
            continue
        if len(row) != 3:
            raise NapkitError(f"{p} line {n}: expected onnx,vnnlib,timeout, got {len(row)} fields")
        try:
            timeout = float(row[2])
        except ValueError:
            raise NapkitError(f"{p} line {n}: the timeout {row[2]!r} is not a number") from None
        if not timeout > 0:
            raise NapkitError(f"{p} line {n}: the timeout must be > 0, got {row[2]}")
        onnx_path, vnnlib_path = (p.parent / row[0]), (p.parent / row[1])
        for f in (onnx_path, vnnlib_path):
            if not f.exists():
                raise NapkitError(f"{p} line {n}: {f} does not exist")
        out.append(Instance(row[0], row[1], timeout, onnx_path, vnnlib_path))
    if not out:
        raise NapkitError(f"{p} lists no instances")
    return out


def instance_jobs(instances: list[Instance]) -> list[BatchJob]:
    """One batch job per instance (each network read once); ids name the line and the query."""
    nets: dict[Path, ReluNetwork] = {}
    jobs = []
    for k, inst in enumerate(instances):
        net = nets.get(inst.onnx_path)
        if net is None:
            net = nets[inst.onnx_path] = load_model(inst.onnx_path)
        prop = read_vnnlib(inst.vnnlib_path).to_property(net.n_inputs, net.n_outputs, net.layer_sizes)
        jobs.append(BatchJob(query_id(f"line{k + 1}", net, prop, inst.timeout), net, prop, inst.timeout))
    return jobs


def vnncomp_result(rec: dict) -> str:
    """VNN-COMP's word for one batch record: sat, unsat, timeout, unknown or error."""
    verdict = rec.get("result", "error")
    if verdict in VNNCOMP_RESULT:
        return VNNCOMP_RESULT[verdict]
    return "timeout" if "timeout" in str(rec.get("reason", "")).lower() else "unknown"


def write_vnncomp_csv(
    path: str | Path, benchmark: str, instances: list[Instance], records: list[dict]
) -> Path:
    """Write the results CSV atomically (a temporary file, then a rename); no header, as VNN-COMP."""
    p = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for inst, rec in zip(instances, records, strict=True):
        w.writerow([benchmark, inst.onnx, inst.vnnlib, "0", vnncomp_result(rec),
                    f"{float(rec.get('seconds') or 0.0):.6f}"])
    with replacing(p) as tmp:  # one rename; removed on failure or Ctrl-C
        tmp.write_text(buf.getvalue())
    return p
