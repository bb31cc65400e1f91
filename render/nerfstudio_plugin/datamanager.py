"""Training rays for radiant-sdf: every training image (and its priors / mask) held in memory, pixels drawn by our
uncertainty-guided PixelSampler (DebSDF sec. 3.3), rays made by nerfstudio's RayGenerator (pixel centres +0.5,
as ours)."""

from __future__ import annotations

from dataclasses import dataclass, field
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Tuple, Type

import numpy as np
import torch

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.model_components.ray_generators import RayGenerator

from ..recon.config import ReconConfig
from ..recon.dataset import ReconDataset, fit_unit_sphere
from ..recon.objective import sampling_uncertainty
from ..recon.pixel_sampler import PixelSampler, sampler_ratio

OPENGL_TO_OPENCV = torch.tensor([1.0, -1.0, -1.0])  # nerfstudio cameras are OpenGL (x right, y up, z back)


def opencv_c2w(cameras) -> torch.Tensor:
    """(N,4,4) camera-to-world in OpenCV axes from nerfstudio Cameras (3x4, OpenGL axes)."""
    c2w = torch.eye(4).repeat(len(cameras), 1, 1)
    c2w[:, :3, :4] = cameras.camera_to_worlds.detach().float().cpu()
    c2w[:, :3, :3] *= OPENGL_TO_OPENCV
    return c2w


def _h(m) -> torch.Tensor:
    """3x4 or 4x4 -> 4x4 float64."""
    m = torch.as_tensor(m, dtype=torch.float64)
    return torch.cat([m, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)]) if m.shape[0] == 3 else m


