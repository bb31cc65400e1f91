"""Neural material networks (Zeltner et al. 2024, "Real-Time Neural Appearance Models"): latent pyramid, encoder,
learned shading frames, BRDF decoder and the analytic-lobe sampler network.

Shapes: uv (N,2) in Mitsuba's texture convention (texel centers at (i + 0.5) / res, row 0 at v = 0, repeat wrap),
directions (N,3) in the local shading frame (z = normal, wi and wo point away from the surface), latents (N,C).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.warp import square_to_cosine_hemisphere, square_to_cosine_hemisphere_pdf

INV_PI = 1.0 / math.pi
# The GGX lobe's reflection Jacobian 1/(4 wi.m) is singular where microfacets turn away from wi (wo -> -wi, below
# the surface anyway); those microfacets are not used, which bounds the pdf. Small: the mirror microfacet m = n has
# wi.m = cos(theta_i), so a cut at 0.1 gave the specular peak no density beyond 84 deg (fireflies on silhouettes:
# brass at wi 87 deg had max f/(pdf * integral) ~1e5); at 0.01 it is covered up to 89.4 deg.
MIN_WI_DOT_M = 0.01


@dataclass
class NetworkConfig:
    """Sizes of one neural material (stored in the .radmat metadata, so a file rebuilds its own networks)."""
    latent_channels: int = 8
    resolution: int = 256            # finest pyramid level = the source parameter textures' resolution
    levels: int = 1                  # mip levels (finest first); each halves the resolution
    decoder_layers: int = 2          # hidden layers of the BRDF decoder
    decoder_width: int = 32
    sampler_layers: int = 2
    sampler_width: int = 32
    diffuse_floor: float = 0.05      # minimum weight of the cosine lobe: pdf > 0 wherever wo.z > 0
    frames: int = 2                  # learned shading frames (normal + tangent each), §4.2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown network settings {sorted(unknown)}")
        return cls(**d)


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    """LeakyReLU MLP (the paper's decoder/encoder activation)."""
    mods: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.01)]
        width = hidden
    mods.append(nn.Linear(width, outputs))
    return nn.Sequential(*mods)


