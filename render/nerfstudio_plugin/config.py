"""`radiant-sdf`: the method specification behind the `nerfstudio.method_configs` entry point (pyproject)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Type

import torch
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import OptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification

from ..recon.config import ReconConfig
from .datamanager import RadiantDataManagerConfig
from .model import RadiantSDFModelConfig
from .pipeline import RadiantPipelineConfig

_DEFAULTS = ReconConfig()


@dataclass
class AdamBetasConfig(OptimizerConfig):
    """Adam with our Trainer's betas (0.9, 0.99) and eps 1e-15 (instant-ngp's)."""

    _target: Type = torch.optim.Adam
    betas: Tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15


# No nerfstudio schedulers: the model's training callback applies our Trainer's exponential decay over
# --max-num-iterations (lr = base * lr_final_ratio^p).
radiant_sdf = MethodSpecification(
    config=TrainerConfig(
        method_name="radiant-sdf",
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_save=1000,
        max_num_iterations=2000,
        mixed_precision=False,
        pipeline=RadiantPipelineConfig(
            datamanager=RadiantDataManagerConfig(),
            model=RadiantSDFModelConfig(),
        ),
        optimizers={
            "grid": {"optimizer": AdamBetasConfig(lr=_DEFAULTS.lr_grid), "scheduler": None},
            "networks": {"optimizer": AdamBetasConfig(lr=_DEFAULTS.lr_net), "scheduler": None},
        },
        viewer=ViewerConfig(num_rays_per_chunk=4096),
        vis="viewer",
    ),
    description="Radiant's SDF reconstructor (hash-grid VolSDF + DebSDF uncertainty) on nerfstudio's trainer.",
)
