"""`radiant bench neural`: neural material vs its layered reference, per bundled material (scenes/materials/X.xml
with its bake X.radmat), one JSON line per result:

1. eval throughput (ms per 1M evaluations, same batch, same device, same run), also for the 3x64 decoder;
2. FLIP / PSNR / relMSE of the preview scene rendered with neural vs reference material at high spp;
3. equal time: relMSE of both renders vs the high-spp reference render when given the same seconds (noise + bias);
4. learned sampler vs cosine sampling: relMSE at equal spp vs a high-spp neural render;
5. held-out log-L1 BRDF error on fresh pairs; 6. memory; 7. training time.
"""

from __future__ import annotations

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
    from ..neural.train import _reference_eval, log_l1, rusinkiewicz_pairs
    from ..regress import mean_flip

    batch = batch or (1 << 14 if quick else 1 << 16)
    spp = spp or (4 if quick else 8)
    ref_spp = ref_spp or (8 if quick else 128)
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
        ref_a, secs_a = render(ref.bsdf, half, seed=7)
        ref_b, secs_b = render(ref.bsdf, half, seed=8)
        ref_img, ref_secs = 0.5 * (ref_a + ref_b), secs_a + secs_b
        neu_img, neu_secs = render(neural_bsdf, 2 * half)
        flip, _ = mean_flip(ref_img, neu_img)
        noise_flip, _ = mean_flip(ref_a, ref_b)
        put({"material": name, "metric": "image", "spp": 2 * half, "size": [width, height],
             "flip": flip, "psnr": psnr(neu_img, ref_img), "relmse": rel_mse(neu_img, ref_img),
             "noise_flip_half_spp": noise_flip, "noise_relmse_half_spp": rel_mse(ref_b, ref_a),
             "reference_seconds": ref_secs, "neural_seconds": neu_secs, "render_speedup": ref_secs / neu_secs})
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
        # ---- 5. held-out BRDF error on fresh pairs (same distribution as training, another seed)
        g = torch.Generator().manual_seed(12345)
        n_pairs = 4096 if quick else 16384
        huv = torch.rand(n_pairs, 2, generator=g)
        hwi, hwo = rusinkiewicz_pairs(torch.rand(n_pairs, 4, generator=g))
        ok = (hwi[:, 2] > 1e-3) & (hwo[:, 2] > 1e-3)
        huv, hwi, hwo = (t[ok].to(device) for t in (huv, hwi, hwo))
        target_spp = meta.get("training", {}).get("target_samples", 64)
        with torch.no_grad():
            target = _reference_eval(ref.torch_bsdf, target_spp)(huv, hwi, hwo).float()
        put({"material": name, "metric": "brdf_error", "heldout_log_l1": float(log_l1(neural.eval(huv, hwi, hwo),
                                                                                        target)),
             "pairs": int(ok.sum()), "target_samples": target_spp,
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
             "pairs": meta.get("training", {}).get("pairs"), "device": meta.get("training", {}).get("device"),
             "paper_seconds_rtx4090": 4.5 * 3600})
    return rows
