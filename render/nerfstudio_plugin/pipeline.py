"""The pipeline: nerfstudio's VanillaPipeline plus the two links between our data manager and model (the
model's recon config sets up the pixel sampler; the rendered uncertainty flows back into it every step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

import torch
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from ..recon.trainer import auto_threads


@dataclass
class RadiantPipelineConfig(VanillaPipelineConfig):
    _target: Type = field(default_factory=lambda: RadiantPipeline)


class RadiantPipeline(VanillaPipeline):
    def __init__(self, config, *args, **kwargs):
        recon = config.model.recon
        # Our Trainer's thread policy: torch's OpenMP threads spin-wait, so busy cores slow every step down.
        torch.set_num_threads(recon.threads if recon.threads > 0 else auto_threads())
        torch.manual_seed(recon.seed)
        super().__init__(config, *args, **kwargs)
        if hasattr(self.datamanager, "attach") and getattr(self.datamanager, "images", None) is not None:
            self.datamanager.attach(self.model.recon)

    def get_train_loss_dict(self, step: int):
        ray_bundle, batch = self.datamanager.next_train(step, getattr(self.model, "progress", 0.0))
        model_outputs = self._model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        self.datamanager.feedback(batch, model_outputs)
        return model_outputs, loss_dict, metrics_dict
