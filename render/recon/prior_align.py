"""Multi-view alignment of monocular depth priors: every image's unknown scale and shift, solved jointly.

A mono depth prior is known up to a per-image affine map, z = a P + b (P the prior, z the z-depth in scene units).
MonoSDF fits (a, b) of each image against the depth the current geometry renders; that ties the fit to the
geometry, and a textureless room that drifts (shrinks about its cameras) drags its fits with it. The cameras'
poses pin the affine maps without any geometry: a pixel of image i back-projected with (a_i, b_i) is a 3-D point X
whose depth in image j must equal image j's aligned prior where X projects, d_j(X) = a_j P_j(p_j(X)) + b_j. With
the correspondences p_j(X) held fixed the residual is linear in (a_i, b_i, a_j, b_j), so each round is one
weighted linear least-squares solve over all images (Gauss-Newton); rounds recompute the correspondences and
reweight the residuals (Cauchy IRLS, with residuals beyond a relative cut treated as occlusions and dropped).
This is the depth-map consistency check of multi-view stereo fusion (e.g. Schonberger et al. 2016, COLMAP's
geometric consistency) used as an estimator. Rigid baselines fix the scale: with all cameras at one point it is
unobservable (a weak pull towards the initial fits keeps the system regular).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AlignStats:
    rounds: int
    residuals: int            # correspondences kept in the last round
    rel_residual: float       # their median |r| / depth
    change: float             # max relative change of an image's aligned median depth over the initial fit


def _project(points: torch.Tensor, c2w: torch.Tensor, k: torch.Tensor):
    """(M,3) world points -> (pixel xy (M,2), z-depth (M,)) in cameras c2w (M,4,4), K (M,3,3); pinhole."""
    rel = points - c2w[:, :3, 3]
    cam = torch.einsum("mji,mj->mi", c2w[:, :3, :3], rel)  # R^T (X - o)
    z = cam[:, 2]
    uvw = torch.einsum("mij,mj->mi", k, cam / z.clamp(min=1e-9)[:, None])
    return uvw[:, :2], z


def multiview_prior_fit(dataset, image_ids: list[int], scale: torch.Tensor, shift: torch.Tensor,
                        pixels: int = 1024, partners: int = 6, rounds: int = 8, cut: float = 0.1,
                        anchor_weight: float = 1e-3, keep_global: bool = True,
                        generator: torch.Generator | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, AlignStats]:
    """Refined per-image maps z = scale * P + shift for the images `image_ids` (others returned unchanged).

    scale, shift (N,) float64: the initial maps (e.g. fits against the rendered depth); pixels: samples per image
    per round; partners: other images each sample is checked in; cut: relative residual beyond which a
    correspondence is an occlusion or a depth edge and is dropped; anchor_weight: pull towards the initial maps,
    relative to the average residual weight (regularizes images nothing else constrains); keep_global: rescale
    all refined maps together so that the images' median depths keep the initial maps' median scale."""
    ds = dataset.to("cpu")  # runs once; its bookkeeping and index draws are CPU (a no-op for a CPU dataset)
    if ds.depths is None or ds.camera_model != "PINHOLE":
        raise ValueError("multi-view prior alignment needs depth priors and pinhole cameras")
    gen = generator or torch.Generator().manual_seed(0)
    ids = torch.as_tensor(sorted(image_ids), dtype=torch.int64)
    n_img, h, w = ds.depths.shape
    slot = torch.full((n_img,), -1, dtype=torch.int64)
    slot[ids] = torch.arange(len(ids))
    a0, b0 = scale.double().clone(), shift.double().clone()
    a, b = a0.clone(), b0.clone()
    prior = ds.depths.double()
    valid = torch.isfinite(prior) & (prior > 0)
    if ds.masks is not None:
        valid &= ds.masks.bool()
    c2w, k = ds.cam_to_world.double(), ds.intrinsics.double()
    n_ids = len(ids)
    unknowns = 2 * n_ids  # only the images being aligned: (a, b) of slot s at 2s, 2s + 1
    # Each image's median prior: the unit of its scale in the pull towards the initial maps.
    med = torch.stack([prior[i][valid[i]].median() if bool(valid[i].any()) else torch.tensor(1.0,
                       dtype=torch.float64) for i in range(n_img)])
    stats = AlignStats(0, 0, float("nan"), 0.0)
    if n_ids < 2:
        return a, b, stats
    for rnd in range(rounds):
        # Samples: image i, pixel centre, its prior; partner j != i among the images.
        img = ids[torch.randint(n_ids, (n_ids * pixels,), generator=gen)]
        px = torch.randint(w, (img.numel(),), generator=gen)
        py = torch.randint(h, (img.numel(),), generator=gen)
        keep = valid[img, py, px]
        img, px, py = img[keep], px[keep], py[keep]
        p_i = prior[img, py, px]
        d_cam = ds.camera_directions(img, torch.stack([px, py], 1).double() + 0.5).double()  # (x, y, 1)
        ray = torch.einsum("mij,mj->mi", c2w[img, :3, :3], d_cam)  # world direction per unit z-depth
        img = img.repeat_interleave(partners)
        p_i, ray = p_i.repeat_interleave(partners), ray.repeat_interleave(partners, 0)
        off = torch.randint(1, n_ids, (img.numel(),), generator=gen)
        pos = torch.searchsorted(ids, img)
        jmg = ids[(pos + off) % n_ids]
        z_i = a[img] * p_i + b[img]
        x = c2w[img, :3, 3] + z_i[:, None] * ray
        uv, d_j = _project(x, c2w[jmg], k[jmg])
        qx, qy = uv[:, 0].floor().long(), uv[:, 1].floor().long()
        inside = (d_j > 1e-6) & (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h) & (z_i > 1e-6)
        qx, qy = qx.clamp(0, w - 1), qy.clamp(0, h - 1)
        inside &= valid[jmg, qy, qx]
        p_j = prior[jmg, qy, qx]
        # d_j = c + g z_i: c, g from the two cameras (linear in a_i, b_i).
        rot_j = c2w[jmg, :3, :3]
        c = torch.einsum("mji,mj->mi", rot_j, c2w[img, :3, 3] - c2w[jmg, :3, 3])[:, 2]
        g = torch.einsum("mji,mj->mi", rot_j, ray)[:, 2]
        z_j = a[jmg] * p_j + b[jmg]
        r = (d_j - z_j) / d_j.clamp(min=1e-6)  # relative
        inside &= r.abs() < cut
        if int(inside.sum()) < 8 * n_ids:
            break
        sel = inside.nonzero().squeeze(1)
        r, d = r[sel], d_j[sel]
        i_s, j_s, g_s, c_s, pi_s, pj_s = img[sel], jmg[sel], g[sel], c[sel], p_i[sel], p_j[sel]
        # Cauchy weights at the median residual, and 1/d^2 (relative residuals).
        sigma = r.abs().median().clamp(min=1e-4)
        wt = 1.0 / (1.0 + (r / (2.0 * sigma)) ** 2) / d ** 2
        # Residual (absolute): c + g (a_i P_i + b_i) - (a_j P_j + b_j) = J theta + c.
        si, sj = slot[i_s], slot[j_s]
        cols = torch.stack([2 * si, 2 * si + 1, 2 * sj, 2 * sj + 1], 1)
        vals = torch.stack([g_s * pi_s, g_s, -pj_s, -torch.ones_like(pj_s)], 1)
        lhs = torch.zeros(unknowns, unknowns, dtype=torch.float64)
        rhs = torch.zeros(unknowns, dtype=torch.float64)
        for u in range(4):
            rhs.index_add_(0, cols[:, u], -wt * vals[:, u] * c_s)
            for v in range(4):
                lhs.index_put_((cols[:, u], cols[:, v]), wt * vals[:, u] * vals[:, v], accumulate=True)
        # Pull towards the initial maps, in the units of the residual: scale error x the image's median prior.
        lam = anchor_weight * float(wt.mean()) * max(1, sel.numel() // n_ids)
        diag = torch.zeros(unknowns, dtype=torch.float64)
        diag[0::2], diag[1::2] = lam * med[ids] ** 2, lam
        theta0 = torch.stack([a0[ids], b0[ids]], 1).reshape(-1)
        lhs += torch.diag(diag)
        rhs += diag * theta0
        theta = torch.linalg.solve(lhs, rhs).reshape(n_ids, 2)
        a[ids], b[ids] = theta[:, 0], theta[:, 1]
        stats = AlignStats(rnd + 1, int(sel.numel()), float(r.abs().median()), 0.0)
    if keep_global and stats.rounds > 0:
        # The common scale of all maps (every image's depths times k: points move about their own cameras) is
        # pinned only by the baselines, weakly: on the bundled room it moved 2 % over the rounds, from any start
        # (measured against the ground truth). Take it back from the initial maps, median over the images.
        k = torch.quantile(torch.stack([(a0[i] * med[i] + b0[i]) / (a[i] * med[i] + b[i]) for i in ids.tolist()]), 0.5)
        a, b = torch.where(slot >= 0, a * k, a), torch.where(slot >= 0, b * k, b)
    before, after = a0 * med + b0, a * med + b
    stats.change = float(((after - before).abs() / before.abs().clamp(min=1e-9))[ids].max())
    return a, b, stats
