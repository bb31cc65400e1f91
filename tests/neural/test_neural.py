"""Neural material: network shapes and determinism, learned frames, sampler chi2 and pdf coverage, a tiny bake,
the .radmat round trip and malformed files."""

from __future__ import annotations

import json
import math

import pytest
import torch
from chi2 import chi2_test
from materials import TexturedMix

from render.errors import UserError
from render.neural.material import NeuralBSDF
from render.neural.model import NetworkConfig, NeuralMaterialModel, frames_from_raw
from render.neural.radmat import load_radmat, save_radmat
from render.neural.train import (LOSSES, BakeSettings, bake, fit_coarse_levels, log_l1, rebuild_coarse_levels,
                                 relative_l2, rusinkiewicz_pairs)


def random_model(seed=0, channels=8, res=8, levels=2, layers=2, width=32) -> NeuralMaterialModel:
    torch.manual_seed(seed)
    cfg = NetworkConfig(latent_channels=channels, resolution=res, levels=levels, decoder_layers=layers,
                        decoder_width=width)
    model = NeuralMaterialModel(cfg, parameter_channels=4)
    with torch.no_grad():
        for p in model.pyramid.levels:
            p.normal_()
        model.brdf.frame_head.weight.normal_(0, 0.5)
        for p in model.sampler.parameters():
            p.mul_(3.0)  # sharper, tilted, anisotropic lobes than at init
    return model.eval()


def directions(n, seed=1, hemisphere=True):
    g = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    if hemisphere:
        d[:, 2] = d[:, 2].abs()
    return d


@pytest.mark.parametrize("layers,width", [(2, 32), (3, 64)])
def test_shapes_and_determinism(layers, width):
    model = random_model(layers=layers, width=width)
    assert model.encoder(torch.rand(5, 4)).shape == (5, 8)
    bsdf = NeuralBSDF(model)
    n = 257
    uv, wi, wo = torch.rand(n, 2), directions(n, 1), directions(n, 2)
    lod = torch.rand(n) * 1.5
    f = bsdf.eval(uv, wi, wo, lod)
    assert f.shape == (n, 3) and f.dtype == torch.float32 and bool(torch.isfinite(f).all())
    assert torch.equal(f, bsdf.eval(uv, wi, wo, lod))
    # the fused inference path is the training forward's math
    latent = bsdf.latent(uv, lod)
    assert torch.allclose(model.brdf(latent, wi, wo).detach(), f, rtol=1e-5, atol=1e-7)
    assert bsdf.pdf(uv, wi, wo).shape == (n,)
    wo_s, weight, pdf = bsdf.sample(uv, wi, torch.rand(n, 2), torch.rand(n))
    assert wo_s.shape == (n, 3) and weight.shape == (n, 3) and pdf.shape == (n,)
    assert torch.allclose(wo_s.norm(dim=1), torch.ones(n), atol=1e-5)
    assert bsdf.albedo(uv[:7]).shape == (7, 3)
    # below the surface: reflection only
    below = wo * torch.tensor([1.0, 1.0, -1.0])
    assert float(bsdf.eval(uv, wi, below).abs().max()) == 0.0


