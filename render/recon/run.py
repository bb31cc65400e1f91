"""A reconstruction run folder: create or resume it, train, write mesh + report; `load_run` for other tools."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .config import ReconConfig, load_config_file
from ..core.image import write_text
from .trainer import Trainer, budget_progress, build_model, load_checkpoint


def _load_dataset(path: Path):
    try:
        from .dataset import load_dataset
    except ImportError:
        raise UserError("dataset readers (render.recon.dataset) are not installed in this build") from None
    return load_dataset(Path(path))


def prepare_config(data: Path, out: Path, overrides: dict, config_file: Path | None, resume: bool,
                   force: bool) -> ReconConfig:
    """The run's config: RUN/config.yaml when resuming, else defaults; then --config, then CLI overrides."""
    out = Path(out)
    existing = out / "config.yaml"
    if resume:
        if not existing.is_file():
            raise UserError(f"{out}: no run to resume (config.yaml missing)")
        config = load_config_file(existing, legacy=True)
    else:
        if out.exists() and any(out.iterdir()) and not force:
            raise UserError(f"{out}: exists and is not empty; pass --resume to continue it or --force to start over")
        config = ReconConfig()
    if config_file is not None:
        config = load_config_file(config_file, config)
    values = dict(overrides)
    values["data"] = str(Path(data).resolve()) if data is not None else config.data
    return config.updated(values, "command line")


def reconstruct(config: ReconConfig, out: Path, resume: bool = False, force: bool = False, dataset=None,
                progress: bool = True) -> dict:
    """Trains (or continues) the run in `out` and writes mesh.ply, report.html; returns a summary dict."""
    from .mesh import export_mesh
    from .report import write_report

    out = Path(out)
    if dataset is None:
        dataset = _load_dataset(Path(config.data))
    dataset = dataset.to(config.device)
    if force and not resume and out.exists():
        for name in ("ckpt", "report", "metrics.jsonl", "mesh.ply", "report.html", "config.yaml"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", config.to_yaml(), force=True)
    trainer = Trainer(config, dataset, out, progress=progress)
    resumed = trainer.resume() if resume else False
    trainer.train()
    t0 = time.perf_counter()
    mesh = export_mesh(trainer.model, dataset, out / "mesh.ply", config.mesh_resolution)
    summary = {"run": str(out), "steps": trainer.step, "train_seconds": round(trainer.elapsed, 1),
               "it_per_s": round(trainer.step / max(trainer.elapsed, 1e-9), 2), "resumed": resumed,
               "beta": round(float(trainer.model.density.get_beta().detach()), 5), **mesh,
               "mesh_seconds": round(time.perf_counter() - t0, 1),
               **({"depth_fit_multiview": trainer.multiview} if trainer.multiview else {}),
               **({"prior_conflict": trainer.prior_conflict} if trainer.prior_conflict else {})}
    write_report(trainer, out, summary)
    return summary


@dataclass
class RunState:
    """A run's checkpoint as the viewer and other tools use it: the model (eval mode), the occupancy grid and the
    pixel sampler as training left them, the train/held-out split, the step."""
    config: ReconConfig
    model: object
    dataset: object
    grid: object
    sampler: object
    step: int
    train_ids: list
    test_ids: list
    progress: float = 1.0               # fraction of the budget spent (schedules such as the bias-aware warm-up)


def load_run_state(run: Path, dataset=None) -> RunState:
    """RunState of a run folder from RUN/ckpt/latest.pt (weights only); `dataset`: reuse an already loaded one."""
    from ..kernels.grid import OccupancyGrid
    from .pixel_sampler import PixelSampler

    run = Path(run)
    config = load_config_file(run / "config.yaml", legacy=True)  # as the run was trained
    if dataset is None:
        dataset = _load_dataset(Path(config.data))
    ckpt = run / "ckpt" / "latest.pt"
    if not ckpt.is_file():
        raise UserError(f"{ckpt}: no checkpoint in this run")
    state = load_checkpoint(ckpt)
    model = build_model(config, dataset)
    model.load_state_dict(state["model"])
    model.eval()
    grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], config.grid_resolution, 1)
    grid.occs, grid.binary = state["grid_occs"], state["grid_binary"]
    train_ids, test_ids = dataset.split()
    sampler = PixelSampler.from_config(train_ids, dataset.height, dataset.width, config)
    sampler.load_state_dict(state["sampler"])
    progress = budget_progress(config, int(state["step"]), float(state.get("elapsed", 0.0)))
    return RunState(config, model, dataset, grid, sampler, int(state["step"]), train_ids, test_ids, progress)


def load_run(run: Path, dataset=None):
    """(config, model, dataset) of a run folder, the model loaded from RUN/ckpt/latest.pt (weights only)."""
    s = load_run_state(run, dataset)
    return s.config, s.model, s.dataset
