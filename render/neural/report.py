"""The bake report (NAME.html, one self-contained file): training curves, BRDF slices reference vs neural at
several wi, and the preview scene rendered with both materials."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
import torch

from ..core.image import _write_atomically, rel_mse, to_png8

SLICE_THETAS = (0.0, 30.0, 60.0, 80.0)
LUM = torch.tensor([0.2126, 0.7152, 0.0722])


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _image_uri(rgb: np.ndarray) -> str:
    import imageio.v3 as iio

    return "data:image/png;base64," + base64.b64encode(iio.imwrite("<bytes>", to_png8(rgb), extension=".png")).decode()


def brdf_slices(reference, neural, uvs=((0.25, 0.25), (0.7, 0.6)), thetas=SLICE_THETAS, n: int = 181,
                reference_eval=None):
    """In-plane slices: wo from -90 to 90 degrees in the plane of wi. Returns {(uv, theta): (angles, ref, neural)}
    of luminance f |cos wo|."""
    evaluate = reference_eval or reference.eval
    out = {}
    angles = torch.linspace(-89.5, 89.5, n)
    a = torch.deg2rad(angles)
    wo = torch.stack([torch.sin(a), torch.zeros_like(a), torch.cos(a)], 1)
    for uv in uvs:
        uvt = torch.tensor([uv], dtype=torch.float32).expand(n, 2)
        for th in thetas:
            t = math.radians(th)
            wi = torch.tensor([[-math.sin(t), 0.0, math.cos(t)]]).expand(n, 3)
            with torch.no_grad():
                ref = evaluate(uvt, wi, wo).float() @ LUM
                neu = neural.eval(uvt, wi, wo).float() @ LUM
            out[(uv, th)] = (angles.numpy(), ref.numpy(), neu.numpy())
    return out


def write_report(path: Path, title: str, history: dict, errors: dict, slices: dict, renders: dict,
                 settings: dict, force: bool = True) -> None:
    """renders: {"reference": (rgb, seconds), "neural": (rgb, seconds)} (either may be missing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [f"<h1>{html.escape(title)}</h1>"]
    # ---- training curves
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, style in (("decoder", "-"), ("finetune", "-")):
        pts = history.get(name, [])
        if pts:
            axes[0].plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{name} (train)")
    val = history.get("validation", [])
    if val:
        axes[0].plot([p[0] for p in val], [p[1] for p in val], "ko", label="held-out")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("seconds")
    axes[0].set_ylabel("log-L1")
    axes[0].legend()
    axes[0].set_title("BRDF decoder")
    pts = history.get("sampler", [])
    if pts:
        axes[1].plot([p[0] for p in pts], [p[1] for p in pts])
    axes[1].set_xlabel("seconds")
    axes[1].set_ylabel("-E_p[log q] (KL + const)")
    axes[1].set_title("sampler")
    parts.append(f'<h2>Training</h2><img src="{_png_uri(fig)}">')
    plt.close(fig)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.5g}</td></tr>" if isinstance(v, float) else
                   f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in errors.items())
    parts.append(f"<table>{rows}</table>")
    # ---- BRDF slices
    uvs = sorted({k[0] for k in slices})
    thetas = sorted({k[1] for k in slices})
    if slices:
        fig, axes = plt.subplots(len(uvs), len(thetas), figsize=(3.2 * len(thetas), 2.8 * len(uvs)), squeeze=False)
        for i, uv in enumerate(uvs):
            for j, th in enumerate(thetas):
                ang, ref, neu = slices[(uv, th)]
                ax = axes[i][j]
                ax.plot(ang, np.maximum(ref, 1e-5), "k-", label="reference")
                ax.plot(ang, np.maximum(neu, 1e-5), "r--", label="neural")
                ax.set_yscale("log")
                ax.set_title(f"uv {uv}, wi {th:.0f} deg", fontsize=9)
                ax.axvline(th, color="0.8", lw=0.8)
                if i == len(uvs) - 1:
                    ax.set_xlabel("wo angle in the plane of wi (deg)")
        axes[0][0].legend(fontsize=8)
        parts.append(f'<h2>BRDF slices (luminance of f cos)</h2><img src="{_png_uri(fig)}">')
        plt.close(fig)
    # ---- renders
    if renders:
        cells = []
        for name, (rgb, secs) in renders.items():
            cells.append(f'<td><img src="{_image_uri(rgb)}" width="320"><br>{html.escape(name)} ({secs:.1f} s)</td>')
        if "reference" in renders and "neural" in renders:
            ref, neu = renders["reference"][0], renders["neural"][0]
            diff = np.abs(neu - ref).mean(-1, keepdims=True).repeat(3, -1) * 4
            cells.append(f'<td><img src="{_image_uri(diff)}" width="320"><br>|neural - reference| x 4, relMSE '
                         f"{rel_mse(neu, ref):.4g}</td>")
        parts.append("<h2>Preview (sphere and plane)</h2><table><tr>" + "".join(cells) + "</tr></table>")
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    parts.append(f"<h2>Settings</h2><table>{rows}</table>")
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
           "body{font-family:sans-serif;margin:2em} td{padding:2px 8px;vertical-align:top}</style></head><body>"
           + "\n".join(parts) + "</body></html>")
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(path)
    _write_atomically(path, lambda tmp: tmp.write_text(doc))
