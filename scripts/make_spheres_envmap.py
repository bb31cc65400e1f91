"""Write scenes/spheres/sky.exr: a small procedural sky (blue gradient, warm ground, a bright sun) for the demo."""

from pathlib import Path

import numpy as np

from render.core.image import write_exr


def sky(width: int = 64, height: int = 32) -> np.ndarray:
    v = (np.arange(height) + 0.5) / height               # 0 = zenith, 1 = nadir (Mitsuba's envmap rows)
    u = (np.arange(width) + 0.5) / width
    theta, phi = np.meshgrid(v * np.pi, u * 2 * np.pi, indexing="ij")
    up = np.cos(theta)
    zenith, horizon, ground = np.array([0.25, 0.45, 1.0]), np.array([1.0, 1.0, 1.05]), np.array([0.35, 0.3, 0.25])
    t = np.clip(up, 0, 1)[..., None]
    img = np.where(up[..., None] > 0, horizon * (1 - t) + zenith * t, ground)
    sun_dir = np.array([np.sin(0.8) * np.cos(1.0), np.cos(0.8), np.sin(0.8) * np.sin(1.0)])
    d = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta), np.sin(theta) * np.sin(phi)], axis=-1)
    img = img + 200.0 * (d @ sun_dir > np.cos(0.08))[..., None] * np.array([1.0, 0.9, 0.75])
    return img.astype(np.float32)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "scenes" / "spheres" / "sky.exr"
    write_exr(out, {"RGB": sky()}, force=True)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
