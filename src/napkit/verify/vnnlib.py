"""Reading VNN-LIB 1.0 as VNN-COMP writes it (the writer is in ``vnnlib_write``).

Reading: ``declare-const X_i/Y_i Real``; asserts that bound single inputs (``(<= X_3 0.5)``,
also inside ``(and ...)``); asserts over the outputs, each a single constraint, an
``(and ...)`` or an ``(or (and ...) ...)``; several output asserts are a conjunction.
Terms are linear: numbers, variables, ``(+ ...)``, ``(- ...)``, ``(* c t)``. The result
is a :class:`VnnlibSpec`: an input box and the violation disjunction ``C y <= d``. Strict
``<`` and ``>`` are read as ``<=`` and ``>=``, as VNN-COMP reads them: a point on the boundary
of a violation region is a counterexample (its result says whether it is strict).

A spec may declare more outputs than the network has logits: the extra ``Y_{m+i}`` are
then the hidden pre-activations (the writer's NAP form) and their sign constraints become
phases in :meth:`VnnlibSpec.to_property`.
"""

from __future__ import annotations

import gzip
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napkit.errors import NapkitError
from napkit.verify.properties import InputBox, OutputSpec, Property, robustness_spec

_TOKEN = re.compile(r"[()]|[^\s()]+")
_COMMENT = re.compile(r";[^\n]*")
_VAR = re.compile(r"^([XY])_(\d+)$")
_OPS = {"<=", ">=", "<", ">"}

Row = tuple[dict[tuple[str, int], float], float]  # sum coef*var + const <= 0


