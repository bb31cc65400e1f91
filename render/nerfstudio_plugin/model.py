"""The radiant-sdf nerfstudio Model: our ReconModel field, render_rays over our occupancy grid, recon_losses.

nerfstudio's rays (its world, unit directions) are mapped into our normalized space by the similarity the data
manager fitted (x = (x_ns - t) / s, distances / s); outputs go back in nerfstudio's units."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, List, Type

import torch
from torch.nn import Parameter

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps

from ..kernels.grid import OccupancyGrid
from ..recon import losses as L
from ..recon.config import ReconConfig
from ..recon.objective import RayTargets, recon_losses
from ..recon.renderer import render_rays
from ..recon.trainer import Trainer, bias_schedule, bias_strength, build_model, render_options


def _plugin_recon_defaults() -> ReconConfig:
    # The budget is ns-train's --max-num-iterations; iters/minutes here are unused.
    return ReconConfig(minutes=None, iters=1)


@dataclass
class RadiantSDFModelConfig(ModelConfig):
    _target: Type = field(default_factory=lambda: RadiantSDFModel)
    enable_collider: bool = False
    eval_num_rays_per_chunk: int = 4096
    recon: ReconConfig = field(default_factory=_plugin_recon_defaults)
    """Radiant's reconstruction config (render/recon/config.py): field, sampling, DebSDF switches, loss weights,
    rays_per_batch, images_per_batch, seed. lr_grid / lr_net are the optimizers' (--optimizers.*.optimizer.lr)."""


class _GridOwner:
    """The occupancy grid's state in the shape Trainer's grid methods expect, so both use the same code."""

    occupancy_fn = Trainer.occupancy_fn
    update_grid = Trainer.update_grid

    def __init__(self, config: ReconConfig, model, grid: OccupancyGrid):
        self.config, self.model, self.grid, self.sdf_volume = config, model, grid, None


