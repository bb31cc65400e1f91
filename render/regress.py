"""Render-quality regression: our renders of the regression scenes against Mitsuba 3 references, with noise-derived
thresholds, FLIP / relMSE metrics and an HTML report (reference, ours, FLIP and relative-error heat maps).

Thresholds come from the noise at the tested spp, measured per scene by rendering twice with different seeds
(a, b). With ref the (nearly noise-free) reference:
- relMSE(a, ref) must stay below 0.75 x relMSE(a, b): unbiased, the left side is about half the right (one
  render's variance against two); a bias b adds b^2 and fails the test once it is comparable to the noise.
- each channel's image mean of (a + b) / 2 within max(0.3%, 5 sigma) of the reference's, sigma estimated from a - b.
- mean FLIP(a, ref) at most 1.2 x FLIP(a, b) + 0.005 (FLIP of two noisy renders is the noise floor).
"""

from __future__ import annotations

import fnmatch
import html
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .core.image import read_exr_channels, rel_mse, write_png
from .errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "regression"


@dataclass
class SceneResult:
    name: str
    passed: bool
    relmse: float = math.nan
    noise_relmse: float = math.nan
    flip: float = math.nan
    noise_flip: float = math.nan
    mean_ratio: list = field(default_factory=list)
    mean_tolerance: float = math.nan
    reasons: list = field(default_factory=list)
    images: dict = field(default_factory=dict)
    reference_from: str = "Mitsuba 3 scalar_rgb"


