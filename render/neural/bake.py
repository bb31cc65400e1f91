"""`radiant bake-material`: reference material XML -> NAME.radmat + NAME.html, with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import UserError
from ..scene.types import BSDF
from .material import NeuralBSDF
from .model import NetworkConfig
from .radmat import save_radmat
from .report import brdf_slices, write_report
from .source import load_reference, preview_scene
from .train import LOSSES, BakeSettings, _reference_eval, bake

PHASES = ("targets", "decoder", "finetune", "sampler")
DECODERS = {"2x32": (2, 32), "3x32": (3, 32), "2x64": (2, 64), "3x64": (3, 64)}


def parse_decoder(text: str) -> tuple[int, int]:
    if text not in DECODERS:
        raise UserError(f"--decoder: expected one of {', '.join(DECODERS)}, got {text!r}")
    return DECODERS[text]


def parse_phase_shares(text: str) -> tuple:
    """"0.2,0.3,0.35,0.15" -> shares of the time budget for (targets, decoder, fine-tune, sampler), summing to 1."""
    try:
        shares = tuple(float(x) for x in text.split(","))
    except ValueError:
        shares = ()
    if len(shares) != 4 or min(shares) <= 0 or abs(sum(shares) - 1) > 1e-6:
        raise UserError(f"--phase-shares: expected four positive shares of the time budget (targets, decoder, "
                        f"fine-tune, sampler) summing to 1, e.g. 0.2,0.3,0.35,0.15; got {text!r}")
    return shares


def render_preview(bsdf: BSDF, spp: int, device: str, width: int = 160, height: int = 120):
    from ..render import render_loaded

    res = render_loaded(preview_scene(bsdf, width, height), spp=spp, device=device, integrator="torch", seed=7)
    return res.rgb, res.seconds


def run_bake(material_xml: Path, out: Path, minutes: float = 3.0, latent_channels: int = 8, device: str = "cpu",
             force: bool = False, material_id: str | None = None, decoder: str = "2x32", preview_spp: int = 16,
             seed: int = 0, progress: bool = True, report: bool = True, resume: bool = False,
             loss: str = "relative_l2", target_walks: int | None = None, phase_shares: str | None = None,
             finetune_lr: float | None = None) -> dict:
    """Bakes, writes NAME.radmat and NAME.html. The state after each phase goes to NAME.radmat.ckpt (removed at the
    end); `resume` continues from it."""
    out = Path(out)
    if out.suffix != ".radmat":
        raise UserError(f"--out {out}: expected a .radmat file name")
    html_path = out.with_suffix(".html")
    for p in (out, html_path):
        if p.exists() and not force:
            raise UserError(f"--out {out}: {p} exists; pass --force to overwrite")
    if minutes <= 0:
        raise UserError(f"--minutes: expected a positive duration, got {minutes}")
    if latent_channels <= 0 or latent_channels > 64:
        raise UserError(f"--latent-channels: expected 1 to 64, got {latent_channels}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise UserError(f"--device: expected cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: torch reports no CUDA device on this machine")
    if loss not in LOSSES:
        raise UserError(f"--loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
    if target_walks is not None and not 1 <= target_walks <= 4096:
        raise UserError(f"--target-walks: expected 1 to 4096 random walks per target, got {target_walks}")
    if finetune_lr is not None and not 0 < finetune_lr <= 10:
        raise UserError(f"--finetune-lr: expected a factor of the learning rate in (0, 10], got {finetune_lr}")
    shares = parse_phase_shares(phase_shares) if phase_shares is not None else BakeSettings.phase_shares
    layers, width = parse_decoder(decoder)
    ref = load_reference(Path(material_xml), material_id, device)
    settings = BakeSettings(minutes=minutes, seed=seed, device=device, loss=loss, target_samples=target_walks,
                            phase_shares=shares,
                            finetune_lr=BakeSettings.finetune_lr if finetune_lr is None else finetune_lr)
    cfg = NetworkConfig(latent_channels=latent_channels, decoder_layers=layers, decoder_width=width)

    bar = task = None
    shares = settings.phase_shares
    offsets = {p: sum(shares[:i]) for i, p in enumerate(PHASES)}
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("baking {task.fields[phase]:9s}"), BarColumn(), TextColumn("{task.fields[loss]}"),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
        bar.start()
        task = bar.add_task("bake", total=1.0, phase="", loss="", rate="")

    def on_progress(phase, frac, loss, rate):
        if bar is None:
            return
        unit = "pairs/s" if phase == "targets" else "it/s"
        bar.update(task, completed=offsets[phase] + shares[PHASES.index(phase)] * frac, phase=phase,
                   loss="" if loss is None else f"loss {loss:.4f}", rate="" if rate is None else f"{rate:.1f} {unit}")

    checkpoint = out.parent / (out.name + ".ckpt")
    if resume and not checkpoint.is_file():
        raise UserError(f"--resume: no checkpoint {checkpoint} to resume from")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = bake(ref.torch_bsdf, cfg, settings, progress=on_progress, checkpoint=checkpoint, resume=resume)
    finally:
        if bar is not None:
            bar.stop()
    meta = {"source": ref.source, "source_type": ref.bsdf.type,
            "training": {**settings.to_dict(), "decoder": decoder, "seconds": round(result.seconds, 2),
                         "seconds_clock": "wall" if device.startswith("cuda") else "process CPU time",
                         "pairs": result.pairs},
            "errors": {k: round(v, 6) for k, v in result.errors.items()}}
    save_radmat(out, result.model, meta, force=True)
    checkpoint.unlink(missing_ok=True)
    summary = {"out": str(out), "seconds": result.seconds, "pairs": result.pairs, **result.errors}
    if report:
        neural = NeuralBSDF.load(out, device)
        slices = brdf_slices(ref.torch_bsdf, neural, reference_eval=_reference_eval(ref.torch_bsdf,
                                                                                    settings.validation_samples))
        renders = {}
        if preview_spp > 0:
            renders["reference"] = render_preview(ref.bsdf, preview_spp, device)
            renders["neural"] = render_preview(BSDF("neural", {"filename": str(out)}), preview_spp, device)
        write_report(html_path, f"{out.name}: neural bake of {ref.source}", result.history, result.errors, slices,
                     renders, {**meta["training"], "network": cfg.to_dict(), "preview_spp": preview_spp})
        summary["report"] = str(html_path)
    return summary
