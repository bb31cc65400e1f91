"""RUN/report.html: loss curves, held-out renders (RGB, depth, normal, uncertainties) and the pixel-sampling heat map."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch

from ..core.image import _write_atomically
from .renderer import render_image


def _colormap(x: np.ndarray, name: str = "viridis") -> np.ndarray:
    import matplotlib

    finite = np.isfinite(x)
    lo, hi = (np.percentile(x[finite], [2, 98]) if finite.any() else (0.0, 1.0))
    y = np.clip((x - lo) / max(hi - lo, 1e-8), 0, 1)
    return (matplotlib.colormaps[name](y)[..., :3] * 255).astype(np.uint8)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _save(path: Path, rgb8: np.ndarray) -> None:
    import imageio.v3 as iio

    _write_atomically(path, lambda tmp: iio.imwrite(tmp, rgb8))


def loss_plot(metrics_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(l) for l in metrics_path.read_text().splitlines() if l.strip()]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if rows:
        steps = [r["step"] for r in rows]
        for key in sorted({k for r in rows for k in r} - {"step", "time", "beta"}):
            ax[0].plot(steps, [r.get(key, np.nan) for r in rows], label=key)
        ax[1].semilogy(steps, [r["beta"] for r in rows])
    ax[0].set_xlabel("step"), ax[0].set_title("losses (weighted)"), ax[0].legend(fontsize=7)
    ax[1].set_xlabel("step"), ax[1].set_title("VolSDF beta")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def view_images(model, grid, dataset, index: int, opts, scale: float) -> tuple[dict[str, np.ndarray], float]:
    """One view rendered at `scale` x resolution as (H,W,3) uint8 images: gt (the dataset's RGB, area-downsampled),
    rgb, depth (turbo), normal (camera frame, OpenGL colours), depth/normal uncertainty (magma); and the PSNR of
    rgb against gt (dB). The report's held-out rows and the viewer's per-view maps."""
    out = render_image(model, grid, dataset, index, opts, scale)
    gt = dataset_rgb(dataset, index, scale)
    images = {
        "gt": _u8(gt.numpy()),
        "rgb": _u8(out["rgb"].numpy()),
        "depth": _colormap(out["depth"].numpy(), "turbo"),
        "normal": _u8((torch.nn.functional.normalize(out["normal"], dim=-1).numpy() * [1, -1, -1] + 1) / 2),
        "depth_uncertainty": _colormap(out["uncertainty"][..., 0].numpy(), "magma"),
        "normal_uncertainty": _colormap(out["uncertainty"][..., 1].numpy(), "magma"),
    }
    psnr = float(-10 * torch.log10(((out["rgb"] - gt) ** 2).mean().clamp(min=1e-10)))
    return images, psnr


def dataset_rgb(dataset, index: int, scale: float) -> torch.Tensor:
    """(h,w,3) float the dataset's image `index` area-downsampled to render_image's size at `scale`."""
    h, w = int(dataset.height * scale), int(dataset.width * scale)
    img = dataset.images[index].permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(img, size=(h, w), mode="area")[0].permute(1, 2, 0).cpu()


def heat_image(heat: np.ndarray, upscale: int = 4) -> np.ndarray:
    """A sampler heat map (gh, gw) of probabilities as an (H,W,3) uint8 inferno image, `upscale` pixels per cell
    (a uniform map, before the first refresh, is the colormap's middle, not its black)."""
    if np.ptp(heat) <= 1e-9 * np.abs(heat).max():
        import matplotlib

        mid = (np.asarray(matplotlib.colormaps["inferno"](0.5)[:3]) * 255).astype(np.uint8)
        rgb = np.broadcast_to(mid, heat.shape + (3,))
    else:
        rgb = _colormap(heat, "inferno")
    return np.kron(rgb, np.ones((upscale, upscale, 1), dtype=np.uint8))


def write_report(trainer, run_dir: Path, summary: dict) -> Path:
    """Renders up to config.report_views held-out views and writes RUN/report.html (+ RUN/report/*.png)."""
    run_dir = Path(run_dir)
    img_dir = run_dir / "report"
    img_dir.mkdir(parents=True, exist_ok=True)
    c, ds = trainer.config, trainer.dataset
    loss_plot(run_dir / "metrics.jsonl", img_dir / "losses.png")
    views = (trainer.test_ids or trainer.train_ids)[: c.report_views]
    rows = []
    trainer.model.eval()
    for i in views:
        images, psnr = view_images(trainer.model, trainer.grid, ds, i, trainer.opts, c.report_scale)
        for k, v in images.items():
            _save(img_dir / f"view{i:03d}_{k}.png", v)
        rows.append((ds.names[i] if i < len(ds.names) else str(i), i, list(images), psnr))
    _save(img_dir / "sampling_heat.png", heat_image(trainer.sampler.heat_map(0).numpy()))
    flags = getattr(trainer, "prior_flags", None)
    if flags is not None:
        first = trainer.train_ids[0]
        rgb = ds.images[first].cpu().numpy().copy()
        rgb[flags[first].numpy()] = (1.0, 0.1, 0.1)
        _save(img_dir / "prior_conflict.png", _u8(rgb))
    first_train = ds.names[trainer.train_ids[0]] if ds.names else str(trainer.train_ids[0])
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>radiant reconstruct</title>",
             "<style>body{font-family:sans-serif;margin:2em}img{margin:2px;image-rendering:pixelated}"
             "td{padding:4px;vertical-align:top;font-size:12px}</style></head><body>",
             "<h1>Reconstruction report</h1>",
             "<pre>" + html.escape(json.dumps(summary, indent=1)) + "</pre>",
             "<h2>Losses</h2><img src='report/losses.png'>",
             "<h2>Held-out views</h2><table>"]
    for name, i, keys, psnr in rows:
        parts.append(f"<tr><td>{html.escape(name)}<br>PSNR {psnr:.2f} dB</td>")
        for k in keys:
            parts.append(f"<td>{k}<br><img src='report/view{i:03d}_{k}.png'></td>")
        parts.append("</tr>")
    parts.append("</table>")
    parts.append(f"<h2>Pixel-sampling probability (training view {html.escape(first_train)})</h2>"
                 "<p>P = (1 - r) U / sum U + r / N over cells of the uncertainty map.</p>"
                 "<img src='report/sampling_heat.png'>")
    if flags is not None:
        parts.append("<h2>Prior conflicts (same view)</h2><p>Red: pixels whose aligned depth prior the other views' "
                     "colours contradict; left out of the prior losses, more rays drawn there. "
                     + html.escape(json.dumps(trainer.prior_conflict)) + "</p><img src='report/prior_conflict.png'>")
    parts.append("</body></html>")
    path = run_dir / "report.html"
    from ..core.image import write_text

    write_text(path, "\n".join(parts), force=True)
    return path