def test_learned_frames_orthonormal():
    raw = torch.randn(1000, 12) * 2
    frames = frames_from_raw(raw, 2)                       # (N, 2, 3, 3), rows t, b, n
    eye = torch.eye(3).expand(1000, 2, 3, 3)
    assert torch.allclose(frames @ frames.transpose(-1, -2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(frames), torch.ones(1000, 2), atol=1e-5)
    # zero raw output = the geometric frame
    assert torch.allclose(frames_from_raw(torch.zeros(1, 12), 2)[0, 0], torch.eye(3))


@pytest.mark.parametrize("theta,seed", [(10, 0), (50, 1), (80, 2), (88, 4)])
def test_sampler_chi2(theta, seed):
    model = random_model(seed)
    bsdf = NeuralBSDF(model)
    t = math.radians(theta)
    wi1 = torch.tensor([[math.sin(t) * 0.6, math.sin(t) * 0.8, math.cos(t)]])
    uv1 = torch.tensor([[0.3, 0.7]])

    def sample(u):
        n = len(u)
        wo, _, pdf = bsdf.sample(uv1.expand(n, 2), wi1.expand(n, 3), u[:, :2], u[:, 2])
        return wo, pdf > 0

    def pdf(wo):
        return bsdf.pdf(uv1.expand(len(wo), 2), wi1.expand(len(wo), 3), wo)

    r = chi2_test(sample, pdf, sample_count=200_000, res=30, test_count=3)
    assert r.passed, r.message
    # the pdf integrates to the share of valid samples (<= 1: rejected back-facing microfacets have no density)
    assert abs(r.pdf_sum - r.histogram_sum) < 0.01 and r.pdf_sum <= 1.01, r.message


def test_pdf_positive_wherever_value_positive():
    """No unsampled energy: every direction with a decoded value > 0 has pdf > 0 (the cosine floor)."""
    model = random_model(3)
    with torch.no_grad():
        model.sampler.mlp[-1].bias.copy_(torch.tensor([30.0, -30.0, -30, -30, 5, 5, 0, 0]))  # a near-delta lobe
    bsdf = NeuralBSDF(model)
    n = 200_000
    uv, wi, wo = torch.rand(n, 2), directions(n, 4, False), directions(n, 5, False)
    wo[:10, 2] = 1e-4  # grazing
    f, pdf = bsdf.eval(uv, wi, wo), bsdf.pdf(uv, wi, wo)
    has_energy = f.amax(1) > 0
    assert int(has_energy.sum()) > n // 5
    assert bool((pdf[has_energy] > 0).all())


def test_rusinkiewicz_pairs_mirror_about_half_vector():
    u = torch.rand(1000, 4)
    u[:, 1] *= 0.98  # theta_d = 90 deg: wi = -wo, no half vector
    wi, wo = rusinkiewicz_pairs(u)
    h = torch.nn.functional.normalize(wi + wo, dim=1)
    assert torch.allclose(wi.norm(dim=1), torch.ones(1000), atol=1e-5)
    assert torch.allclose((wi * h).sum(1), (wo * h).sum(1), atol=1e-5)


def _fit_constant(loss_fn, mean: torch.Tensor, steps: int = 1500, seed: int = 0) -> torch.Tensor:
    """Fits f = exp(p) (the decoder's output form) to targets mean * Exp(1): zero-mean noise around `mean` with a
    long right tail, as a one-walk estimate of a layered BSDF."""
    g = torch.Generator().manual_seed(seed)
    p = torch.zeros(len(mean), requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.05)
    for step in range(steps):
        for group in opt.param_groups:   # cosine decay, so the fit settles
            group["lr"] = 0.05 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        y = mean * -torch.log(1 - torch.rand(512, len(mean), generator=g))
        loss = loss_fn(torch.exp(p).expand(512, -1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.exp(p).detach()


def test_relative_l2_fits_the_mean_of_noisy_targets_log_l1_does_not():
    """Unbiasedness of the default loss (Lehtinen et al. 2018; Mueller et al. 2021): on noisy targets with a known
    mean the relative-L2 fit converges to the mean; the log-L1 fit converges to the noise's median (ln 2 x mean for
    exponential noise), which is why it needs 64-walk targets."""
    mean = torch.tensor([0.05, 0.5, 5.0])
    rel = _fit_constant(relative_l2, mean)
    log = _fit_constant(log_l1, mean)
    assert torch.allclose(rel, mean, rtol=0.05), rel
    assert bool(((log / mean - 1).abs() > 0.2).all()), log
    assert set(LOSSES) == {"relative_l2", "log_l1"}
    assert BakeSettings().target_samples == 1 and BakeSettings(loss="log_l1").target_samples == 64
    # one-walk targets come in large chunks (2^18 walks per reference call), or per-op overhead dominates
    assert BakeSettings().chunk == 65536 and BakeSettings(loss="log_l1").chunk == 4096
    with pytest.raises(ValueError, match="loss"):
        BakeSettings(loss="l2")


def test_rebuild_coarse_levels_follow_the_finest():
    """After fine-tuning the finest level, each coarser level is the 2x2 box average of the one above it."""
    model = random_model(3, res=8, levels=3)
    before = model.pyramid.levels[0].detach().clone()
    rebuild_coarse_levels(model)
    levels = model.pyramid.levels
    assert torch.equal(levels[0], before)
    assert torch.allclose(levels[1][1, 2], before[2:4, 4:6].mean((0, 1)), atol=1e-6)
    assert torch.allclose(levels[2][0, 1], before[0:4, 4:8].mean((0, 1)), atol=1e-6)


def test_fit_coarse_levels_beats_the_box_average():
    """A coarse level fitted to pairs decoded from the finest level (decoder frozen) matches them better than the
    box average of the finest latents (the decoder is nonlinear); the finest level and the decoder do not move."""
    model = random_model(4, res=8, levels=2).train()
    g = torch.Generator().manual_seed(5)
    n = 20_000
    uv = torch.rand(n, 2, generator=g)
    wi, wo = directions(n, 6), directions(n, 7)
    with torch.no_grad():
        value = model.brdf(model.pyramid.lookup(uv), wi, wo)
    pairs = {"uv": uv, "wi": wi, "wo": wo, "value": value}
    rebuild_coarse_levels(model)
    finest, decoder = model.pyramid.levels[0].detach().clone(), model.brdf.mlp[0].weight.detach().clone()

    def coarse_error():
        with torch.no_grad():
            from render.neural.model import bilinear_repeat
            return float(relative_l2(model.brdf(bilinear_repeat(model.pyramid.levels[1], uv), wi, wo), value))

    box = coarse_error()
    steps = fit_coarse_levels(model, pairs, relative_l2, 1024, 1e-2, g, math.inf, max_steps=300)
    assert steps == 300
    assert coarse_error() < 0.85 * box, (coarse_error(), box)
    assert torch.equal(model.pyramid.levels[0], finest) and torch.equal(model.brdf.mlp[0].weight, decoder)
    assert all(p.requires_grad for p in model.brdf.parameters())


def test_tiny_bake_reaches_error(tmp_path):
    """A small bake (600 decoder steps) of a textured diffuse + GGX mix gets the held-out log-L1 below 0.15 and
    beats a constant predictor (the mean training target) by 3x on fresh pairs; the encoder is dropped after
    baking. The baked finest level reproduces what the encoder was trained to give (encode the texels, then
    interpolate): interpolating the parameters first and encoding them made baked latents worse between texels.
    Step counts, not time, so the result does not depend on the machine's load."""
    material = TexturedMix(resolution=16)
    settings = BakeSettings(max_pairs=30_000, target_samples=1, phase_steps=(600, 50, 50))
    result = bake(material, NetworkConfig(), settings)
    assert result.errors["validation_log_l1"] < 0.15, result.errors
    e = result.errors
    assert abs(e["validation_log_l1_baked"] - e["validation_log_l1_encoder"]) < 1e-4 * e["validation_log_l1_encoder"], e
    assert result.model.encoder is None
    bsdf = NeuralBSDF(result.model)
    g = torch.Generator().manual_seed(9)
    uv = torch.rand(4000, 2, generator=g)
    wi, wo = rusinkiewicz_pairs(torch.rand(4000, 4, generator=g))
    ok = (wi[:, 2] > 1e-3) & (wo[:, 2] > 1e-3)
    uv, wi, wo = uv[ok], wi[ok], wo[ok]
    ref = material.eval(uv, wi, wo)
    err = log_l1(bsdf.eval(uv, wi, wo), ref)
    const = log_l1(ref.mean(0).expand_as(ref), ref)
    assert err < 0.15 and const > 3 * err, (float(err), float(const))


def test_radmat_round_trip(tmp_path):
    model = random_model(5)
    with torch.no_grad():
        for p in model.pyramid.levels:
            p.copy_(p.half().float())   # latents are stored as float16
    path = tmp_path / "m.radmat"
    save_radmat(path, model, {"source": "test.xml", "errors": {"validation_log_l1": 0.1}})
    with pytest.raises(UserError, match="exists"):
        save_radmat(path, model, {})
    loaded = NeuralBSDF.load(path)
    assert loaded.metadata["source"] == "test.xml"
    assert loaded.metadata["network"] == model.cfg.to_dict()
    n = 100
    uv, wi, wo, u, ul = torch.rand(n, 2), directions(n, 1), directions(n, 2), torch.rand(n, 2), torch.rand(n)
    bsdf = NeuralBSDF(model)
    assert torch.equal(bsdf.eval(uv, wi, wo), loaded.eval(uv, wi, wo))
    assert torch.equal(bsdf.pdf(uv, wi, wo), loaded.pdf(uv, wi, wo))
    assert all(torch.equal(a, b) for a, b in zip(bsdf.sample(uv, wi, u, ul), loaded.sample(uv, wi, u, ul)))
    assert [p.name for p in tmp_path.iterdir()] == ["m.radmat"]  # no temp file left


def _write_safetensors(path, tensors, meta):
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("case", ["garbage", "empty", "no_meta", "bad_json", "wrong_format", "bad_network",
                                  "missing_tensor", "wrong_shape", "nan", "int_tensor"])
def test_malformed_radmat(tmp_path, case):
    model = random_model(6)
    good = tmp_path / "good.radmat"
    save_radmat(good, model, {})
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = json.loads(f.metadata()["radiant"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    path = tmp_path / f"{case}.radmat"
    if case == "garbage":
        path.write_bytes(b"\x80\x04not a safetensors file at all")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "no_meta":
        _write_safetensors(path, tensors, {})
    elif case == "bad_json":
        _write_safetensors(path, tensors, {"radiant": "{nope"})
    elif case == "wrong_format":
        _write_safetensors(path, tensors, {"radiant": json.dumps({**meta, "format": "other"})})
    elif case == "bad_network":
        _write_safetensors(path, tensors, {"radiant": json.dumps({**meta, "network": {"latent_chanels": 8}})})
    elif case == "missing_tensor":
        _write_safetensors(path, {k: v for k, v in tensors.items() if not k.startswith("sampler")},
                           {"radiant": json.dumps(meta)})
    elif case == "wrong_shape":
        tensors["pyramid.levels.0"] = torch.zeros(3, 3, 8, dtype=torch.float16)
        _write_safetensors(path, tensors, {"radiant": json.dumps(meta)})
    elif case == "nan":
        tensors["brdf.mlp.0.weight"] = tensors["brdf.mlp.0.weight"] * float("nan")
        _write_safetensors(path, tensors, {"radiant": json.dumps(meta)})
    elif case == "int_tensor":
        tensors["brdf.mlp.0.bias"] = tensors["brdf.mlp.0.bias"].int()
        _write_safetensors(path, tensors, {"radiant": json.dumps(meta)})
    with pytest.raises(UserError) as e:
        load_radmat(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg


def test_bake_checkpoint_resume(tmp_path):
    """A bake saves its state after each phase; resuming from the checkpoint reuses the targets (no reference
    calls) and finishes with the same held-out error as a bake that was not interrupted."""
    material = TexturedMix(resolution=8)
    settings = BakeSettings(max_pairs=8192, target_samples=1, phase_steps=(20, 5, 5))
    ckpt = tmp_path / "b.ckpt"
    first = bake(material, NetworkConfig(), settings, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert state["phase"] == 3 and state["pairs"] == first.pairs

    class NoReference(TexturedMix):
        def eval(self, *a, **k):
            raise AssertionError("resume must not re-evaluate the reference")

    again = bake(NoReference(resolution=8), NetworkConfig(), settings, checkpoint=ckpt, resume=True)
    assert again.errors["validation_log_l1"] == first.errors["validation_log_l1"]
    ckpt.write_bytes(b"junk")
    with pytest.raises(UserError, match="checkpoint"):
        bake(material, NetworkConfig(), settings, checkpoint=ckpt, resume=True)
