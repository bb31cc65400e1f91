"""Image output: linear EXR (OpenEXR, extra AOV channels) and sRGB PNG, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserError


def rel_mse(image: np.ndarray, reference: np.ndarray) -> float:
    """Relative MSE of an image against a reference: mean (image - ref)^2 / (ref^2 + 0.01)."""
    return float(np.mean((image - reference) ** 2 / (reference ** 2 + 1e-2)))


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def to_png8(rgb: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """(H,W,3) linear radiance -> 8-bit sRGB (clamped, like Mitsuba's PNG output), after 2^exposure scaling."""
    scaled = np.nan_to_num(rgb.astype(np.float64) * (2.0 ** exposure), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(linear_to_srgb(scaled) * 255.0).astype(np.uint8)


def _atomic_target(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(f"{path}: exists; pass --force to overwrite")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)


def _write_atomically(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions a plain open() would
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, force: bool = False) -> None:
    """Writes a text file (JSON, HTML) atomically; an existing file needs force."""
    path = Path(path)
    _atomic_target(path, force)
    _write_atomically(path, lambda tmp: tmp.write_text(text))


def write_exr(path: Path, channels: dict[str, np.ndarray], force: bool = False) -> None:
    """Writes float32 channels (name -> (H,W) or (H,W,C)) as a ZIP-compressed EXR; (H,W,3) 'RGB' becomes R,G,B."""
    import OpenEXR

    path = Path(path)
    _atomic_target(path, force)
    flat = {}
    for name, arr in channels.items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if arr.ndim == 2:
            flat[name] = arr
        elif name == "RGB" and arr.shape[-1] == 3:
            flat["RGB"] = arr
        else:
            vector = name in ("normal", "position") or arr.shape[-1] != 3
            suffixes = "XYZW"[: arr.shape[-1]] if vector else "RGB"
            for i, s in enumerate(suffixes):
                flat[f"{name}.{s}"] = np.ascontiguousarray(arr[..., i])
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}

    def write(tmp: Path):
        with OpenEXR.File(header, flat) as f:
            f.write(str(tmp))

    _write_atomically(path, write)


def read_exr_channels(path: Path) -> dict[str, np.ndarray]:
    """All channels of an EXR as float32 (H,W) arrays, plus 'RGB' (H,W,3) when R, G, B exist."""
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as f:
        ch = {name: np.asarray(c.pixels, dtype=np.float32) for name, c in f.channels().items()}
    if all(k in ch for k in "RGB"):
        ch["RGB"] = np.stack([ch["R"], ch["G"], ch["B"]], -1)
    return ch


def write_png(path: Path, rgb: np.ndarray, force: bool = False, exposure: float = 0.0) -> None:
    import imageio.v3 as iio

    path = Path(path)
    _atomic_target(path, force)
    _write_atomically(path, lambda tmp: iio.imwrite(tmp, to_png8(rgb, exposure), extension=".png"))


def write_image(path: Path, rgb: np.ndarray, aovs: dict[str, np.ndarray] | None = None, force: bool = False) -> None:
    """By extension: .exr linear float RGB (+ AOV channels), .png sRGB 8-bit. Anything else is a UserError."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".exr":
        write_exr(path, {"RGB": rgb, **(aovs or {})}, force=force)
    elif ext == ".png":
        write_png(path, rgb, force=force)
    else:
        raise UserError(f"--out {path}: unsupported extension {path.suffix!r}; expected .exr or .png")
