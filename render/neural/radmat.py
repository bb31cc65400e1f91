"""The .radmat file: a neural material's weights as safetensors (never pickle) + JSON metadata in its header.

Tensors: `pyramid.levels.K` (latents, float16, finest first), `brdf.*` and `sampler.*` (float32). Metadata key
"radiant": {"format": "radmat", "version": 1, "network": NetworkConfig, "source": ..., "training": ...,
"errors": ...}. Reading checks every name, shape and dtype against the stored network settings, so a
malformed or foreign file is one clear error, not a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.image import _write_atomically
from ..errors import UserError
from .model import NetworkConfig, NeuralMaterialModel

FORMAT, VERSION = "radmat", 1


def _weights(model: NeuralMaterialModel) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in model.state_dict().items():
        if name.startswith("encoder."):
            continue  # training-only (§5.1): the latents are baked
        t = t.detach().cpu().contiguous()
        out[name] = t.half() if name.startswith("pyramid.") else t.float()
    return out


def save_radmat(path: Path, model: NeuralMaterialModel, metadata: dict, force: bool = False) -> None:
    """Writes atomically (temp file + rename); refuses to overwrite without force."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"--out {path}: exists; pass --force to overwrite")
    meta = {"format": FORMAT, "version": VERSION, "network": model.cfg.to_dict(), **metadata}
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = _weights(model)
    _write_atomically(path, lambda tmp: save_file(weights, str(tmp), metadata={"radiant": json.dumps(meta)}))


def load_radmat(path: Path, device="cpu") -> tuple[NeuralMaterialModel, dict]:
    """Returns (model in eval mode on device, metadata). Any problem with the file -> UserError naming it."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such .radmat file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: not a readable .radmat (safetensors) file: {str(e).splitlines()[0]}") from None
    if "radiant" not in header:
        raise UserError(f"{path}: safetensors file without the 'radiant' metadata of a .radmat")
    try:
        meta = json.loads(header["radiant"])
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: metadata 'radiant' is not valid JSON ({e.msg})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: metadata 'radiant.format': expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise UserError(f"{path}: metadata 'radiant.version': expected {VERSION}, got {meta.get('version')!r}")
    try:
        cfg = NetworkConfig.from_dict(meta.get("network"))
        if cfg.latent_channels <= 0 or cfg.resolution <= 0 or cfg.levels <= 0 or not 0 < cfg.diffuse_floor <= 1:
            raise ValueError("sizes must be positive and diffuse_floor in (0, 1]")
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: metadata 'radiant.network': {e}") from None
    model = NeuralMaterialModel(cfg)
    expected = {k: v for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"missing tensors {missing[:3]}" if missing else f"unexpected tensors {extra[:3]}"
        raise UserError(f"{path}: {what} for network {cfg.to_dict()}")
    for k, t in tensors.items():
        if tuple(t.shape) != tuple(expected[k].shape):
            raise UserError(f"{path}: tensor {k!r}: expected shape {tuple(expected[k].shape)}, got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise UserError(f"{path}: tensor {k!r}: expected a float tensor, got {t.dtype}")
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: tensor {k!r}: contains NaN or infinite values")
    model.load_state_dict({k: t.float() for k, t in tensors.items()})
    return model.to(device).eval(), meta