def fused_mlp(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Inference of an `mlp` with one addmm + in-place LeakyReLU per layer (no autograd, no temporaries)."""
    layers = [m for m in seq if isinstance(m, nn.Linear)]
    for i, lin in enumerate(layers):
        x = torch.addmm(lin.bias, x, lin.weight.t())
        if i + 1 < len(layers):
            F.leaky_relu_(x, 0.01)
    return x


# ---------------------------------------------------------------------------------------------------------
# Latent texture pyramid

def bilinear_taps(uv: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The four texels (N,4) (flat indices, repeat wrap) and weights (N,4) of a bilinear lookup at uv (N,2) in an
    (height, width) image with texel centres at ((i + 0.5) / width, (j + 0.5) / height), as Mitsuba's bitmap."""
    x = uv[:, 0] * width - 0.5
    y = uv[:, 1] * height - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    xa, xb = torch.remainder(x0, width), torch.remainder(x0 + 1, width)
    ya, yb = torch.remainder(y0, height), torch.remainder(y0 + 1, height)
    index = torch.stack([ya * width + xa, ya * width + xb, yb * width + xa, yb * width + xb], 1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    return index, weight


def bilinear_repeat(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of an (H,W,C) image at uv (N,2) with repeat wrap, as Mitsuba's bitmap texture."""
    h, w, c = image.shape
    index, weight = bilinear_taps(uv, h, w)
    taps = torch.index_select(image.reshape(h * w, c), 0, index.reshape(-1)).reshape(len(uv), 4, c)
    return (taps * weight[:, :, None].to(taps.dtype)).sum(1)


def texel_quads(image: torch.Tensor) -> torch.Tensor:
    """(H,W,C) -> (H*W, 4C): each texel with its right, lower and lower-right neighbours (repeat wrap), so that a
    bilinear lookup is one gather (inference; 4x the memory of the level)."""
    right = torch.roll(image, -1, 1)
    below = torch.roll(image, -1, 0)
    return torch.cat([image, right, below, torch.roll(below, -1, 1)], -1).reshape(-1, 4 * image.shape[-1])


def bilinear_quads(quads: torch.Tensor, height: int, width: int, uv: torch.Tensor) -> torch.Tensor:
    """bilinear_repeat through texel_quads: same value, one gather instead of four, blended by three lerps (a batched
    (1x4)(4xC) bmm is ~1.5x slower on the CPU)."""
    x = uv[:, 0] * width - 0.5
    y = uv[:, 1] * height - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    idx = torch.remainder(y0.long(), height) * width + torch.remainder(x0.long(), width)
    # index_select: several times faster than advanced indexing for row gathers on the CPU
    texels = torch.index_select(quads, 0, idx)
    c = quads.shape[1] // 4
    top = torch.lerp(texels[:, :c], texels[:, c:2 * c], fx)
    return torch.lerp(top, torch.lerp(texels[:, 2 * c:3 * c], texels[:, 3 * c:], fx), fy)


def downsample(image: torch.Tensor) -> torch.Tensor:
    """(H,W,C) -> (H/2,W/2,C) box prefilter (the coarse levels' input, a linear stand-in for LEAN mapping)."""
    return F.avg_pool2d(image.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0).contiguous()


class LatentPyramid(nn.Module):
    """Latent texture as a MIP pyramid of (H_l, W_l, C) levels, finest first (§4.1)."""

    def __init__(self, channels: int, resolution: int, levels: int):
        super().__init__()
        self.levels = nn.ParameterList()
        res = resolution
        for _ in range(levels):
            self.levels.append(nn.Parameter(torch.zeros(res, res, channels)))
            res = max(1, res // 2)

    @property
    def channels(self) -> int:
        return self.levels[0].shape[-1]

    def lookup(self, uv: torch.Tensor, lod: torch.Tensor | None = None, u: torch.Tensor | None = None):
        """Latents at uv. lod (N,) continuous level (0 = finest); the level is picked stochastically between
        floor(lod) and floor(lod) + 1 with probability frac(lod) (the paper's stochastic filtering, §4.1),
        using u (N,) uniforms (a fixed 0.5 threshold when u is None)."""
        if lod is None or len(self.levels) == 1:
            return bilinear_repeat(self.levels[0], uv)
        lod = lod.clamp(0, len(self.levels) - 1)
        base = torch.floor(lod)
        frac = lod - base
        u = torch.full_like(lod, 0.5) if u is None else u
        level = (base + (u < frac).to(lod.dtype)).long().clamp(max=len(self.levels) - 1)
        out = torch.empty(len(uv), self.channels, dtype=uv.dtype, device=uv.device)
        for k in range(len(self.levels)):
            sel = torch.nonzero(level == k)[:, 0]
            if len(sel):
                out[sel] = bilinear_repeat(self.levels[k], uv[sel])
        return out


# ---------------------------------------------------------------------------------------------------------
# Learned shading frames + BRDF decoder

def frames_from_raw(raw: torch.Tensor, count: int) -> torch.Tensor:
    """(N, 6*count) linear-layer output -> (N, count, 3, 3) orthonormal frames, rows (t, b, n). As the course
    version of §4.2: n = normalize(raw_n + z), t = raw_t + x made orthogonal to n (Gram-Schmidt), b = n x t."""
    raw = raw.reshape(len(raw), count, 2, 3)
    return orthonormal_frames(raw + raw.new_tensor(FRAME_OFFSET))


FRAME_OFFSET = ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0))   # raw (normal, tangent) = 0 is the geometric frame (z, x)


def orthonormal_frames(nt: torch.Tensor) -> torch.Tensor:
    """(N, count, 2, 3) unnormalized (normal, tangent) -> (N, count, 3, 3) rows (t, b, n) (Gram-Schmidt)."""
    n = F.normalize(nt[:, :, 0], dim=-1)
    t = nt[:, :, 1]
    t = F.normalize(t - n * (t * n).sum(-1, keepdim=True), dim=-1)
    b = torch.linalg.cross(n, t, dim=-1)
    return torch.stack([t, b, n], 2)


class NeuralBRDF(nn.Module):
    """Latent + directions -> RGB f(wi, wo) |cos wo|. The directions (wi, wo and the half vector) are expressed in
    each learned frame before the MLP, because an MLP cannot multiply its inputs with each other (§4.2)."""

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.frame_head = nn.Linear(cfg.latent_channels, 6 * cfg.frames)
        nn.init.zeros_(self.frame_head.weight)   # start at the geometric frame
        nn.init.zeros_(self.frame_head.bias)
        self.mlp = mlp(cfg.latent_channels + 9 * cfg.frames, cfg.decoder_width, cfg.decoder_layers, 3)

    def frames(self, latent: torch.Tensor) -> torch.Tensor:
        return frames_from_raw(self.frame_head(latent), self.cfg.frames)

    def features(self, latent, wi, wo, fused: bool = False):
        h = F.normalize(wi + wo, dim=-1, eps=1e-12)
        if fused:
            raw = torch.addmm(self.frame_head.bias, latent, self.frame_head.weight.t())
        else:
            raw = self.frame_head(latent)
        frames = frames_from_raw(raw, self.cfg.frames).reshape(len(latent), -1, 3)   # (N, 3*frames, 3)
        dirs = torch.stack([wi, wo, h], 2)                                             # (N, 3, 3) columns
        local = torch.bmm(frames, dirs).reshape(len(latent), -1)                        # (N, 9*frames)
        return torch.cat([latent, local], 1)

    def forward(self, latent, wi, wo) -> torch.Tensor:
        """Differentiable value (training)."""
        x = self.mlp(self.features(latent, wi, wo))
        return self._output(x, wi, wo)

    def evaluate(self, latent, wi, wo) -> torch.Tensor:
        """Inference value: the same math as forward, in fewer ops (no autograd, no concatenation: the first layer
        is split into its latent and direction columns; the geometric frame offset folded into the frame head's
        bias; 3x3 frame products by einsum)."""
        with torch.inference_mode():
            n = len(latent)
            w = self._frozen or self._transposed()
            h = F.normalize(wi + wo, dim=-1, eps=1e-12)
            raw = torch.addmm(w["frame_bias"], latent, w["frame_weight"]).view(n, self.cfg.frames, 2, 3)
            frames = orthonormal_frames(raw).reshape(n, -1, 3)                           # (N, 3*frames, 3)
            dirs = torch.stack([wi, wo, h], 1)                                           # (N, 3, 3) rows
            local = torch.einsum("nfk,njk->nfj", frames, dirs).reshape(n, -1)
            (w0_latent, b0, w0_dirs), *rest = w["layers"]
            x = torch.addmm(b0, latent, w0_latent)
            x.addmm_(local, w0_dirs)
            for weight, bias in rest:
                F.leaky_relu_(x, 0.01)
                x = torch.addmm(bias, x, weight)
            return self._output(x, wi, wo)

    _frozen = None

    def _transposed(self) -> dict:
        """The weights for evaluate, transposed and contiguous: the frame head (bias + FRAME_OFFSET) and
        [(W0_latent^T, b0, W0_directions^T), (W1^T, b1), ...]."""
        layers = [m for m in self.mlp if isinstance(m, nn.Linear)]
        c = self.cfg.latent_channels
        w0 = layers[0].weight.detach()
        head = self.frame_head
        offset = head.bias.new_tensor(FRAME_OFFSET).flatten().repeat(self.cfg.frames)
        return {"frame_weight": head.weight.detach().t().contiguous(), "frame_bias": head.bias.detach() + offset,
                "layers": [(w0[:, :c].t().contiguous(), layers[0].bias.detach(), w0[:, c:].t().contiguous())]
                + [(lin.weight.detach().t().contiguous(), lin.bias.detach()) for lin in layers[1:]]}

    def freeze(self) -> None:
        """Caches the transposed weights for evaluate (call once the weights stop changing)."""
        self._frozen = self._transposed()

    @staticmethod
    def _output(x, wi, wo):
        # exp output: the log-space L1 loss then acts on a linear quantity (paper: exp or scaled sigmoid).
        value = torch.exp(x.clamp(max=15.0) - 3.0)
        front = (wi[:, 2] > 0) & (wo[:, 2] > 0)
        return value * front[:, None]


# ---------------------------------------------------------------------------------------------------------
# Sampler network: diffuse lobe + one anisotropic GGX lobe with its own frame (§5.2)

def ggx_d(m_local: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
    """Anisotropic GGX normal distribution D(m) (Walter et al. 2007, eq. 33 in the anisotropic form)."""
    x, y, z = m_local.unbind(-1)
    t = (x / ax) ** 2 + (y / ay) ** 2 + z * z
    return torch.where(z > 0, 1.0 / (math.pi * ax * ay * t * t), torch.zeros_like(z))


@dataclass
class Lobes:
    weight_diffuse: torch.Tensor   # (N,)
    alpha: torch.Tensor            # (N,2)
    frame: torch.Tensor            # (N,3,3) rows (t, b, n) of the GGX lobe

    def pdf(self, wi: torch.Tensor, wo: torch.Tensor) -> torch.Tensor:
        """Mixture density of wo (solid angle): w_d cos/pi + (1 - w_d) D(m) (m.n) / (4 |wi.m|), m the half
        vector flipped into the lobe's hemisphere (the reflection Jacobian, Walter et al. 2007 eq. 14)."""
        m = F.normalize(wi + wo, dim=-1, eps=1e-12)
        ml = torch.bmm(self.frame, m[:, :, None])[:, :, 0]
        flip = torch.where(ml[:, 2] < 0, -1.0, 1.0).to(ml.dtype)
        ml = ml * flip[:, None]
        m = m * flip[:, None]
        wim = (wi * m).sum(-1)
        p_ggx = ggx_d(ml, self.alpha[:, 0], self.alpha[:, 1]) * ml[:, 2] / (4 * wim).clamp_min(1e-12)
        p_ggx = torch.where(wim >= MIN_WI_DOT_M, p_ggx, torch.zeros_like(p_ggx))
        return self.weight_diffuse * square_to_cosine_hemisphere_pdf(wo) + (1 - self.weight_diffuse) * p_ggx

    def sample(self, wi: torch.Tensor, u: torch.Tensor, u_lobe: torch.Tensor):
        """(wo, valid): the lobe chosen with u_lobe, then cosine sampling or GGX normal sampling + reflection.
        Reflections on microfacets nearly facing away from wi (wi.m < MIN_WI_DOT_M) are invalid samples; pdf()
        gives them no density, so the two agree exactly."""
        diffuse = square_to_cosine_hemisphere(u)
        # GGX slopes: |slope|^2 = u/(1-u) for alpha = 1, then stretched by (alpha_x, alpha_y).
        u0 = u[:, 0].clamp(0, 1 - 1e-6)
        r = torch.sqrt(u0 / (1 - u0))
        phi = 2 * math.pi * u[:, 1]
        sx = self.alpha[:, 0] * r * torch.cos(phi)
        sy = self.alpha[:, 1] * r * torch.sin(phi)
        ml = F.normalize(torch.stack([-sx, -sy, torch.ones_like(sx)], 1), dim=-1)
        m = torch.bmm(self.frame.transpose(1, 2), ml[:, :, None])[:, :, 0]
        wim = (wi * m).sum(-1, keepdim=True)
        glossy = 2 * wim * m - wi
        is_diffuse = u_lobe < self.weight_diffuse
        valid = is_diffuse | (wim[:, 0] >= MIN_WI_DOT_M)
        wo = torch.where(is_diffuse[:, None], diffuse, glossy)
        return wo, valid


class Sampler(nn.Module):
    """(latent, wi) -> lobe mixture parameters: 2 weight logits, GGX alpha (2), slope offset of the lobe normal (2)
    and the lobe's tangent rotation (cos, sin)."""

    OUTPUTS = 8

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        self.cfg = cfg
        self.mlp = mlp(cfg.latent_channels + 3, cfg.sampler_width, cfg.sampler_layers, self.OUTPUTS)

    def lobes(self, latent: torch.Tensor, wi: torch.Tensor, fused: bool = False) -> Lobes:
        x = torch.cat([latent, wi], 1)
        out = fused_mlp(self.mlp, x) if fused else self.mlp(x)
        floor = self.cfg.diffuse_floor
        w = torch.softmax(out[:, 0:2], 1)[:, 0]
        weight_diffuse = floor + (1 - floor) * w
        alpha = 2e-3 + torch.sigmoid(out[:, 2:4])
        offset = 2 * torch.tanh(out[:, 4:6])
        n = F.normalize(torch.cat([-offset, torch.ones_like(offset[:, :1])], 1), dim=-1)
        ex = n.new_tensor([1.0, 0.0, 0.0]).expand_as(n)
        t0 = F.normalize(ex - n * n[:, :1], dim=-1)
        b0 = torch.linalg.cross(n, t0, dim=-1)
        rot = F.normalize(out[:, 6:8] + n.new_tensor([1.0, 0.0]), dim=-1, eps=1e-6)
        t = rot[:, :1] * t0 + rot[:, 1:2] * b0
        b = torch.linalg.cross(n, t, dim=-1)
        return Lobes(weight_diffuse, alpha, torch.stack([t, b, n], 1))


class NeuralMaterialModel(nn.Module):
    """All learned parts of one neural material; the encoder is kept only while training (§5.1)."""

    def __init__(self, cfg: NetworkConfig, parameter_channels: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.pyramid = LatentPyramid(cfg.latent_channels, cfg.resolution, cfg.levels)
        self.brdf = NeuralBRDF(cfg)
        self.sampler = Sampler(cfg)
        self.encoder = mlp(parameter_channels, 64, 3, cfg.latent_channels) if parameter_channels else None
