"""`radiant bench neural`: neural material vs its layered reference, per bundled material (scenes/materials/X.xml
with its bake X.radmat), one JSON line per result:

1. eval throughput (ms per 1M evaluations, same batch, same device, same run), also for the 3x64 decoder;
2. FLIP / PSNR / relMSE of the preview scene rendered with neural vs reference material at high spp, with the
   noise floor (the reference's two half-spp renders vs each other) next to it;
3. equal time: relMSE of both renders vs the high-spp reference render when given the same seconds (noise + bias);
4. learned sampler vs cosine sampling: relMSE at equal spp vs a high-spp neural render;
5. held-out log-L1 BRDF error on fresh pairs vs 256-walk reference values; 6. memory; 7. training time.

Noise vs bias: FLIP of two noisy images measures mostly noise. The reference image is the mean of two renders of
ref_spp/2 (8192 spp in all by default); FLIP between the two halves is the noise floor, an upper bound on the noise
part of the comparison (each half has twice the variance of the mean). The neural image is two halves of the same
spp too; FLIP between them is its own noise floor (its learned sampler is noisier than the layered one). The
preview stays 64x48 at FLIP's default 67 pixels per degree: per-pixel noise depends on spp, not resolution, so a
larger image only costs more per spp (more layered walks per evaluation do not help either: on this scene path
noise dominates, measured 4% less relMSE for 2.6x the time). The reference renders and the 256-walk held-out values
do not depend on the bake, so they are cached (out/cache/neural_reference/, keyed by the material files, the
layered source and the settings).
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..core.image import rel_mse, to_png8
from ..errors import UserError
from ..scene.types import BSDF
from . import emit

ROOT = Path(__file__).resolve().parents[2]
MATERIALS = ROOT / "scenes" / "materials"
CACHE = ROOT / "out" / "cache" / "neural_reference"
HELDOUT_WALKS = 256


def _cache_key(xml: Path, **settings) -> str:
    """Hash of what a reference result depends on: the material XML and its texture files (same folder, same
    stem prefix), the layered BSDF source and the settings. Not the path integrator's source (a change there that
    alters the reference renders needs `rm -r out/cache/neural_reference`)."""
    h = hashlib.sha256()
    files = [xml, *sorted(xml.parent.glob(xml.stem + "_*")), ROOT / "render" / "bsdfs" / "layered.py"]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    h.update(repr(sorted(settings.items())).encode())
    return h.hexdigest()[:16]


def cached(name: str, xml: Path, compute, **settings) -> dict:
    """compute() -> dict of arrays/floats, stored as CACHE/name_key.npz (atomic write) and reused."""
    from ..core.image import _write_atomically

    path = CACHE / f"{name}_{_cache_key(xml, **settings)}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **result)

    _write_atomically(path, write)
    return {k: np.asarray(v) for k, v in result.items()}


def reference_images(name: str, xml: Path, bsdf: BSDF, half_spp: int, width: int, height: int,
                     device: str = "cpu") -> dict:
    """The preview scene with the reference material, rendered twice at half_spp (seeds 7 and 8), cached:
    {"a", "b", "seconds"}."""
    from ..neural.source import preview_scene
    from ..render import render_loaded

    def compute():
        out = {"seconds": 0.0}
        for key, seed in (("a", 7), ("b", 8)):
            r = render_loaded(preview_scene(bsdf, width, height), spp=half_spp, device=device, integrator="torch",
                              seed=seed)
            out[key] = r.rgb
            out["seconds"] += r.seconds
        return out

    return cached(f"{name}_image", xml, compute, spp=half_spp, size=(width, height), seeds=(7, 8))


def heldout_values(name: str, xml: Path, material, n_pairs: int, device: str = "cpu") -> dict:
    """Fresh (uv, wi, wo) pairs from the training distribution's uniform part (seed 12345) with the reference's
    value averaged over HELDOUT_WALKS random walks, cached; tensors on `device`."""
    from ..neural.train import _reference_eval, rusinkiewicz_pairs

    def compute():
        g = torch.Generator().manual_seed(12345)
        uv = torch.rand(n_pairs, 2, generator=g)
        wi, wo = rusinkiewicz_pairs(torch.rand(n_pairs, 4, generator=g))
        ok = (wi[:, 2] > 1e-3) & (wo[:, 2] > 1e-3)
        uv, wi, wo = uv[ok], wi[ok], wo[ok]
        with torch.no_grad():
            value = _reference_eval(material, HELDOUT_WALKS)(uv.to(device), wi.to(device), wo.to(device))
        return {"uv": uv.numpy(), "wi": wi.numpy(), "wo": wo.numpy(), "value": value.float().cpu().numpy()}

    z = cached(f"{name}_heldout", xml, compute, pairs=n_pairs, walks=HELDOUT_WALKS)
    return {k: torch.from_numpy(v).to(device) for k, v in z.items()}


def _random_queries(n: int, seed: int = 0):
    from ..core.warp import square_to_cosine_hemisphere

    g = torch.Generator().manual_seed(seed)
    uv = torch.rand(n, 2, generator=g)
    wi = square_to_cosine_hemisphere(torch.rand(n, 2, generator=g))
    wo = square_to_cosine_hemisphere(torch.rand(n, 2, generator=g))
    return uv, wi, wo


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) of the sRGB 8-bit tonemapped images (peak 1)."""
    a = to_png8(image).astype(np.float64) / 255
    b = to_png8(reference).astype(np.float64) / 255
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def bundled(names: list[str] | None) -> list[tuple[str, Path, Path]]:
    found = []
    for xml in sorted(MATERIALS.glob("*.xml")):
        radmat = xml.with_suffix(".radmat")
        if radmat.is_file() and (not names or xml.stem in names):
            found.append((xml.stem, xml, radmat))
    if names:
        missing = set(names) - {f[0] for f in found}
        if missing:
            raise UserError(f"--material: no bundled baked material {sorted(missing)} in {MATERIALS} "
                            "(expected X.xml + X.radmat)")
    return found


