"""The NAP type and its versioned JSON file format.

A :class:`NAPSet` holds one NAP per class for one network: boolean masks over all hidden
neurons (concatenated layer by layer) of the units that must be active (A) and inactive
(D). The file records the model's fingerprint, layer names and sizes, and δ; loading
validates it against a model so that a NAP of another model is refused.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napkit.errors import NapkitError
from napkit.staging import replacing

NAP_FORMAT = "napkit.naps/1"
NEAREST_LAYERS = 3  # valid layer names suggested when a NAP file names an unknown one
INDEX_MAX = int(np.iinfo(np.int64).max)  # labels, supports and sizes are held as int64


def _count(value: object) -> bool:
    """``value`` is an integer (not a bool) in [0, INDEX_MAX]: a label, support or size."""
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= INDEX_MAX


def check_napset(naps: object, what: str = "naps") -> NAPSet:
    """``naps`` itself when it is a NAPSet; anything else (a path, a dict) is refused clearly."""
    if not isinstance(naps, NAPSet):
        raise NapkitError(
            f"{what} must be a NAPSet (NAPSet.load reads a NAP file), not {type(naps).__name__}"
        )
    return naps


def unknown_layer(name: str, where: str, owner: str, valid) -> NapkitError:
    """The error for a layer ``name`` that ``owner`` lacks, naming the closest of its ``valid`` layers."""
    near = difflib.get_close_matches(name, [str(v) for v in valid], n=NEAREST_LAYERS, cutoff=0.0)
    hint = f"nearest: {', '.join(near)}" if near else f"{owner} lists no layers"
    return NapkitError(f"{where} names layer {name!r}, which {owner} does not have; {hint}")


def field_error(where: str, label: int | None, field: str, problem: str) -> NapkitError:
    """The one message for a NAP file's field out of its domain: file, class, field, problem."""
    of_class = "" if label is None else f", class {label}"
    return NapkitError(f"{where}{of_class}, {field}: {problem}")


def _unit_indices(idx: object, size: int, where: str, label: int, field: str) -> np.ndarray:
    """The unit indices of one set of one layer: a list of distinct integers in [0, size)."""
    if not isinstance(idx, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in idx):
        raise field_error(where, label, field, "unit indices must be a list of integers")
    outside = [i for i in idx if not 0 <= i < size]  # before numpy, which overflows on huge ints
    if outside:
        problem = f"unit index {outside[0]} out of range (the layer has {size} units)"
        raise field_error(where, label, field, problem)
    units, counts = np.unique(np.asarray(idx, dtype=np.int64), return_counts=True)
    if (counts > 1).any():
        raise field_error(where, label, field, f"unit {int(units[counts > 1][0])} is listed more than once")
    return units


def _fill_units(row: np.ndarray, nap: dict, key: str, names, off: np.ndarray, where: str) -> None:
    """Set in ``row`` (one NAP's flat mask) the units of its set ``key`` ("active"/"inactive")."""
    label, units = nap["label"], nap[key]
    if not isinstance(units, dict):
        raise field_error(where, label, repr(key), "must map layer names to lists of unit indices")
    for name in units:
        if name not in names:
            raise unknown_layer(str(name), f"{where}, class {label}, {key!r} set", "the NAP file", names)
    for k, name in enumerate(names):
        field = f"{key!r} units of layer {name!r}"
        row[off[k] + _unit_indices(units.get(name, []), int(off[k + 1] - off[k]), where, label, field)] = True


@dataclass(frozen=True)
class NAP:
    """The pattern of one class: per layer, indices of must-be-active and must-be-inactive units."""

    label: int
    active: dict[str, np.ndarray]
    inactive: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        """Number of constrained neurons."""
        return int(sum(len(v) for v in self.active.values()) + sum(len(v) for v in self.inactive.values()))


