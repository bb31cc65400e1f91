"""The reconstruction trainer: budgeted loop (iters or minutes), warm-up then uncertainty losses, atomic checkpoints."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch

from ..core.image import _write_atomically, write_text
from ..errors import UserError
from ..kernels.build import load as load_kernels
from ..kernels.grid import OccupancyGrid
from .config import ReconConfig
from .field import ReconModel
from .losses import DepthFitAnchor
from .objective import RayTargets, recon_losses, sampling_uncertainty
from .pixel_sampler import PixelSampler, sampler_ratio
from .renderer import RenderOptions, SDFVolume, render_rays

CKPT_KEEP = 2  # step-numbered checkpoints kept besides latest.pt


def camera_centers(dataset) -> torch.Tensor:
    return dataset.cam_to_world[:, :3, 3]


def auto_threads() -> int:
    """Cores not busy with other work (1-minute load average), at least 1: torch's OpenMP threads spin-wait, so
    on a shared machine 2 threads on 2 busy cores ran 16x slower than 1 (measured, 2 cores at load 11)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def background_guess(dataset) -> torch.Tensor:
    """Mean colour of what the cameras see beyond the scene: the pixels outside the masks when there are masks,
    else the images' one-pixel border."""
    images = dataset.images
    if dataset.masks is not None and (~dataset.masks).any():
        return images[~dataset.masks].float().mean(0)
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    return border.reshape(-1, 3).float().mean(0)


def build_model(config: ReconConfig, dataset) -> ReconModel:
    inside = config.inside_out
    if inside == "auto":
        # Cameras inside the unit sphere look at a room from inside: MonoSDF's inside_outside init.
        inside_out = bool(camera_centers(dataset).norm(dim=-1).median() < 1.0)
    else:
        inside_out = inside == "true"
    radius = config.init_radius or (0.9 if inside_out else 0.5)
    return ReconModel(config.levels, config.features, config.log2_table, config.base_resolution,
                      config.max_resolution, 1.0, config.sdf_hidden, config.sdf_layers, config.feature_dim,
                      config.color_hidden, config.color_layers, radius, inside_out, config.beta_init,
                      config.learned_background == "true" or (config.learned_background == "auto" and not inside_out))


def budget_progress(config: ReconConfig, step: int, elapsed: float) -> float:
    """Fraction of the budget spent after `step` steps and `elapsed` seconds (iters or minutes, the further)."""
    p = 0.0
    if config.iters is not None:
        p = max(p, step / config.iters)
    if config.minutes is not None:
        p = max(p, elapsed / (60.0 * config.minutes))
    return min(p, 1.0)


def bias_schedule(config: ReconConfig, inside_out: bool) -> str:
    """debsdf or always (config.bias_aware_schedule with auto resolved: debsdf for rooms, always for objects)."""
    if config.bias_aware_schedule != "auto":
        return config.bias_aware_schedule
    return "debsdf" if inside_out else "always"


def bias_strength(config: ReconConfig, progress: float, schedule: str = "debsdf") -> float:
    """DebSDF's progressive warm-up of the bias-aware density (eq. 24): n = min(max(0, exp(A (p - p1)) - 1), 1)
    with A = ln 2 / (p2 - p1), so n goes from 0 at p1 = bias_aware_start to 1 at p2 = bias_aware_full
    (schedule 'always': 1)."""
    if schedule == "always":
        return 1.0
    p1, p2 = config.bias_aware_start, config.bias_aware_full
    return min(max(0.0, math.exp(math.log(2.0) / (p2 - p1) * (progress - p1)) - 1.0), 1.0)


def render_options(config: ReconConfig, progress: float = 1.0, inside_out: bool = True) -> RenderOptions:
    """The renderer's options at `progress` (fraction of the budget; a finished run: 1) for a room
    (inside_out) or an object."""
    schedule = bias_schedule(config, inside_out)
    return RenderOptions(config.coarse_step, config.max_coarse, config.fine_samples, config.bias_aware_density,
                         bias_strength(config, progress, schedule), schedule == "debsdf", config.background,
                         2.0 / config.grid_resolution / 2, config.uniform_samples, config.linear_intervals)


def atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None