def mean_flip(reference: np.ndarray, test: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean HDR-FLIP and its magma heat map (flip-evaluator), on linear RGB."""
    import flip_evaluator as flip

    err_map, mean, _ = flip.evaluate(np.clip(reference, 0, None).astype(np.float32),
                                     np.clip(test, 0, None).astype(np.float32), "HDR")
    return float(mean), err_map


def _heat(x: np.ndarray) -> np.ndarray:
    """Relative error |a - ref| / (ref + 0.01), clipped to [0, 1], as a viridis-like RGB image (float [0,1])."""
    stops = np.array([[0.267, 0.005, 0.329], [0.229, 0.322, 0.546], [0.128, 0.567, 0.551], [0.369, 0.789, 0.383],
                      [0.993, 0.906, 0.144]])
    t = np.clip(x, 0, 1) * (len(stops) - 1)
    i = np.minimum(t.astype(int), len(stops) - 2)
    f = (t - i)[..., None]
    return stops[i] * (1 - f) + stops[i + 1] * f


def scene_names(pattern: str = "*") -> list[str]:
    names = sorted(p.stem for p in (SUITE / "scenes").glob("*.xml"))
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def check_scene(name: str, spp: int, render_fn=None, image_dir: Path | None = None) -> SceneResult:
    from .render import render_scene

    render_fn = render_fn or render_scene
    ref_path = SUITE / "refs" / f"{name}.exr"
    if not ref_path.exists():
        return SceneResult(name, False, reasons=[f"no reference {ref_path.relative_to(ROOT)}; run `make refs`"])
    ref = read_exr_channels(ref_path)["RGB"]
    scene = SUITE / "scenes" / f"{name}.xml"
    a = render_fn(scene, spp=spp, seed=1).rgb
    b = render_fn(scene, spp=spp, seed=2).rgb
    r = SceneResult(name, True)
    if a.shape != ref.shape:
        return SceneResult(name, False, reasons=[f"size {a.shape[:2]} differs from the reference's {ref.shape[:2]}"])
    r.relmse, r.noise_relmse = rel_mse(a, ref), rel_mse(a, b)
    r.flip, flip_map = mean_flip(ref, a)
    r.noise_flip, _ = mean_flip(b, a)
    n = a.shape[0] * a.shape[1]
    sigma = np.sqrt(((a - b) ** 2 / 2).sum(axis=(0, 1)) / 2) / n  # std of the mean of (a + b) / 2, per channel
    ref_mean = ref.mean(axis=(0, 1))
    ratio = ((a + b) / 2).mean(axis=(0, 1)) / np.maximum(ref_mean, 1e-12)
    tol = np.maximum(0.003, 5 * sigma / np.maximum(ref_mean, 1e-12))
    r.mean_ratio = [round(float(x), 5) for x in ratio]
    r.mean_tolerance = float(tol.max())
    if not r.relmse < 0.75 * r.noise_relmse + 1e-7:
        r.reasons.append(f"relMSE {r.relmse:.3g} >= 0.75 x noise relMSE {r.noise_relmse:.3g}")
    bad = np.abs(ratio - 1) > tol
    if bad.any():
        r.reasons.append(f"mean ratio {np.round(ratio, 4).tolist()} outside 1 +- {np.round(tol, 4).tolist()}")
    if not r.flip <= 1.2 * r.noise_flip + 0.005:
        r.reasons.append(f"FLIP {r.flip:.4f} > 1.2 x noise FLIP {r.noise_flip:.4f} + 0.005")
    r.passed = not r.reasons
    if image_dir is not None:
        image_dir.mkdir(parents=True, exist_ok=True)
        rel = np.abs(a - ref).mean(-1) / (ref.mean(-1) + 0.01)
        for kind, img in (("ref", ref), ("ours", a), ("flip", flip_map), ("relerr", _heat(rel))):
            path = image_dir / f"{name}_{kind}.png"
            if kind in ("flip", "relerr"):
                import imageio.v3 as iio

                iio.imwrite(path, np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
            else:
                write_png(path, img, force=True)
            r.images[kind] = path.name
    return r


def write_report(results: list[SceneResult], path: Path, spp: int) -> None:
    rows = []
    for r in results:
        status = "pass" if r.passed else "FAIL"
        imgs = "".join(f'<td><img src="{html.escape(r.images[k])}" alt="{k}"></td>' if k in r.images else "<td></td>"
                       for k in ("ref", "ours", "flip", "relerr"))
        numbers = (f"FLIP {r.flip:.4f} (noise {r.noise_flip:.4f})<br>relMSE {r.relmse:.3g} (noise {r.noise_relmse:.3g})"
                   f"<br>mean ratio {r.mean_ratio} (tol {r.mean_tolerance:.3f})")
        why = "<br>".join(html.escape(x) for x in r.reasons)
        rows.append(f'<tr class="{status.lower()}"><td><b>{html.escape(r.name)}</b><br>{status}<br>'
                    f'<small>reference: {html.escape(r.reference_from)}</small></td>{imgs}<td>{numbers}'
                    f'<br><span class="why">{why}</span></td></tr>')
    failed = sum(not r.passed for r in results)
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Radiant render regression</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{width:192px;image-rendering:pixelated}}
td{{padding:4px;vertical-align:top}} tr.fail{{background:#fdd}} tr.pass{{background:#efe}} .why{{color:#a00}}</style>
</head><body><h1>Render regression: {len(results) - failed} passed, {failed} failed</h1>
<p>{spp} spp per render, two renders per scene (seeds 1, 2) to measure the noise. Thresholds: relMSE(ours, ref) &lt;
0.75 x relMSE(ours, ours'); mean within max(0.3%, 5&sigma;); FLIP &le; 1.2 x FLIP(ours, ours') + 0.005.
Heat maps: HDR-FLIP (magma) and |ours - ref| / (ref + 0.01) clipped at 1.</p>
<table><tr><th>scene</th><th>reference</th><th>ours</th><th>FLIP</th><th>relative error</th><th>numbers</th></tr>
{''.join(rows)}</table>
<script type="application/json" id="results">{html.escape(json.dumps([asdict(r) for r in results]))}</script>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(doc)
    tmp.replace(path)


def run_regression(pattern: str = "*", spp: int = 64, report: Path | None = None, render_fn=None,
                   progress: bool = False) -> list[SceneResult]:
    names = scene_names(pattern)
    if not names:
        raise UserError(f"--scenes {pattern!r}: matches none of {', '.join(scene_names())}")
    if spp <= 0:
        raise UserError(f"--spp: expected a positive sample count, got {spp}")
    image_dir = report.parent / "images" if report is not None else None
    results = []
    iterator = names
    if progress:
        from rich.progress import track

        iterator = track(names, description="regression scenes", transient=True)
    for name in iterator:
        results.append(check_scene(name, spp, render_fn, image_dir))
    if report is not None:
        for r in results:
            r.images = {k: f"images/{v}" for k, v in r.images.items()}
        write_report(results, report, spp)
    return results


def update_refs(pattern: str = "*") -> list[str]:
    """Re-renders the references of the matching scenes with Mitsuba; returns the names whose images changed."""
    try:
        import mitsuba  # noqa: F401
    except ImportError:
        raise UserError("--update-refs needs Mitsuba 3 (pip install mitsuba); references were not changed") from None
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_refs", ROOT / "scripts" / "make_refs.py")
    make_refs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_refs)
    names = set(scene_names(pattern))
    before = {n: (SUITE / "refs" / f"{n}.exr").read_bytes() if (SUITE / "refs" / f"{n}.exr").exists() else None
              for n in names}
    cases = [c for c in make_refs.regression_cases() if c[0] in names]
    make_refs.render_cases(cases, SUITE / "refs", names)
    return sorted(n for n in names if (SUITE / "refs" / f"{n}.exr").read_bytes() != before[n])