@dataclass
class NAPSet:
    """One NAP per class of a network, as boolean masks over the flat neuron index."""

    layer_names: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    fingerprint: str
    delta: float
    labels: np.ndarray  # (C,) class label of each row
    active: np.ndarray  # (C, n_neurons) bool
    inactive: np.ndarray  # (C, n_neurons) bool
    support: np.ndarray  # (C,) samples each NAP was mined from
    all_samples: bool = False
    _packed: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        from napkit.patterns.membership import as_signs

        labels = np.asarray(self.labels)
        if labels.size == 0:  # no class (e.g. built from an empty list): nothing to check
            labels = labels.reshape(0).astype(np.int64)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels < 0).any():
            raise NapkitError(f"NAP labels must be class indices >= 0, got {labels.tolist()}")
        if not isinstance(self.delta, int | float | np.integer | np.floating) or not 0.5 < self.delta <= 1.0:
            raise NapkitError(f"a NAP set's δ must satisfy 0.5 < δ ≤ 1, got {self.delta}")
        if len(self.layer_names) != len(self.layer_sizes):
            raise NapkitError(f"{len(self.layer_names)} layer names for {len(self.layer_sizes)} layer sizes")
        self.labels = labels.astype(np.int64)
        self.active = as_signs(self.active, "active masks")  # NaN or 0.5 read as "constrained" before
        self.inactive = as_signs(self.inactive, "inactive masks")
        self.support = np.asarray(self.support, dtype=np.int64)
        n = int(sum(self.layer_sizes))
        shape = (len(self.labels), n)
        if self.active.shape != shape or self.inactive.shape != shape:
            raise NapkitError(f"NAP masks must have shape {shape}")
        if (self.active & self.inactive).any():
            raise NapkitError("a neuron cannot be both active and inactive in one NAP")
        if len(set(self.labels.tolist())) != len(self.labels):
            raise NapkitError("each class may have only one NAP")

    # ---- access ----------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(sum(self.layer_sizes))

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.layer_sizes)]).astype(np.int64)

    def row(self, label: int) -> int:
        hits = np.flatnonzero(self.labels == label)
        if not len(hits):
            raise NapkitError(f"there is no NAP for class {label}; classes: {self.labels.tolist()}")
        return int(hits[0])

    def nap(self, label: int) -> NAP:
        r, off = self.row(label), self.offsets

        def split(mask: np.ndarray) -> dict[str, np.ndarray]:
            return {n: np.flatnonzero(mask[r, off[k] : off[k + 1]]) for k, n in enumerate(self.layer_names)}

        return NAP(int(label), split(self.active), split(self.inactive))

    def phases(self, label: int, layer_names=None, layer_sizes=None) -> list[np.ndarray]:
        """Per hidden layer, int8 +1 (must be active), -1 (must be inactive), 0 (free).

        With a model's ``layer_names`` (and sizes), one array per model layer: layers the
        NAP does not cover are free. Without, one array per NAP layer.
        """
        r, off = self.row(label), self.offsets
        flat = self.active[r].astype(np.int8) - self.inactive[r].astype(np.int8)
        own = {n: flat[off[k] : off[k + 1]] for k, n in enumerate(self.layer_names)}
        if layer_names is None:
            return list(own.values())
        missing = [n for n in self.layer_names if n not in layer_names]
        if missing:
            raise NapkitError(f"the model has no layer {missing[0]!r} that the NAP constrains")
        sizes = layer_sizes or [len(own[n]) for n in layer_names]
        out = []
        for n, size in zip(layer_names, sizes, strict=True):
            if n in own and len(own[n]) != size:
                raise NapkitError(f"layer {n!r} has {size} units in the model, {len(own[n])} in the NAP")
            out.append(own[n] if n in own else np.zeros(size, np.int8))
        return out

    def with_phases(self, label: int, phases: list[np.ndarray], layer_names=None) -> NAPSet:
        """A copy whose NAP of ``label`` is given by per-layer phases (+1, -1, 0).

        ``layer_names`` names the layers of ``phases`` (a model's); only the NAP's are kept.
        """
        r = self.row(label)
        if layer_names is not None:
            by_name = dict(zip(layer_names, phases, strict=True))
            phases = [by_name[n] for n in self.layer_names]
        flat = np.concatenate([np.asarray(p).reshape(-1) for p in phases]) if len(phases) else np.zeros(0)
        if flat.shape != (self.n_neurons,):
            raise NapkitError(f"phases cover {flat.size} neurons, the NAPs {self.n_neurons}")
        if flat.dtype.kind not in "iuf" or not np.isin(flat, (-1, 0, 1)).all():
            raise NapkitError("phases must be -1 (inactive), 0 (free) or +1 (active) for every unit")
        active, inactive = self.active.copy(), self.inactive.copy()
        active[r], inactive[r] = flat > 0, flat < 0
        return NAPSet(
            self.layer_names,
            self.layer_sizes,
            self.fingerprint,
            self.delta,
            self.labels.copy(),
            active,
            inactive,
            self.support.copy(),
            self.all_samples,
        )

    def sizes(self) -> np.ndarray:
        """Number of constrained neurons per class."""
        return self.active.sum(1) + self.inactive.sum(1)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """Masks packed into uint64 words (C, words), as :func:`pack_signs` packs patterns."""
        if not self._packed:
            from napkit.patterns.membership import pack_signs

            self._packed.extend([pack_signs(self.active), pack_signs(self.inactive)])
        return self._packed[0], self._packed[1]

    # ---- validation --------------------------------------------------------------------------
    def check_layers_of(self, layer_names, layer_sizes, where: str = "the NAP file") -> None:
        """Refuse NAP layers the model lacks or sizes it, by name (a NAP may cover a subset)."""
        size_of = dict(zip(layer_names, layer_sizes, strict=True))
        for name, size in zip(self.layer_names, self.layer_sizes, strict=True):
            if name not in size_of:
                raise unknown_layer(name, where, "the model", layer_names)
            if size_of[name] != size:
                raise NapkitError(
                    f"{where}: layer {name!r} has {size_of[name]} units in the model, {size} in the NAPs"
                )

    def check_model(self, fingerprint: str, n_classes: int | None = None, where: str = "these NAPs") -> None:
        """Refuse to pair these NAPs with another model (or one without their classes)."""
        if fingerprint != self.fingerprint:
            raise NapkitError(f"{where}: mined from another model (fingerprint differs)")
        if n_classes is not None and (self.labels >= n_classes).any():
            bad = int(self.labels[self.labels >= n_classes][0])
            raise field_error(
                where, bad, "'label'",
                f"a NAP for class {bad}, but the model has {n_classes} output classes (0-{n_classes - 1})",
            )

    # ---- file format ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        naps = []
        for c in self.labels.tolist():
            nap = self.nap(c)
            naps.append(
                {
                    "label": c,
                    "support": int(self.support[self.row(c)]),
                    "active": {k: v.tolist() for k, v in nap.active.items()},
                    "inactive": {k: v.tolist() for k, v in nap.inactive.items()},
                }
            )
        return {
            "format": NAP_FORMAT,
            "fingerprint": self.fingerprint,
            "layers": [
                {"name": n, "size": int(s)} for n, s in zip(self.layer_names, self.layer_sizes, strict=True)
            ],
            "delta": self.delta,
            "all_samples": self.all_samples,
            "naps": naps,
        }

    def save(self, path: str | Path) -> Path:
        """Write the JSON file atomically (a temporary file, then a rename)."""
        p = Path(path)
        with replacing(p) as tmp:
            tmp.write_text(json.dumps(self.to_dict()))
        return p

    @classmethod
    def from_dict(cls, d: dict, where: str = "the NAP file") -> NAPSet:
        """The NAPSet of a NAP file's JSON. Every field is checked against its domain; one out
        of it is refused by one message naming ``where`` (the file), the class and the field."""
        try:
            return cls._from_checked(d, where)
        except NapkitError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NapkitError(f"{where} is malformed: missing or invalid field ({exc})") from None

    @classmethod
    def _from_checked(cls, d: dict, where: str) -> NAPSet:
        if d.get("format") != NAP_FORMAT:
            raise NapkitError(
                f"{where}: not a napkit NAP file (format {d.get('format')!r}, expected {NAP_FORMAT!r})"
            )
        if not d.get("naps"):
            raise NapkitError(f"{where} holds no NAPs")
        delta = d.get("delta")
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0.5 < delta <= 1.0:
            raise NapkitError(f"{where}, 'delta': {delta!r} is outside (0.5, 1], the range of the mining δ")
        all_samples = d.get("all_samples", False)
        if not isinstance(all_samples, bool | np.bool_):  # np.bool_: a dict built in Python
            raise NapkitError(f"{where}, 'all_samples': {all_samples!r} is not true or false")
        names = tuple(str(layer["name"]) for layer in d["layers"])
        sizes = tuple(layer["size"] for layer in d["layers"])
        if len(set(names)) != len(names) or not all(_count(s) for s in sizes) or sum(sizes) > INDEX_MAX:
            raise NapkitError(f"{where}, 'layers': layer names must be unique and sizes integers ≥ 0")
        off = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        c = len(d["naps"])
        labels, support = np.zeros(c, np.int64), np.zeros(c, np.int64)
        try:
            active, inactive = np.zeros((c, off[-1]), bool), np.zeros((c, off[-1]), bool)
        except (MemoryError, ValueError):  # sizes no network has (ValueError: beyond numpy's index)
            problem = f"{c} NAPs over {int(off[-1])} units do not fit in memory"
            raise field_error(where, None, "'layers'", problem) from None
        for r, nap in enumerate(d["naps"]):
            label = nap["label"]
            if not _count(label):
                raise field_error(where, None, "'label'", f"{label!r} is not a class index (an integer ≥ 0)")
            if label in labels[:r]:
                raise field_error(where, label, "'label'", "a second NAP for this class (one per class)")
            count = nap.get("support", 0)
            if not _count(count):
                problem = f"{count!r} is not a sample count (an integer ≥ 0)"
                raise field_error(where, label, "'support'", problem)
            labels[r], support[r] = label, count
            _fill_units(active[r], nap, "active", names, off, where)
            _fill_units(inactive[r], nap, "inactive", names, off, where)
            both = np.flatnonzero(active[r] & inactive[r])
            if both.size:
                k = int(np.searchsorted(off, both[0], side="right")) - 1
                unit = int(both[0] - off[k])
                problem = f"unit {unit} is both active and inactive (in both sets)"
                raise field_error(where, label, f"layer {names[k]!r}", problem)
        return cls(
            layer_names=names,
            layer_sizes=sizes,
            fingerprint=str(d["fingerprint"]),
            delta=float(delta),
            labels=labels,
            active=active,
            inactive=inactive,
            support=support,
            all_samples=bool(all_samples),
        )

    @classmethod
    def load(cls, path: str | Path, model=None) -> NAPSet:
        """Read a NAP file; with ``model`` (ReluNetwork or torch module) check it belongs to it."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise NapkitError(f"NAP file not found: {p}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise NapkitError(f"{p} is not valid JSON: {exc}") from None
        if not isinstance(d, dict):
            raise NapkitError(f"{p} is not a napkit NAP file")
        where = f"NAP file {p}"
        naps = cls.from_dict(d, where)
        if model is not None:
            from napkit.network import ReluNetwork

            if isinstance(model, ReluNetwork):  # no torch needed
                naps.check_model(model.fingerprint(), n_classes=model.n_outputs, where=where)
                naps.check_layers_of(model.layer_names, model.layer_sizes, where=where)
            else:
                from napkit.capture import model_fingerprint

                naps.check_model(model_fingerprint(model), where=where)
        return naps