class RadiantSDFModel(Model):
    config: RadiantSDFModelConfig

    def populate_modules(self):
        super().populate_modules()
        meta = self.kwargs.get("metadata") or {}
        if "radiant_normalization" not in meta:
            raise ValueError("radiant-sdf needs the radiant-sdf data manager (RadiantDataManagerConfig)")
        recon = self.config.recon
        self.recon = recon
        self.field = build_model(recon, SimpleNamespace(cam_to_world=meta["radiant_c2w"]))
        norm = meta["radiant_normalization"].double()
        # normalized -> nerfstudio world, and nerfstudio world -> the dataset files' world (mesh export).
        self.register_buffer("normalization", norm.clone())
        self.register_buffer("ns_to_world", meta["radiant_ns_to_world"].double().clone())
        inv = torch.linalg.inv(norm)
        self.register_buffer("from_ns", inv.float(), persistent=False)
        self.ns_scale = float(torch.linalg.det(norm[:3, :3]) ** (1 / 3))
        self.register_buffer("cam_rot", meta["radiant_c2w"][:, :3, :3].float().clone(), persistent=False)
        inside_out = bool(self.field.sdf_net.sign < 0)
        self.bias_schedule = bias_schedule(recon, inside_out)
        self.opts = render_options(recon, 0.0, inside_out)
        self.generator = torch.Generator().manual_seed(recon.seed)
        self._grid = None
        self.progress = 0.0
        self.recon_step = 0

    @property
    def grid(self) -> _GridOwner:
        if self._grid is None or self._grid.grid.occs.device != self.device:
            grid = OccupancyGrid([-1, -1, -1, 1, 1, 1], self.recon.grid_resolution, 1, device=self.device).mark_all()
            self._grid = _GridOwner(self.recon, self.field, grid)
        return self._grid

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        table = self.field.sdf_net.grid.table
        return {"grid": [table], "networks": [p for n, p in self.field.named_parameters() if n != "sdf_net.grid.table"]}

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        trainer = training_callback_attributes.trainer
        optimizers = training_callback_attributes.optimizers
        total = trainer.config.max_num_iterations if trainer is not None else 1

        def before_step(step: int):
            # The Trainer's schedule: progress p of the budget, lr = base * lr_final_ratio^p, grid every grid_every.
            c = self.recon
            self.progress = min(step / max(total, 1), 1.0)
            self.recon_step = step
            self.opts.bias_strength = bias_strength(c, self.progress, self.bias_schedule)
            if optimizers is not None:
                for name, opt in optimizers.optimizers.items():
                    base = optimizers.config[name]["optimizer"].lr
                    for g in opt.param_groups:
                        g["lr"] = base * c.lr_final_ratio ** self.progress
            if step % c.grid_every == 0 or self.grid.sdf_volume is None:
                self.grid.update_grid()

        return [TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], before_step, update_every_num_iters=1)]

    def to_normalized(self, ray_bundle: RayBundle):
        """Rays in our normalized space: x = A^-1 x_ns (A the similarity), unit directions; distances / scale."""
        m = self.from_ns.to(ray_bundle.origins)
        origins = ray_bundle.origins.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
        dirs = torch.nn.functional.normalize(ray_bundle.directions.reshape(-1, 3) @ m[:3, :3].T, dim=-1)
        return origins, dirs, self.ns_scale

    def get_outputs(self, ray_bundle: RayBundle) -> Dict:
        origins, dirs, s = self.to_normalized(ray_bundle)
        grid = self.grid
        # Our CPU generator draws the ray samples on the CPU; on a GPU (device-side draws) torch's default one does.
        gen = self.generator if self.training and origins.device.type == "cpu" else None
        b = render_rays(self.field, grid.grid, origins, dirs, self.opts, gen, grid.sdf_volume)
        out = {"rgb": b.rgb, "accumulation": b.opacity[:, None], "depth": b.depth[:, None] * s,
               "normal": (torch.nn.functional.normalize(b.normal, dim=-1, eps=1e-6) + 1) / 2,
               "uncertainty": b.uncertainty}
        if self.training:
            out["radiant"] = (b, origins, dirs)  # not a tensor: the eval path's chunking skips it
        return out

    def get_metrics_dict(self, outputs, batch) -> Dict[str, torch.Tensor]:
        mse = ((outputs["rgb"].detach() - batch["image"][..., :3].to(self.device)) ** 2).mean()
        return {"psnr": -10 * torch.log10(mse.clamp(min=1e-10))}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, torch.Tensor]:
        if "radiant" not in outputs:  # an eval batch (model in eval mode): the photometric term only
            return {"rgb": L.rgb_l1(outputs["rgb"], batch["image"][..., :3].to(self.device)) * self.recon.rgb_weight}
        b, origins, dirs = outputs["radiant"]
        dev = origins.device
        cam = batch["indices"][:, 0].long()
        rot = self.cam_rot[cam.to(self.cam_rot.device)].to(dev)
        opt = {k: batch[k].to(dev) if k in batch else None for k in ("depth", "normal", "mask")}
        importance = batch["radiant_importance"].to(dev) if "radiant_importance" in batch else None
        targets = RayTargets(batch["image"][..., :3].to(dev), rot[:, :, 2], rot, cam.to(dev), opt["depth"],
                             opt["normal"], opt["mask"], importance=importance)
        return recon_losses(self.field, b, origins, dirs, targets, self.recon, self.progress, self.generator,
                            self.recon_step)

    def get_image_metrics_and_images(self, outputs, batch):
        gt = batch["image"][..., :3].to(self.device)
        mse = ((outputs["rgb"] - gt) ** 2).mean()
        metrics = {"psnr": float(-10 * torch.log10(mse.clamp(min=1e-10)))}
        images = {"img": torch.cat([gt, outputs["rgb"]], 1),
                  "depth": colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"]),
                  "normal": outputs["normal"]}
        return metrics, images