def run_neural_bench(out: Path | None = None, materials: list[str] | None = None, quick: bool = False,
                     device: str = "cpu", batch: int | None = None, spp: int | None = None,
                     ref_spp: int | None = None, size: tuple[int, int] | None = None) -> list[dict]:
    from ..neural.bake import render_preview
    from ..neural.material import NeuralBSDF
    from ..neural.model import NetworkConfig, NeuralMaterialModel
    from ..neural.source import load_reference, source_resolution
    from ..neural.train import _reference_eval, log_l1, relative_l2, rusinkiewicz_pairs
    from ..regress import mean_flip

    batch = batch or (1 << 14 if quick else 1 << 16)
    spp = spp or (4 if quick else 8)
    ref_spp = ref_spp or (8 if quick else 8192)
    width, height = size or ((32, 24) if quick else (64, 48))
    rows = []

    def put(row):
        row = {"bench": "neural", **row}
        emit(row, out)
        rows.append(row)

    for name, xml, radmat in bundled(materials):
        ref = load_reference(xml, device=device)
        neural = NeuralBSDF.load(radmat, device)
        meta = neural.metadata
        # ---- 1. eval throughput, same queries, same device, timings interleaved (same machine load)
        uv, wi, wo = (t.to(device) for t in _random_queries(batch))
        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        big = NeuralMaterialModel(NetworkConfig(**{**neural.model.cfg.to_dict(), "decoder_layers": 3,
                                                   "decoder_width": 64})).to(device).eval()
        latent = neural.latent(uv)
        walks = getattr(ref.torch_bsdf, "n_samples", 1)
        few = slice(0, max(256, batch // 16))   # the 64-walk reference is slow: a slice of the batch
        target_walks = meta.get("training", {}).get("target_samples", 64)
        fns = {"reference": lambda: ref.torch_bsdf.eval(uv, wi, wo),
               "reference_target": lambda: _reference_eval(ref.torch_bsdf, target_walks)(uv[few], wi[few], wo[few]),
               "neural": lambda: neural.eval(uv, wi, wo),
               "neural_3x64": lambda: big.brdf.evaluate(latent, wi, wo)}
        counts = {"reference_target": len(range(batch)[few])}
        best = {k: math.inf for k in fns}
        for k, fn in fns.items():
            fn()
        sync()
        for _ in range(3):
            for k, fn in fns.items():
                t = time.perf_counter()
                fn()
                sync()
                best[k] = min(best[k], time.perf_counter() - t)
        ms = {k: best[k] * 1e3 * 1e6 / counts.get(k, batch) for k in fns}
        put({"material": name, "metric": "eval_throughput", "device": str(device),
             "threads": torch.get_num_threads(), "batch": batch,
             "reference_walks": walks, "reference_ms_per_1M": ms["reference"],
             f"reference_{target_walks}walks_ms_per_1M": ms["reference_target"],
             "neural_ms_per_1M": ms["neural"], "speedup": ms["reference"] / ms["neural"],
             f"speedup_vs_{target_walks}walks": ms["reference_target"] / ms["neural"],
             "decoder": f"{neural.model.cfg.decoder_layers}x{neural.model.cfg.decoder_width}",
             "neural_3x64_ms_per_1M": ms["neural_3x64"], "speedup_3x64": ms["reference"] / ms["neural_3x64"]})
        # ---- 2. image quality at high spp (and the noise floor: the reference vs itself with another seed)
        neural_bsdf = BSDF("neural", {"filename": str(radmat), "sampling": "learned"})
        from ..render import render_loaded
        from ..neural.source import preview_scene

        def render(bsdf, n, seed=7):
            r = render_loaded(preview_scene(bsdf, width, height), spp=n, device=device, integrator="torch",
                              seed=seed)
            return r.rgb, r.seconds

        # The reference image is the mean of two half-spp renders with different seeds; the FLIP/relMSE between the
        # halves is the noise floor (each half is noisier than their mean, so the floor is conservative).
        half = max(1, ref_spp // 2)
        refs = reference_images(name, xml, ref.bsdf, half, width, height, device)
        ref_a, ref_b, ref_secs = refs["a"], refs["b"], float(refs["seconds"])
        ref_img = 0.5 * (ref_a + ref_b)
        # The neural image likewise: two halves of the same spp (its own noise floor: its learned sampler is noisier
        # than the layered one), averaged.
        (neu_a, secs_a), (neu_b, secs_b) = render(neural_bsdf, half, seed=9), render(neural_bsdf, half, seed=10)
        neu_img, neu_secs = 0.5 * (neu_a + neu_b), secs_a + secs_b
        flip, flip_map = mean_flip(ref_img, neu_img)
        neural_noise_flip, _ = mean_flip(neu_a, neu_b)
        if out is not None:  # reference | neural | FLIP map, 4x enlarged, next to the JSON lines
            from ..core.image import write_png

            fm = flip_map if flip_map.ndim == 3 else np.repeat(flip_map[..., None], 3, -1)
            fm = fm if fm.dtype == np.uint8 else (np.clip(fm, 0, 1) * 255).astype(np.uint8)
            strip = np.concatenate([to_png8(ref_img), to_png8(neu_img), fm[..., :3]], 1)
            write_png(Path(out).parent / f"neural_{name}_flip.png", np.kron(strip, np.ones((4, 4, 1), np.uint8)),
                      force=True)
        noise_flip, _ = mean_flip(ref_a, ref_b)
        put({"material": name, "metric": "image", "reference_spp": 2 * half, "neural_spp": 2 * half,
             "size": [width, height], "flip": flip, "psnr": psnr(neu_img, ref_img), "relmse": rel_mse(neu_img, ref_img),
             "noise_flip_half_spp": noise_flip, "noise_psnr_half_spp": psnr(ref_b, ref_a),
             "noise_relmse_half_spp": rel_mse(ref_b, ref_a), "neural_noise_flip_half_spp": neural_noise_flip,
             "neural_noise_relmse_half_spp": rel_mse(neu_b, neu_a),
             "reference_seconds_per_spp": ref_secs / (2 * half), "neural_seconds_per_spp": neu_secs / (2 * half),
             "render_speedup": ref_secs / neu_secs})
        # ---- 3. equal time: the reference at `spp`, the neural material with as many spp as fit in that time
        low_ref, low_secs = render(ref.bsdf, spp, seed=11)
        per_spp = neu_secs / (2 * half)
        neu_spp = max(1, int(low_secs / per_spp))
        low_neu, low_neu_secs = render(neural_bsdf, neu_spp, seed=11)
        put({"material": name, "metric": "equal_time", "seconds": low_secs, "reference_spp": spp,
             "neural_spp": neu_spp, "neural_seconds": low_neu_secs,
             "reference_relmse": rel_mse(low_ref, ref_img), "neural_relmse": rel_mse(low_neu, ref_img),
             "neural_bias_relmse": rel_mse(neu_img, ref_img)})
        # ---- 4. learned sampler vs cosine sampling, equal spp, vs a high-spp neural render
        cos_bsdf = BSDF("neural", {"filename": str(radmat), "sampling": "cosine"})
        learned, _ = render(neural_bsdf, spp, seed=13)
        cosine, _ = render(cos_bsdf, spp, seed=13)
        put({"material": name, "metric": "sampler", "spp": spp,
             "learned_relmse": rel_mse(learned, neu_img), "cosine_relmse": rel_mse(cosine, neu_img),
             "improvement": rel_mse(cosine, neu_img) / max(rel_mse(learned, neu_img), 1e-30)})
        # ---- 5. held-out BRDF error on fresh pairs (same distribution as training, another seed) vs 256-walk values
        held = heldout_values(name, xml, ref.torch_bsdf, 1024 if quick else 4096, device)
        with torch.no_grad():
            pred = neural.eval(held["uv"], held["wi"], held["wo"])
        training = meta.get("training", {})
        put({"material": name, "metric": "brdf_error", "heldout_log_l1": float(log_l1(pred, held["value"])),
             "heldout_relative_l2": float(relative_l2(pred, held["value"])),
             "pairs": len(held["uv"]), "reference_walks": HELDOUT_WALKS,
             "training_loss": training.get("loss", "log_l1"), "training_target_walks": training.get("target_samples"),
             "training_validation_log_l1": meta.get("errors", {}).get("validation_log_l1")})
        # ---- 6. memory
        mem = neural.memory_bytes()
        tex = ref.torch_bsdf.parameter_textures(source_resolution(ref.torch_bsdf))
        tex_bytes = tex.numel() * 4
        put({"material": name, "metric": "memory", **mem, "parameter_texture_bytes_float32": tex_bytes,
             "parameter_texture_shape": list(tex.shape),
             "ratio": (mem["latent_bytes"] + mem["weight_bytes"]) / tex_bytes})
        # ---- 7. training time
        put({"material": name, "metric": "training", "seconds": meta.get("training", {}).get("seconds"),
             "clock": meta.get("training", {}).get("seconds_clock", "wall"),
             "pairs": meta.get("training", {}).get("pairs"), "device": meta.get("training", {}).get("device"),
             "paper_seconds_rtx4090": 4.5 * 3600})
    return rows
