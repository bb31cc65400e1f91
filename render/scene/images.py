"""Image files for textures and env maps: PNG/JPG (sRGB -> linear unless raw), EXR (OpenEXR), HDR (RGBE)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ImageReadError(Exception):
    """The file exists but could not be decoded; the message says why (the loader adds file:line)."""


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def read_exr(path: Path) -> np.ndarray:
    """(H, W, C) float32 from an OpenEXR file; channels R,G,B (or Y) in that order, alpha dropped."""
    from ..core.image import read_exr_channels

    try:
        ch = read_exr_channels(path)
    except ImportError:
        raise ImageReadError("reading EXR needs the OpenEXR package (pip install openexr)") from None
    except Exception as e:  # OpenEXR raises plain RuntimeError/OSError for corrupt files
        raise ImageReadError(f"not a readable OpenEXR file ({e})") from None
    for names in (("R", "G", "B"), ("Y",)):
        if all(n in ch for n in names):
            return np.stack([ch[n] for n in names], axis=-1)
    raise ImageReadError(f"EXR has channels {sorted(k for k in ch if k != 'RGB')}; expected R,G,B or Y")


def read_hdr(path: Path) -> np.ndarray:
    """(H, W, 3) float32 from a Radiance RGBE .hdr file (flat or new-style RLE scanlines, -Y H +X W only)."""
    data = path.read_bytes()
    pos = 0
    header_end = data.find(b"\n\n")
    if not data.startswith(b"#?") or header_end < 0:
        raise ImageReadError("not a Radiance HDR file (no '#?' header)")
    if b"FORMAT=32-bit_rle_xyze" in data[:header_end]:
        raise ImageReadError("XYZE HDR files are not supported; convert to RGBE")
    pos = header_end + 2
    line_end = data.find(b"\n", pos)
    res = data[pos:line_end].split()
    if len(res) != 4 or res[0] != b"-Y" or res[2] != b"+X":
        raise ImageReadError(f"unsupported HDR resolution line {data[pos:line_end]!r}; expected '-Y H +X W'")
    h, w = int(res[1]), int(res[3])
    pos = line_end + 1
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((h, w, 4), dtype=np.uint8)
    try:
        for y in range(h):
            if 8 <= w < 32768 and buf[pos] == 2 and buf[pos + 1] == 2 and buf[pos + 2] < 128:
                pos += 4
                for c in range(4):
                    x = 0
                    while x < w:
                        n = int(buf[pos])
                        pos += 1
                        if n > 128:
                            n -= 128
                            out[y, x:x + n, c] = buf[pos]
                            pos += 1
                        else:
                            out[y, x:x + n, c] = buf[pos:pos + n]
                            pos += n
                        x += n
            else:
                out[y] = buf[pos:pos + 4 * w].reshape(w, 4)
                pos += 4 * w
    except (IndexError, ValueError):
        raise ImageReadError("truncated or corrupt HDR pixel data") from None
    e = out[..., 3].astype(np.int32)
    f = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return out[..., :3].astype(np.float32) * f[..., None]


def read_image(path: Path, raw: bool = False) -> np.ndarray:
    """(H, W, C) float32 linear, C = 1 or 3 (alpha dropped). LDR files are sRGB-decoded unless raw."""
    suffix = path.suffix.lower()
    if suffix == ".exr":
        return read_exr(path)
    if suffix == ".hdr":
        return read_hdr(path)
    import imageio.v3 as iio

    try:
        img = np.asarray(iio.imread(path))
    except Exception as e:
        detail = str(e).splitlines()[0][:120] if "backend" not in str(e) else "unrecognised or corrupt data"
        raise ImageReadError(f"could not decode image ({detail})") from None
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 2, 3, 4):
        raise ImageReadError(f"unsupported image shape {img.shape}")
    if img.shape[-1] in (2, 4):
        img = img[..., :-1]
    if img.dtype == np.uint8:
        x = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        x = img.astype(np.float32) / 65535.0
    else:
        x = img.astype(np.float32)
    return x if raw else srgb_to_linear(x)
