"""SAE folders in SAELens's layout: ``cfg.json`` and ``sae_weights.safetensors``.

The weights keep SAELens's names and shapes (W_enc [d_in, d_sae], W_dec [d_sae, d_in],
b_enc, b_dec); cfg.json carries SAELens's fields (``architecture`` "topk" or "standard",
``k``, ``metadata.hook_name``...) plus napkit's own: the fingerprint of the model the SAE
was trained on, so that an SAE for another model is refused at load time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import model_fingerprint
from napkit.lm.sae import SparseAutoencoder
from napkit.staging import check_parent, kept_in_place, move_into_place, staging_folder

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
WEIGHT_SHAPES = {
    "W_enc": ("d_in", "d_sae"),
    "W_dec": ("d_sae", "d_in"),
    "b_enc": ("d_sae",),
    "b_dec": ("d_in",),
}
SAELENS_LAYOUT = "6.0.0"  # the SAELens major version whose cfg.json layout is written
ARCHITECTURES = {"topk": "topk", "l1": "standard"}  # napkit kind -> SAELens architecture


def sae_config(sae: SparseAutoencoder) -> dict:
    """cfg.json contents: SAELens 6's fields plus ``napkit_kind`` and the model fingerprint."""
    cfg = {
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "architecture": ARCHITECTURES[sae.kind],
        # SAELens reads a cfg.json without metadata.sae_lens_version as its pre-6 layout (and then
        # drops the metadata); the version names the layout these fields follow
        "metadata": {
            "sae_lens_version": SAELENS_LAYOUT,
            "hook_name": sae.hook_name or None,
            "model_name": None,
        },
        "napkit_kind": sae.kind,
        "napkit_model_fingerprint": sae.model_fingerprint,
    }
    if sae.kind == "topk":
        cfg["k"] = sae.k
    return cfg


def check_sae_target(folder: str | Path) -> Path:
    """Where an SAE may be saved: a new folder in an existing one, an empty folder, or an SAE
    folder (which is replaced). A folder holding anything else is refused even with --force:
    replacing it would delete those files (``--out .`` deleted the current folder's)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise NapkitError(f"{out} exists and is not a folder")
    check_parent(out)
    ours = (CFG_FILE, WEIGHTS_FILE)
    other = sorted(p.name for p in out.iterdir() if p.name not in ours) if out.is_dir() else []
    if other:
        raise NapkitError(f"{out} holds other files than an SAE ({other[0]}): give a new or empty folder")
    return out


def save_sae(sae: SparseAutoencoder, folder: str | Path) -> Path:
    """Write the folder atomically: a temporary sibling first, then one rename (the current
    folder or a link to a folder: its two files are replaced, each by one rename)."""
    out = check_sae_target(folder)
    tmp = staging_folder(out)
    try:
        tensors = {name: getattr(sae, name).detach().float().contiguous() for name in WEIGHT_SHAPES}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / CFG_FILE).write_text(json.dumps(sae_config(sae), indent=2))
        if out.is_dir() and not kept_in_place(out):
            shutil.rmtree(out)  # an SAE folder (check_sae_target): replaced as a whole
        move_into_place(tmp, out, last=CFG_FILE)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise NapkitError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _read_cfg(folder: Path) -> dict:
    try:
        cfg = json.loads((folder / CFG_FILE).read_text())
    except FileNotFoundError:
        raise NapkitError(f"{folder} has no {CFG_FILE}: not an SAE folder") from None
    except json.JSONDecodeError as exc:
        raise NapkitError(f"{folder / CFG_FILE} is not valid JSON: {exc.msg}") from None
    missing = [key for key in ("d_in", "d_sae", "architecture") if key not in cfg]
    if missing:
        raise NapkitError(f"{folder / CFG_FILE} lacks {', '.join(missing)}")
    return cfg


def _fingerprint_of(model) -> str:
    """The fingerprint of a ``LanguageModel`` (from :func:`napkit.lm.models.load`) or a torch module."""
    known = getattr(model, "fingerprint", None)
    if isinstance(known, str):
        return known
    if not isinstance(model, nn.Module):
        raise NapkitError(f"model must be a language model or a torch module, got {type(model).__name__}")
    return model_fingerprint(model)


def load_sae(folder: str | Path, model=None) -> SparseAutoencoder:
    """Read an SAE folder; with ``model`` (a ``LanguageModel`` or its torch module), refuse an
    SAE that was trained on another model."""
    folder = Path(folder)
    cfg = _read_cfg(folder)
    kinds = {v: k for k, v in ARCHITECTURES.items()}
    kind = cfg.get("napkit_kind") or kinds.get(cfg["architecture"])
    if kind not in ARCHITECTURES:
        arch = cfg["architecture"]
        raise NapkitError(f"unsupported SAE architecture {arch!r} (napkit reads topk and standard)")
    if model is not None:
        want, have = cfg.get("napkit_model_fingerprint"), _fingerprint_of(model)
        if want is None:
            raise NapkitError(f"{folder} names no model fingerprint: cannot check it belongs to this model")
        if want != have:
            raise NapkitError(
                f"{folder} holds an SAE for another model (fingerprint {want[:12]}…, this {have[:12]}…)"
            )
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except FileNotFoundError:
        raise NapkitError(f"{folder} has no {WEIGHTS_FILE}") from None
    except Exception as exc:  # safetensors raises its own error type on a damaged file
        raise NapkitError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {exc}") from None
    dims = {"d_in": int(cfg["d_in"]), "d_sae": int(cfg["d_sae"])}
    for name, shape in WEIGHT_SHAPES.items():
        want_shape = tuple(dims[s] for s in shape)
        if name not in tensors or tuple(tensors[name].shape) != want_shape:
            got = tuple(tensors[name].shape) if name in tensors else "missing"
            raise NapkitError(f"{WEIGHTS_FILE}: {name} should be {list(want_shape)}, is {got}")
        if not torch.isfinite(tensors[name]).all():
            raise NapkitError(f"{WEIGHTS_FILE}: {name} contains NaN or infinity")
    sae = SparseAutoencoder(
        dims["d_in"],
        dims["d_sae"],
        kind,
        cfg.get("k"),
        hook_name=(cfg.get("metadata") or cfg.get("meta") or {}).get("hook_name") or "",
        model_fingerprint=cfg.get("napkit_model_fingerprint"),
    )
    with torch.no_grad():
        for name in WEIGHT_SHAPES:
            getattr(sae, name).copy_(tensors[name])
    return sae.eval()