class Trainer:
    """Owns model, optimizer, occupancy grid, pixel sampler; `train()` runs until the budget is spent."""

    def __init__(self, config: ReconConfig, dataset, run_dir: Path, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.device = torch.device(config.device)
        load_kernels()  # a first (CUDA) build of the kernels takes minutes: not out of the training budget
        torch.set_num_threads(config.threads if config.threads > 0 else auto_threads())
        torch.manual_seed(config.seed)
        self.dataset = dataset
        self.train_ids, self.test_ids = dataset.split()
        if not self.train_ids:
            raise UserError(f"{config.data}: no training views after the held-out split")
        self.model = build_model(config, dataset).to(self.device)
        if self.model.background_net is not None:
            self.model.background_net.init_color(background_guess(dataset))
        grid_params = [self.model.sdf_net.grid.table]
        other = [p for n, p in self.model.named_parameters() if n != "sdf_net.grid.table"]
        self.optimizer = torch.optim.Adam([{"params": grid_params, "lr": config.lr_grid},
                                           {"params": other, "lr": config.lr_net}], betas=(0.9, 0.99), eps=1e-15)
        self.base_lrs = [config.lr_grid, config.lr_net]
        self.grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], config.grid_resolution, 1, device=self.device).mark_all()
        self.sampler = PixelSampler.from_config(self.train_ids, dataset.height, dataset.width, config)
        inside_out = bool(self.model.sdf_net.sign < 0)
        self.bias_schedule = bias_schedule(config, inside_out)
        self.opts = render_options(config, 0.0, inside_out)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step, self.elapsed = 0, 0.0
        self._sampler_update: tuple | None = None  # (slot, cells, uncertainty) of the step in flight
        self.sdf_volume: SDFVolume | None = None
        self.anchor = DepthFitAnchor(len(dataset.images), config.depth_fit_freeze) \
            if config.depth_fit_freeze > 0 and dataset.depths is not None else None
        self.multiview: dict | None = None  # what the multi-view refinement of the depth fits did (summary)
        # (N,H,W) bool pixels whose aligned depth prior is photometrically inconsistent (config.prior_conflict),
        # made from the fixed fits once they exist (recomputed on resume from the stored fits, deterministic)
        self.prior_flags: torch.Tensor | None = None
        self.prior_conflict: dict | None = None  # summary of it
        cam_z = dataset.cam_to_world[:, :3, 2]
        self.cam_z, self.cam_rot = cam_z, dataset.cam_to_world[:, :3, :3]

    # --- schedule -----------------------------------------------------------------------------------------------

    def progress_fraction(self) -> float:
        return budget_progress(self.config, self.step, self.elapsed)

    def active_levels(self, p: float) -> int:
        c, levels = self.config, self.model.sdf_net.grid.levels
        if not c.coarse_to_fine or c.c2f_fraction <= 0:
            return levels
        start = min(max(c.c2f_start_levels, 1), levels)
        return min(levels, start + int((levels - start + 1) * p / c.c2f_fraction))

    def beta_floor(self, p: float) -> float:
        """Lower bound on beta at progress p: beta_init * (end / beta_init)^(p / beta_anneal) while p < beta_anneal.
        Meant to let furniture that the initial SDF does not contain grow while the density is still wide (the
        learned beta falls from 0.1 to 0.02 in the first few hundred steps); measured on the room (2000 steps,
        beta_anneal 0.3): furniture recall@5cm 0.14 as without it, so it is off by default."""
        c = self.config
        if c.beta_anneal <= 0 or p >= c.beta_anneal:
            return 0.0
        return c.beta_init * (c.beta_anneal_end / c.beta_init) ** (p / c.beta_anneal)

    def done(self) -> bool:
        return self.progress_fraction() >= 1.0

    # --- one step -----------------------------------------------------------------------------------------------

    def occupancy_fn(self, points: torch.Tensor) -> torch.Tensor:
        """1 in cells whose centre lies within a band of the surface: 1.5 cell diagonals, widened to 5 beta while
        the density is still blurry (so the grid does not freeze the initial sphere). Keeps the SDF values as the
        coarse pass' volume."""
        cell_diag = math.sqrt(3) * 2.0 / self.config.grid_resolution
        band = max(1.5 * cell_diag, 5.0 * float(self.model.density.get_beta()))
        sdf = self.model.sdf(points)
        self.sdf_volume = SDFVolume(sdf.reshape(self.grid.resolution))
        return (sdf.abs() < band).float()

    def update_grid(self) -> None:
        self.grid.update(self.occupancy_fn, jitter=False)

    def _conflict_due(self) -> bool:
        c = self.config
        return (self.anchor is not None and c.uncertainty and c.prior_conflict > 0 and self.anchor.frozen(self.step)
                and (self.anchor.refined or not c.depth_fit_multiview))

    def _fixed_fits(self) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(training images with a fit, a, b): the anchor's fits as z = a P + b (DepthFitAnchor.depth_maps)."""
        good, a, b = self.anchor.depth_maps()
        return [i for i in self.train_ids if bool(good[i])], a, b

    def rescale_fits(self) -> float:
        """Rescales the anchor's fixed fits by the common factor the images' colours agree with best
        (prior_align.photometric_scale); returns it."""
        from .prior_align import photometric_scale

        ids, a, b = self._fixed_fits()
        factor, _, _ = photometric_scale(self.dataset, ids, a, b,
                                         generator=torch.Generator().manual_seed(self.config.seed))
        self.anchor.rescale(factor)
        return factor

    def flag_prior_conflicts(self) -> None:
        """Flags the pixels whose aligned depth prior the other views' colours contradict (prior_align.
        photometric_conflict against the anchor's fixed fits), for the prior losses and the guided sampler."""
        from .prior_align import conflict_flags, photometric_conflict

        c, ds = self.config, self.dataset
        t0 = time.perf_counter()
        if ds.depths is None or ds.camera_model != "PINHOLE":
            self.prior_conflict = {"step": self.step, "skipped": "needs depth priors and pinhole cameras"}
            return
        ids, a, b = self._fixed_fits()
        conflict = photometric_conflict(ds, ids, a, b, generator=torch.Generator().manual_seed(c.seed))
        self.prior_flags = conflict_flags(conflict, c.prior_conflict)
        train_flags = self.prior_flags[torch.as_tensor(self.train_ids)]
        if c.uncertainty_sampling and c.sampling_conflict_weight > 0:
            self.sampler.set_conflict(train_flags, c.sampling_conflict_weight)
        self.prior_conflict = {"step": self.step, "flagged": round(float(train_flags.float().mean()), 4),
                               "seconds": round(time.perf_counter() - t0, 2)}

    def losses(self, p: float) -> dict[str, torch.Tensor]:
        c, ds, dev = self.config, self.dataset, self.device
        per_image = max(1, c.rays_per_batch // c.images_per_batch)
        image_idx, pix, slot, cells = self.sampler.sample(c.images_per_batch, per_image, self.generator)
        origins, dirs = ds.rays(image_idx, pix)
        origins, dirs = origins.to(dev), dirs.to(dev)
        px, py = pix[:, 0].long().clamp(max=ds.width - 1), pix[:, 1].long().clamp(max=ds.height - 1)
        bundle = render_rays(self.model, self.grid, origins, dirs, self.opts, self.generator, self.sdf_volume)
        targets = RayTargets(
            ds.images[image_idx, py, px].to(dev), self.cam_z[image_idx].to(dev), self.cam_rot[image_idx].to(dev),
            slot.to(dev), ds.depths[image_idx, py, px].to(dev) if ds.depths is not None else None,
            ds.normals[image_idx, py, px].to(dev) if ds.normals is not None else None,
            ds.masks[image_idx, py, px].to(dev) if ds.masks is not None else None, image_idx.to(dev),
            importance=(self.sampler.importance(slot, cells).to(dev)
                        if c.prior_importance or c.rgb_importance > 0 else None),
            prior_conflict=self.prior_flags[image_idx, py, px].to(dev) if self.prior_flags is not None else None)
        out = recon_losses(self.model, bundle, origins, dirs, targets, c, p, self.generator, self.step, self.anchor)
        if c.uncertainty_sampling:
            # Copied to the sampler after the optimizer step is queued: a copy here would make a GPU wait idle
            # while the CPU launches the backward pass (measured on an H200: 40.7 against 50.5 it/s uniform).
            self._sampler_update = (slot, cells, sampling_uncertainty(bundle, c, targets.rgb))
        return out

    def train_step(self) -> dict[str, float]:
        c = self.config
        p = self.progress_fraction()
        lr_scale = c.lr_final_ratio ** p  # exponential decay over the budget
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * lr_scale
        self.model.sdf_net.active_levels = self.active_levels(p)
        self.model.density.floor = self.beta_floor(p)
        self.opts.bias_strength = bias_strength(c, p, self.bias_schedule)
        if self.step % c.grid_every == 0 or self.sdf_volume is None:
            self.update_grid()
        if c.uncertainty_sampling and self.step > 0 and self.step % c.sampler_refresh_every == 0:
            self.sampler.uniform_ratio = sampler_ratio(c, p)
            self.sampler.refresh()
        if (self.anchor is not None and c.depth_fit_multiview and not self.anchor.refined
                and self.anchor.frozen(self.step)):
            stats = self.anchor.refine_multiview(self.dataset, self.train_ids,
                                                 torch.Generator().manual_seed(c.seed))
            if stats is not None:
                self.multiview = {"step": self.step, "rounds": stats.rounds, "correspondences": stats.residuals,
                                  "rel_residual": round(stats.rel_residual, 5), "max_change": round(stats.change, 5)}
                if c.depth_fit_scale:
                    self.multiview["scale"] = round(self.rescale_fits(), 5)
        if self.prior_flags is None and self.prior_conflict is None and self._conflict_due():
            self.flag_prior_conflicts()
        terms = self.losses(p)
        total = sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.step += 1  # before the copy below, where a GPU run waits: a Ctrl-C there checkpoints a whole step
        if self._sampler_update is not None:  # PixelSampler.update copies the values to the CPU
            pending, self._sampler_update = self._sampler_update, None
            self.sampler.update(*pending)
        # One device-to-host copy for all the logged values (a float() each would synchronize a GPU ~10 times).
        dev = total.device
        values = torch.stack([v.detach().float().reshape(()).to(dev) for v in terms.values()]
                             + [total.detach().float().reshape(()),
                                self.model.density.get_beta().detach().float().reshape(()).to(dev)]).tolist()
        return dict(zip([*terms, "loss", "beta"], values))

    # --- state --------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "grid_occs": self.grid.occs.cpu(), "grid_binary": self.grid.binary.cpu(),
                "sampler": self.sampler.state_dict(), "step": self.step, "elapsed": self.elapsed,
                "torch_rng": torch.get_rng_state(), "generator": self.generator.get_state(),
                **({"depth_anchor": self.anchor.state_dict()} if self.anchor is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.grid.occs = state["grid_occs"].to(self.device)
        self.grid.binary = state["grid_binary"].to(self.device)
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["generator"])
        if self.anchor is not None and "depth_anchor" in state:
            self.anchor.load_state_dict(state["depth_anchor"])

    def save_checkpoint(self) -> Path:
        ckpt_dir = self.run_dir / "ckpt"
        state = self.state_dict()
        numbered = ckpt_dir / f"step_{self.step:07d}.pt"
        atomic_torch_save(state, numbered)
        atomic_torch_save(state, ckpt_dir / "latest.pt")
        for old in sorted(ckpt_dir.glob("step_*.pt"))[:-CKPT_KEEP]:
            old.unlink(missing_ok=True)
        return numbered

    def resume(self) -> bool:
        path = self.run_dir / "ckpt" / "latest.pt"
        if not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path))
        # Metrics logged after the checkpoint belong to lost work: drop them so the log stays one line per step.
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            keep = []
            for line in metrics.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= self.step:
                        keep.append(line)
                except (ValueError, KeyError):
                    pass  # a line cut by a kill
            write_text(metrics, "".join(l + "\n" for l in keep), force=True)
        return True

    # --- loop ---------------------------------------------------------------------------------------------------

    def train(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        c = self.config
        metrics_path = self.run_dir / "metrics.jsonl"
        last_ckpt = time.perf_counter()
        columns = [TextColumn("reconstruct"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TextColumn("{task.fields[rate]:.1f} it/s  loss {task.fields[loss]:.4f}"),
                   TimeElapsedColumn(), TimeRemainingColumn()]
        with Progress(*columns, disable=not self.progress, transient=False) as bar, \
                open(metrics_path, "a") as metrics:
            task = bar.add_task("train", total=1000, rate=0.0, loss=float("nan"))
            rate = 0.0
            try:
                while not self.done():
                    t0 = time.perf_counter()
                    self.model.train()
                    values = self.train_step()
                    dt = time.perf_counter() - t0
                    self.elapsed += dt
                    rate = 0.9 * rate + 0.1 / max(dt, 1e-9) if rate else 1.0 / max(dt, 1e-9)
                    if self.step % c.log_every == 0 or self.done():
                        metrics.write(json.dumps({"step": self.step, "time": round(self.elapsed, 3), **values}) + "\n")
                        metrics.flush()
                    bar.update(task, completed=1000 * self.progress_fraction(), rate=rate, loss=values["loss"])
                    now = time.perf_counter()
                    if (now - last_ckpt > 60 * c.ckpt_minutes) or (c.ckpt_every and self.step % c.ckpt_every == 0):
                        self.save_checkpoint()
                        last_ckpt = now
            except KeyboardInterrupt:
                self.save_checkpoint()
                raise
        self.save_checkpoint()

