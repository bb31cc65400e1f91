"""A cheap textured TorchBSDF for the neural-material tests: 0.5 diffuse(albedo(uv)) + 0.5 GGX conductor with a
roughness texture, built from the analytic reference BSDFs (render/bsdfs/reference.py). Exposes the parameter
textures the encoder reads, as the layered reference does."""

from __future__ import annotations

import torch

from render.bsdfs import FIELDS, bsdf_eval_reference, bsdf_pdf_reference, bsdf_sample_reference, pack_bsdf
from render.neural.model import bilinear_repeat


class _Image:
    def __init__(self, t):
        self.image = t.numpy()


class TexturedMix:
    name = "textured-mix"

    def __init__(self, resolution: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        albedo = 0.1 + 0.8 * torch.rand(resolution, resolution, 3, generator=g)
        rough = 0.05 + 0.5 * torch.rand(resolution, resolution, 1, generator=g)
        self.textures = torch.cat([albedo, rough], -1)
        self.diffuse = pack_bsdf("diffuse", reflectance=[0.5, 0.5, 0.5])
        self.conductor = pack_bsdf("roughconductor", distribution="ggx", alpha=0.1, material="Au")

        self._textures = [_Image(self.textures)]

    def parameter_textures(self, resolution: int) -> torch.Tensor:
        assert resolution == self.textures.shape[0]
        return self.textures.permute(2, 0, 1)

    def parameters_at(self, uv):
        return bilinear_repeat(self.textures, uv)

    def _rows(self, uv):
        p = self.parameters_at(uv)
        d = self.diffuse.expand(len(uv), -1).clone()
        off = FIELDS["diffuse_reflectance"][0]
        d[:, off:off + 3] = p[:, :3]
        c = self.conductor.expand(len(uv), -1).clone()
        c[:, FIELDS["alpha_u"][0]] = p[:, 3]
        c[:, FIELDS["alpha_v"][0]] = p[:, 3]
        return d, c

    def eval(self, uv, wi, wo):
        d, c = self._rows(uv)
        return 0.5 * (bsdf_eval_reference(d, wi, wo) + bsdf_eval_reference(c, wi, wo))

    def pdf(self, uv, wi, wo):
        d, c = self._rows(uv)
        return 0.5 * (bsdf_pdf_reference(d, wi, wo) + bsdf_pdf_reference(c, wi, wo))

    def sample(self, uv, wi, u, u_lobe):
        d, c = self._rows(uv)
        wd = bsdf_sample_reference(d, wi, u_lobe, u)[0]
        wc = bsdf_sample_reference(c, wi, u_lobe, u)[0]
        wo = torch.where((u_lobe < 0.5)[:, None], wd, wc)
        pdf = self.pdf(uv, wi, wo)
        value = self.eval(uv, wi, wo)
        weight = torch.where((pdf > 0)[:, None], value / pdf.clamp_min(1e-30)[:, None], torch.zeros_like(value))
        return wo, weight, pdf

    def albedo(self, uv):
        return self.parameters_at(uv)[:, :3]

    def to(self, device):
        return self
