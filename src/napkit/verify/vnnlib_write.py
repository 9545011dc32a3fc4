"""Writing VNN-LIB 1.0: input box, output violation disjunction, optional NAP phases.

Phases are stated on extra outputs ``Y_{m+i}`` that are the hidden pre-activations in
``to_onnx(..., expose_preactivations=True)`` order (logits first, then the layers in
order): ``(>= Y_k 0.0)`` for an active and ``(<= Y_k 0.0)`` for an inactive neuron.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

from napkit.errors import NapkitError
from napkit.staging import check_out_folder, replacing
from napkit.verify.properties import InputBox, OutputSpec, Phases, real_array, robustness_spec


def _fmt_row(c: np.ndarray, d: float) -> str:
    nz = np.flatnonzero(c)
    if len(nz) == 2 and d == 0 and sorted(c[nz]) == [-1.0, 1.0]:
        pos, neg = (nz[0], nz[1]) if c[nz[0]] > 0 else (nz[1], nz[0])
        return f"(>= Y_{neg} Y_{pos})"  # y_pos - y_neg <= 0
    if len(nz) == 1 and abs(c[nz[0]]) == 1.0:
        op = "<=" if c[nz[0]] > 0 else ">="
        return f"({op} Y_{nz[0]} {float(d * c[nz[0]])!r})"
    terms = " ".join(f"(* {float(c[i])!r} Y_{i})" for i in nz)
    return f"(<= (+ {terms}) {float(d)!r})"


def vnnlib_text(box: InputBox, output: OutputSpec, phases: Phases | None = None) -> str:
    """VNN-LIB 1.0 text of a query; phases go on outputs after the logits."""
    m = output.n_outputs
    n_pre = sum(p.size for p in phases) if phases is not None else 0
    lines = ["; written by napkit", ""]
    lines += [f"(declare-const X_{i} Real)" for i in range(box.n)]
    lines += [f"(declare-const Y_{i} Real)" for i in range(m + n_pre)]
    lines.append("")
    for i, (lo, hi) in enumerate(zip(box.lower, box.upper, strict=True)):
        lines.append(f"(assert (<= X_{i} {float(hi)!r}))")
        lines.append(f"(assert (>= X_{i} {float(lo)!r}))")
    if phases is not None:
        flat = np.concatenate([real_array(p, "phases").reshape(-1) for p in phases])
        if not np.isin(flat, (-1, 0, 1)).all():
            raise NapkitError("phases must be -1 (inactive), 0 (free) or +1 (active) for every unit")
        lines.append(f"; NAP: Y_{m} onward are the hidden pre-activations")
        for i in np.flatnonzero(flat):
            op = ">=" if flat[i] > 0 else "<="
            lines.append(f"(assert ({op} Y_{m + i} 0.0))")
    conj = [
        "(and " + " ".join(_fmt_row(c[r], d[r]) for r in range(c.shape[0])) + ")"
        for c, d in output.disjuncts
    ]
    lines.append("(assert (or\n    " + "\n    ".join(conj) + "\n))")
    return "\n".join(lines) + "\n"


def write_vnnlib(
    path: str | Path, box: InputBox, output: OutputSpec, phases: Phases | None = None
) -> Path:
    """Write a query as VNN-LIB 1.0 (gzip-compressed when the name ends in ``.gz``)."""
    p = Path(path)
    data = vnnlib_text(box, output, phases).encode()
    with replacing(p) as tmp:  # never a half-written spec
        tmp.write_bytes(gzip.compress(data) if p.suffix == ".gz" else data)
    return p


def export_nap_query(
    net, label: int, phases: Phases, box: InputBox, out: str | Path, stem: str, force: bool = False
) -> tuple[Path, Path]:
    """Write ``out/{stem}-preacts.onnx`` (``net`` with its hidden pre-activations as extra
    outputs) and ``out/nap_class{label}.vnnlib`` (robustness of ``label`` over ``box`` under
    the NAP ``phases``), so that any VNN-COMP verifier can check the NAP property.

    ``out`` is a new folder in an existing one, or an empty folder (a non-empty one only with
    ``force``). Everything is checked before anything is written; both files appear or neither,
    and a folder made here is removed again when writing fails.
    """
    from napkit.network import to_onnx

    out = check_out_folder(out, force)
    onnx_path, spec_path = out / f"{stem}-preacts.onnx", out / f"nap_class{label}.vnnlib"
    for path in (onnx_path, spec_path):
        if path.is_dir():
            raise NapkitError(f"cannot write {path}: it is a folder, give a file name")
    spec = robustness_spec(label, net.n_outputs)
    created = not out.exists()
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        raise NapkitError(f"cannot create {out}: {exc.strerror or exc}") from None
    try:
        with replacing(onnx_path) as onnx_tmp, replacing(spec_path) as spec_tmp:
            to_onnx(net, onnx_tmp, expose_preactivations=True)
            write_vnnlib(spec_tmp, box, spec, phases)
    except BaseException:  # also Ctrl-C: no half export, no folder of ours left behind
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return onnx_path, spec_path
