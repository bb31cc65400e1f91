"""Chi-square goodness-of-fit test of a direction sampler against its pdf, after Mitsuba 3's chi2.py.

Samples are histogrammed over a (phi, cos theta) grid (equal solid-angle cells); the expected count of each cell
is the pdf integrated over the cell with the trapezoid rule on an ires x ires lattice. Cells are sorted by
expected count and low-expectation cells pooled until they reach 5; the p-value of the chi^2 statistic is
compared with a Sidak-corrected significance level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats


def sphere_from_grid(phi: torch.Tensor, cos_theta: torch.Tensor) -> torch.Tensor:
    sin_theta = torch.sqrt(torch.clamp(1 - cos_theta * cos_theta, min=0))
    return torch.stack([torch.cos(phi) * sin_theta, torch.sin(phi) * sin_theta, cos_theta], -1)


def pooled_chi2(observed: np.ndarray, expected: np.ndarray, threshold: float = 5.0):
    """Mitsuba's math::chi2: returns (statistic, degrees of freedom, pooled-in, pooled-out)."""
    order = np.argsort(expected, kind="stable")
    obs, exp = observed[order], expected[order]
    chsq, dof, pooled_obs, pooled_exp, pooled_in, pooled_out = 0.0, 0, 0.0, 0.0, 0, 0
    for o, e in zip(obs, exp):
        if e == 0 and o == 0:
            continue
        if e < threshold:
            pooled_obs += o
            pooled_exp += e
            pooled_in += 1
            if pooled_exp > threshold:
                chsq += (pooled_obs - pooled_exp) ** 2 / pooled_exp
                pooled_obs = pooled_exp = 0.0
                pooled_out += 1
                dof += 1
        else:
            chsq += (o - e) ** 2 / e
            dof += 1
    if pooled_exp > 0 or pooled_obs > 0:
        chsq += (pooled_obs - pooled_exp) ** 2 / pooled_exp if pooled_exp > 0 else math.inf
        pooled_out += 1
        dof += 1
    return chsq, dof - 1, pooled_in, pooled_out


@dataclass
class Chi2Result:
    passed: bool
    p_value: float
    statistic: float
    dof: int
    histogram_sum: float  # fraction of valid samples
    pdf_sum: float  # integral of the pdf over the sphere
    message: str


def chi2_test(sample_func, pdf_func, sample_count: int = 400_000, res: int = 40, ires: int = 8,
              significance_level: float = 0.01, test_count: int = 1, seed: int = 0) -> Chi2Result:
    """sample_func(u (N,3) uniform) -> (directions (N,3), valid (N,) bool); pdf_func(dirs (M,3)) -> (M,) density.

    The grid has 2*res cells in phi over [-pi, pi] and res cells in cos theta over [-1, 1].
    """
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(sample_count, 3, generator=gen)
    dirs, valid = sample_func(u)
    dirs, valid = dirs.double(), valid.bool()
    nx, ny = 2 * res, res
    phi = torch.atan2(dirs[:, 1], dirs[:, 0])
    x = ((phi + math.pi) / (2 * math.pi) * nx).floor().clamp(0, nx - 1).long()
    y = ((dirs[:, 2] + 1) / 2 * ny).floor().clamp(0, ny - 1).long()
    norm_ok = (dirs.norm(dim=1) - 1).abs() < 1e-3
    msg = []
    if not bool(norm_ok[valid].all()):
        msg.append(f"{int((~norm_ok[valid]).sum())} valid samples are not unit vectors")
    hist = torch.bincount((x + y * nx)[valid], minlength=nx * ny).double().numpy()

    # Expected counts: trapezoid rule on an ires x ires lattice inside each cell (Mitsuba tabulate_pdf).
    cx, cy = torch.meshgrid(torch.arange(nx), torch.arange(ny), indexing="xy")
    sx, sy = torch.meshgrid(torch.arange(ires), torch.arange(ires), indexing="xy")
    cell_w, cell_h = 2 * math.pi / nx, 2.0 / ny
    px = -math.pi + cx.reshape(-1, 1).double() * cell_w + (sx.reshape(1, -1) + 1e-4) * (1 - 2e-4) * cell_w / (ires - 1)
    py = -1.0 + cy.reshape(-1, 1).double() * cell_h + (sy.reshape(1, -1) + 1e-4) * (1 - 2e-4) * cell_h / (ires - 1)
    tw = torch.where((sx == 0) | (sx == ires - 1), 0.5, 1.0) * torch.where((sy == 0) | (sy == ires - 1), 0.5, 1.0)
    tw = tw.reshape(1, -1).double() * (cell_w / (ires - 1)) * (cell_h / (ires - 1)) * sample_count
    pts = sphere_from_grid(px.reshape(-1), py.reshape(-1)).float()
    pdf = pdf_func(pts).double().reshape(nx * ny, ires * ires)
    expected = (pdf * tw).sum(1).numpy()

    hist_sum = hist.sum() / sample_count
    pdf_sum = expected.sum() / sample_count
    fail = bool(msg)
    if (expected < 0).any() or not np.isfinite(expected).all():
        msg.append("negative or non-finite pdf")
        fail = True
    if pdf_sum > 1.1 or hist_sum > 1.1:
        msg.append(f"sums too large: histogram {hist_sum:.4f}, pdf {pdf_sum:.4f}")
        fail = True
    if ((expected == 0) & (hist > 0)).any():
        msg.append(f"{int(((expected == 0) & (hist > 0)).sum())} cells with samples but zero expected frequency")
        fail = True
    chsq, dof, _, _ = pooled_chi2(hist, expected, 5.0)
    if dof < 1:
        msg.append("too few degrees of freedom")
        fail = True
    p_value = float(stats.chi2.sf(chsq, dof)) if dof >= 1 else 0.0
    alpha = 1.0 - (1.0 - significance_level) ** (1.0 / test_count)  # Sidak correction
    passed = (not fail) and p_value >= alpha
    msg.append(f"chi2 = {chsq:.1f}, dof = {dof}, p = {p_value:.4g} (alpha {alpha:.3g}), "
               f"histogram sum {hist_sum:.4f}, pdf sum {pdf_sum:.4f}")
    return Chi2Result(passed, p_value, chsq, dof, hist_sum, pdf_sum, "; ".join(msg))