def parse_sexprs(text: str) -> list:
    """Nested lists of the s-expressions in ``text`` (comments removed)."""
    tokens = _TOKEN.findall(_COMMENT.sub("", text))
    stack: list[list] = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            if len(stack) == 1:
                raise NapkitError("malformed VNN-LIB: unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    if len(stack) != 1:
        raise NapkitError("malformed VNN-LIB: unbalanced '(' (file truncated?)")
    return stack[0]


def _term(t, declared: dict) -> dict:
    """A linear term as {var or None (constant): coefficient}."""
    if isinstance(t, str):
        m = _VAR.match(t)
        if m:
            key = (m.group(1), int(m.group(2)))
            if key not in declared:
                raise NapkitError(f"VNN-LIB uses {t} before declaring it")
            return {key: 1.0}
        try:
            value = float(t)
        except ValueError:
            raise NapkitError(f"malformed VNN-LIB: unknown symbol {t!r}") from None
        if not math.isfinite(value):
            raise NapkitError(f"malformed VNN-LIB: the constant {t!r} is not a finite number")
        return {None: value}
    if not t or not isinstance(t[0], str):
        raise NapkitError(f"malformed VNN-LIB term: {t!r}"[:120])
    op, args = t[0], [_term(a, declared) for a in t[1:]]
    out: dict = {}
    if op == "+" or (op == "-" and len(args) >= 1):
        for i, a in enumerate(args):
            sign = -1.0 if op == "-" and (i > 0 or len(args) == 1) else 1.0
            for k, v in a.items():
                out[k] = out.get(k, 0.0) + sign * v
        return out
    if op == "*" and len(args) == 2:
        const = [a for a in args if set(a) == {None}]
        if not const:
            raise NapkitError("VNN-LIB: a product of two variables is not linear")
        c = const[0][None]
        other = args[1] if args[0] is const[0] else args[0]
        return {k: c * v for k, v in other.items()}
    raise NapkitError(f"VNN-LIB: unsupported term operator {op!r}")


def _atom(e, declared: dict) -> Row:
    if len(e) != 3:
        raise NapkitError(f"malformed VNN-LIB constraint: {e!r}"[:120])
    lhs, rhs = _term(e[1], declared), _term(e[2], declared)
    sign = 1.0 if e[0] in ("<=", "<") else -1.0  # lhs - rhs <= 0, or rhs - lhs <= 0
    row: dict = {}
    for k, v in lhs.items():
        row[k] = row.get(k, 0.0) + sign * v
    for k, v in rhs.items():
        row[k] = row.get(k, 0.0) - sign * v
    const = row.pop(None, 0.0)
    return {k: v for k, v in row.items() if v != 0.0}, const


def _dnf(e, declared: dict) -> list[list[Row]]:
    """Disjunctive normal form of a constraint: a list of conjunctions of rows."""
    if not isinstance(e, list) or not e or not isinstance(e[0], str):
        raise NapkitError(f"malformed VNN-LIB assertion: {e!r}"[:120])
    op = e[0]
    if op in _OPS:
        return [[_atom(e, declared)]]
    if op == "and":
        out: list[list[Row]] = [[]]
        for sub in e[1:]:
            out = [a + b for a in out for b in _dnf(sub, declared)]
        return out
    if op == "or":
        return [conj for sub in e[1:] for conj in _dnf(sub, declared)]
    raise NapkitError(f"VNN-LIB: unsupported operator {op!r}")


@dataclass(frozen=True)
class VnnlibSpec:
    """An input box and the output violation ``OR_k (C_k y <= d_k)`` over ``n_y`` outputs."""

    box: InputBox
    disjuncts: tuple[tuple[np.ndarray, np.ndarray], ...]
    n_y: int

    def to_property(self, n_inputs: int, n_outputs: int, layer_sizes=()) -> Property:
        """The query for a network; extra outputs beyond its logits are pre-activations."""
        if self.box.n != n_inputs:
            raise NapkitError(
                f"the VNN-LIB spec has {self.box.n} inputs but the network has {n_inputs}"
            )
        extra = self.n_y - n_outputs
        if extra not in (0, sum(layer_sizes)):
            raise NapkitError(
                f"the VNN-LIB spec has {self.n_y} outputs but the network has {n_outputs}"
                + (f" (+{sum(layer_sizes)} pre-activations)" if layer_sizes else "")
            )
        phases = None
        dis = list(self.disjuncts)
        if extra:
            phases, dis = _split_phases(dis, n_outputs, list(layer_sizes))
        spec = OutputSpec(tuple(dis), n_outputs)
        label = _robustness_label(spec)
        if label is not None:
            spec = robustness_spec(label, n_outputs)
        return Property(self.box, spec, phases)


def _robustness_label(spec: OutputSpec) -> int | None:
    m = spec.n_outputs
    rows = [(c, d) for c, d in spec.disjuncts]
    if len(rows) != m - 1 or any(c.shape[0] != 1 or d[0] != 0 for c, d in rows):
        return None
    labels = {int(np.argmax(c[0])) for c, _ in rows}
    if len(labels) != 1:
        return None
    c = labels.pop()
    ref = robustness_spec(c, m)
    got = sorted(tuple(r[0][0]) for r in rows)
    want = sorted(tuple(r[0][0]) for r in ref.disjuncts)
    return c if got == want else None


def _split_phases(dis, n_out: int, sizes: list[int]):
    """Take the constraints on pre-activation outputs out as phases (same in every disjunct)."""
    flat = np.zeros(sum(sizes), dtype=np.int8)
    common = None
    out = []
    for c, d in dis:
        touches = np.abs(c[:, n_out:]).sum(axis=1) > 0
        pre = c[touches]
        if (np.abs(pre[:, :n_out]).sum(axis=1) > 0).any() or (d[touches] != 0).any():
            raise NapkitError("VNN-LIB: constraints on pre-activation outputs must be phases vs 0")
        if ((pre[:, n_out:] != 0).sum(axis=1) != 1).any():
            raise NapkitError("VNN-LIB: each pre-activation constraint must involve one neuron")
        key = sorted((int(np.flatnonzero(r[n_out:])[0]), float(np.sign(r[n_out:].sum()))) for r in pre)
        if common is not None and key != common:
            raise NapkitError("VNN-LIB: pre-activation constraints differ between disjuncts")
        common = key
        if not (~touches).any():
            raise NapkitError("VNN-LIB: a disjunct constrains no network output")
        out.append((c[~touches, :n_out], d[~touches]))
    for i, s in common or []:
        want = -1 if s > 0 else 1  # coef*z <= 0: positive coef means z <= 0 (inactive)
        if flat[i] not in (0, want):
            raise NapkitError(f"VNN-LIB: pre-activation {i} is constrained both ways")
        flat[i] = want
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [flat[offs[k] : offs[k + 1]].copy() for k in range(len(sizes))], out


def read_vnnlib_text(text: str) -> VnnlibSpec:
    declared: dict[tuple[str, int], str] = {}
    input_rows: list[Row] = []
    output_dnf: list[list[Row]] = [[]]
    for form in parse_sexprs(text):
        if not isinstance(form, list) or not form or not isinstance(form[0], str):
            raise NapkitError(f"malformed VNN-LIB top-level form: {form!r}"[:120])
        if form[0] == "declare-const":
            m = _VAR.match(form[1]) if len(form) == 3 and isinstance(form[1], str) else None
            if not m:
                raise NapkitError(f"VNN-LIB: only X_i/Y_i Real constants are supported: {form!r}"[:120])
            declared[(m.group(1), int(m.group(2)))] = form[2]
        elif form[0] == "assert" and len(form) == 2:
            dnf = _dnf(form[1], declared)
            kinds = {k[0] for conj in dnf for row, _ in conj for k in row}
            if kinds == {"X"}:
                if len(dnf) != 1:
                    raise NapkitError("VNN-LIB: disjunctions over the inputs are not supported")
                input_rows.extend(dnf[0])
            elif kinds == {"Y"}:
                output_dnf = [a + b for a in output_dnf for b in dnf]
            elif not kinds:
                raise NapkitError("VNN-LIB: an assertion without variables")
            else:
                raise NapkitError("VNN-LIB: constraints mixing inputs and outputs are not supported")
        else:
            raise NapkitError(f"VNN-LIB: unsupported command {form[0]!r}")
    nx = sum(1 for k in declared if k[0] == "X")
    ny = sum(1 for k in declared if k[0] == "Y")
    if nx == 0 or ny == 0:
        raise NapkitError("VNN-LIB: the file declares no X_i inputs or no Y_i outputs")
    if set(declared) != {("X", i) for i in range(nx)} | {("Y", i) for i in range(ny)}:
        raise NapkitError("VNN-LIB: X_i and Y_i must be numbered 0..n-1 without gaps")
    lo, hi = np.full(nx, -np.inf), np.full(nx, np.inf)
    for row, const in input_rows:
        if len(row) != 1:
            raise NapkitError("VNN-LIB: only bounds on single inputs are supported")
        ((_, i), a), = row.items()
        v = -const / a
        if a > 0:
            hi[i] = min(hi[i], v)
        else:
            lo[i] = max(lo[i], v)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        i = int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])
        raise NapkitError(f"VNN-LIB: input X_{i} has no lower or no upper bound")
    if output_dnf == [[]]:
        raise NapkitError("VNN-LIB: the file states no output constraint")
    dis = []
    for conj in output_dnf:
        c = np.zeros((len(conj), ny))
        d = np.zeros(len(conj))
        for r, (row, const) in enumerate(conj):
            for (_, i), a in row.items():
                c[r, i] += a
            d[r] = -const
        dis.append((c, d))
    return VnnlibSpec(InputBox(lo, hi), tuple(dis), ny)


def read_vnnlib(path: str | Path) -> VnnlibSpec:
    """Read a ``.vnnlib`` or ``.vnnlib.gz`` file."""
    if isinstance(path, str) and ("\n" in path or path.lstrip().startswith(("(", ";"))):
        raise NapkitError("read_vnnlib takes a file path; this looks like VNN-LIB text: use read_vnnlib_text")
    p = Path(path)
    try:
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise NapkitError(f"VNN-LIB file not found: {p}") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise NapkitError(f"{p} is not a readable VNN-LIB file: {exc}") from None
    try:
        return read_vnnlib_text(text)
    except NapkitError as exc:
        raise NapkitError(f"{p.name}: {exc}") from None