def _read_json(path: Path):
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def file_frames(outputs, data: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(ns_to_world 4x4, normalization 4x4 normalized -> world or None) for nerfstudio's dataparser outputs.

    "world" is the frame of the dataset's files: transforms.json's poses as written (applied_transform kept, as
    our reader does), or sdfstudio's world through `worldtogt`. The normalization is the one `radiant
    make-dataset` recorded (transforms.json `radiant_normalization`, meta_data.json `worldtogt`), else None."""
    folder = data if data.is_dir() else data.parent
    meta = outputs.metadata
    file_to_ns = _h(outputs.dataparser_transform)
    file_to_ns[:3] *= float(outputs.dataparser_scale)  # ns = scale * (T x): the bottom row stays 0 0 0 1
    transforms = _read_json(data if data.suffix == ".json" else folder / "transforms.json")
    if transforms is not None and transforms.get("applied_transform") is not None:
        # nerfstudio's dataparser_transform starts from the coordinates before applied_transform.
        file_to_ns = file_to_ns @ torch.linalg.inv(_h(transforms["applied_transform"]))
    normalization = None
    if "include_mono_prior" in meta:  # sdfstudio: poses in its normalized frame, auto-oriented by the parser
        if meta.get("transform") is not None:
            file_to_ns = _h(meta["transform"]) @ file_to_ns
        sdf_meta = _read_json(folder / "meta_data.json") or {}
        to_gt = _h(sdf_meta["worldtogt"]) if "worldtogt" in sdf_meta else torch.eye(4, dtype=torch.float64)
        file_to_ns = file_to_ns @ torch.linalg.inv(to_gt)
        normalization = to_gt
    elif transforms is not None and "radiant_normalization" in transforms:
        normalization = _h(transforms["radiant_normalization"])
    return torch.linalg.inv(file_to_ns), normalization


def camera_normalization(cameras) -> torch.Tensor:
    """(4,4) float64 normalized -> nerfstudio world, the similarity recon's readers fit to a dataset without one
    (dataset.fit_unit_sphere: the converging optical axes of an orbit, or the cameras' spread in a room)."""
    c2w = opencv_c2w(cameras).double().numpy()
    k = np.zeros((len(cameras), 3, 3))
    k[:, 0, 0], k[:, 1, 1] = cameras.fx[:, 0].numpy(), cameras.fy[:, 0].numpy()
    k[:, 0, 2], k[:, 1, 2] = cameras.cx[:, 0].numpy(), cameras.cy[:, 0].numpy()
    k[:, 2, 2] = 1
    w, h = int(cameras.width[0, 0]), int(cameras.height[0, 0])
    return torch.from_numpy(fit_unit_sphere(c2w, k, w, h))


@dataclass
class RadiantDataManagerConfig(VanillaDataManagerConfig):
    _target: Type = field(default_factory=lambda: RadiantDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=NerfstudioDataParserConfig)


class RadiantDataManager(VanillaDataManager):
    """Needs `attach(recon_config)` (the pipeline calls it once the model exists) before `next_train`."""

    config: RadiantDataManagerConfig

    @property
    def dataset_type(self) -> Type[InputDataset]:
        # The dataset class that loads the priors the dataparser points at: SDFDataset for sdfstudio's mono
        # depth/normals, DepthDataset for nerfstudio's depth_file_path, else plain images (+ masks).
        meta = self.train_dataparser_outputs.metadata
        if "include_mono_prior" in meta:
            from nerfstudio.data.datasets.sdf_dataset import SDFDataset

            return SDFDataset
        if meta.get("depth_filenames") is not None:
            from nerfstudio.data.datasets.depth_dataset import DepthDataset

            return DepthDataset
        return InputDataset

    def setup_train(self):
        ds = self.train_dataset
        cams = ds.cameras
        if len(cams) == 0:
            raise ValueError("radiant-sdf: no training images")
        if (cams.width != cams.width[0]).any() or (cams.height != cams.height[0]).any():
            raise ValueError("radiant-sdf: all training images must have the same size")
        items = [ds[i] for i in range(len(ds))]
        self.images = torch.stack([it["image"][..., :3].float() for it in items])
        self.depths = torch.stack([it["depth"].reshape(self.images.shape[1:3]) for it in items]) \
            if "depth" in items[0] else None
        self.normals = torch.stack([it["normal"] for it in items]) if "normal" in items[0] else None
        self.masks = torch.stack([it["mask"].reshape(self.images.shape[1:3]).bool() for it in items]) \
            if "mask" in items[0] else None
        c2w = opencv_c2w(cams).double()
        ns_to_world, world_norm = file_frames(self.train_dataparser_outputs, Path(self.config.data))
        # normalized -> nerfstudio world: the dataset's own normalization when it has one (the same unit sphere as
        # `radiant reconstruct` on these files), else fitted to the cameras as our readers do.
        norm = torch.linalg.inv(ns_to_world) @ world_norm if world_norm is not None else camera_normalization(cams)
        if self.normals is not None:
            # nerfstudio hands the normal prior in world axes; the loss wants it in the camera frame (OpenCV).
            self.normals = torch.einsum("nhwk,nkj->nhwj", self.normals, c2w[:, :3, :3].float())
        c2w_norm = torch.linalg.inv(norm) @ c2w
        scale = float(torch.linalg.det(norm[:3, :3]) ** (1 / 3))
        c2w_norm[:, :3, :3] *= scale  # similarity: keep the camera axes orthonormal
        # What the model needs to build itself (the pipeline passes this dict to it as `metadata`).
        ds.metadata["radiant_normalization"] = norm
        ds.metadata["radiant_ns_to_world"] = ns_to_world
        ds.metadata["radiant_c2w"] = c2w_norm.float()
        self.train_ray_generator = RayGenerator(cams.to(self.device))
        self.sampler = None
        self.recon = None

    def train_indices(self) -> list[int]:
        """The images to train on. A dataparser that evaluates on its training images (sdfstudio) gets our split
        (every 8th view held out, ReconDataset.split), so that both trainers see the same views."""
        n = self.images.shape[0]
        train = {str(f) for f in self.train_dataparser_outputs.image_filenames}
        held = {str(f) for f in self.eval_dataset._dataparser_outputs.image_filenames} if self.eval_dataset else set()
        if held and held <= train:
            return ReconDataset.split(SimpleNamespace(num_images=n))[0]
        return list(range(n))

    def attach(self, recon: ReconConfig) -> None:
        self.recon = recon
        self.sampler = PixelSampler.from_config(self.train_indices(), self.images.shape[1], self.images.shape[2], recon)
        self.generator = torch.Generator().manual_seed(recon.seed + 1)

    def next_train(self, step: int, progress: float = 0.0) -> Tuple[RayBundle, Dict]:
        """`progress`: the model's fraction of the budget (the sampler's uniform_finish schedule, as the Trainer)."""
        self.train_count += 1
        c = self.recon
        if c.uncertainty_sampling and step > 0 and step % c.sampler_refresh_every == 0:
            self.sampler.uniform_ratio = sampler_ratio(c, progress)
            self.sampler.refresh()
        per_image = max(1, c.rays_per_batch // c.images_per_batch)
        image_idx, pix, slot, cells = self.sampler.sample(c.images_per_batch, per_image, self.generator)
        h, w = self.images.shape[1:3]
        px, py = pix[:, 0].long().clamp(max=w - 1), pix[:, 1].long().clamp(max=h - 1)
        batch = {"image": self.images[image_idx, py, px], "indices": torch.stack([image_idx, py, px], -1),
                 "radiant_slot": slot, "radiant_cells": cells}
        if c.prior_importance:
            batch["radiant_importance"] = self.sampler.importance(slot, cells)
        for key, values in (("depth", self.depths), ("normal", self.normals), ("mask", self.masks)):
            if values is not None:
                batch[key] = values[image_idx, py, px]
        ray_bundle = self.train_ray_generator(batch["indices"].to(self.device))
        return ray_bundle, batch

    def feedback(self, batch: Dict, outputs: Dict) -> None:
        """The rendered uncertainty of this batch's rays into the sampler's maps (Trainer.losses does the same)."""
        if self.recon.uncertainty_sampling and "radiant" in outputs:
            bundle = outputs["radiant"][0]
            rgb = batch["image"][..., :3].to(bundle.rgb.device)
            self.sampler.update(batch["radiant_slot"], batch["radiant_cells"],
                                sampling_uncertainty(bundle, self.recon, rgb))

    def get_train_rays_per_batch(self) -> int:
        return self.recon.rays_per_batch if self.recon is not None else self.config.train_num_rays_per_batch
