"""Baking a reference material into a neural material (§5 of Zeltner et al. 2024), in four timed phases:

1. targets: (uv, wi, wo) with directions uniform in the Rusinkiewicz parameterization plus a share from the
   reference's own sampler; values = the reference's random-walk estimate. With the relative L2 loss (default) a
   target is 1 walk: the loss is unbiased under zero-mean target noise, so cheap noisy targets buy many more pairs
   per second. With the log-L1 loss of the paper, targets average 64 walks (log of a noisy mean is biased). A
   separate held-out set (64 walks per value) measures the log-L1 error for validation either way.
2. encoder + decoder: latent = bilinear blend of encoder(parameters) at uv's four finest-level texels (what the
   baked pyramid returns); the chosen loss, Adam with cosine decay.
3. bake + fine-tune: the encoder runs at every texel of the prefiltered parameter textures (one pyramid level
   each), then latents + decoder are fine-tuned directly (kept only if the held-out error improves).
4. sampler: the lobe-mixture network is fit to the frozen decoder with a KL loss, -E_p[log q].

The reference is any TorchBSDF with `parameter_textures(resolution)` -> (P,R,R) maps at texel centres, as
LayeredBSDF (render/bsdfs/layered.py).
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..core.warp import square_to_cosine_hemisphere, square_to_uniform_hemisphere
from ..errors import UserError
from .model import NetworkConfig, NeuralMaterialModel, bilinear_taps, downsample

LUMINANCE = (0.2126, 0.7152, 0.0722)


@dataclass
class BakeSettings:
    minutes: float = 3.0
    loss: str = "relative_l2"          # relative_l2 (unbiased under target noise) or log_l1 (the paper's)
    target_samples: int | None = None  # random walks per training target (None: 1 for relative_l2, 64 for log_l1)
    max_pairs: int = 4_000_000         # cap on generated (uv, wi, wo) targets (before the below-horizon cut)
    validation_pairs: int = 2048       # held-out pairs (at most max_pairs / 16) ...
    validation_samples: int = 64       # ... with this many walks per value
    chunk: int | None = None           # targets per reference call (None: 2^18 walks, 1024 to 65536 targets)
    log_warmup: float = 0.2            # relative_l2: share of the decoder phase trained with log_l1 first
    sampled_share: float = 0.2         # share of wo from the reference's sampler (rest: uniform Rusinkiewicz)
    batch: int = 4096
    lr: float = 3e-3
    finetune_lr: float = 0.2           # fine-tune learning rate, times lr
    coarse_fit_share: float = 0.25     # share of the fine-tune phase fitting the coarse levels (fit_coarse_levels)
    sampler_batch: int = 512          # (uv, wi) pairs per sampler step ...
    sampler_directions: int = 32      # ... times this many wo each
    phase_shares: tuple = (0.4, 0.35, 0.1, 0.15)   # targets, encoder+decoder, fine-tune, sampler
    phase_steps: tuple | None = None  # (decoder, fine-tune, sampler) optimizer steps instead of time (tests);
    #                                   targets then run to max_pairs
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.target_samples is None:
            self.target_samples = DEFAULT_TARGET_SAMPLES[self.loss]
        if self.chunk is None:  # few walks per target: large chunks, or per-op overhead dominates the reference
            self.chunk = min(65536, max(1024, (1 << 18) // self.target_samples))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BakeResult:
    model: NeuralMaterialModel
    history: dict = field(default_factory=dict)   # phase -> list of (seconds, value)
    errors: dict = field(default_factory=dict)
    seconds: float = 0.0
    pairs: int = 0


LOG_EPSILON = 0.01


def log_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 in log space (§5.2): |log(eps + f_pred) - log(eps + f_ref)|, mean over RGB and batch. eps = 0.01 keeps
    the loss relative down to f cos ~ 0.01, where broad base lobes carry most of a coated material's energy
    (log(1 + f) would weigh them ~20x less than the coat's specular peak and lose them)."""
    return (torch.log(pred + LOG_EPSILON) - torch.log(target.clamp_min(0) + LOG_EPSILON)).abs().mean()


RELATIVE_EPSILON = LOG_EPSILON ** 2


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative L2, (f - y)^2 / (stopgrad(f)^2 + eps), mean over RGB and batch (Mueller et al. 2021, neural radiance
    caching, after Lehtinen et al. 2018, Noise2Noise): for a fixed denominator its minimizer is the mean of the
    targets, so zero-mean noise in y (few random walks) adds variance but no bias. eps = 0.01^2 keeps it relative
    down to f cos ~ 0.01, as log_l1's eps."""
    return ((pred - target) ** 2 / (pred.detach() ** 2 + RELATIVE_EPSILON)).mean()


LOSSES = {"relative_l2": relative_l2, "log_l1": log_l1}
DEFAULT_TARGET_SAMPLES = {"relative_l2": 1, "log_l1": 64}


def rusinkiewicz_pairs(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u (N,4) -> (wi, wo) with (theta_h, theta_d, phi_h, phi_d) uniform (Rusinkiewicz 1998): dense near the
    specular configuration, as the paper's training distribution. Pairs below the surface are kept (caller
    filters)."""
    th = u[:, 0] * (math.pi / 2)
    td = u[:, 1] * (math.pi / 2)
    ph = u[:, 2] * (2 * math.pi)
    pd = u[:, 3] * (2 * math.pi)
    d = torch.stack([torch.sin(td) * torch.cos(pd), torch.sin(td) * torch.sin(pd), torch.cos(td)], 1)
    d_mirror = d * d.new_tensor([-1.0, -1.0, 1.0])

    def rotate(v):  # R_z(phi_h) R_y(theta_h) v
        ch, sh, cp, sp = torch.cos(th), torch.sin(th), torch.cos(ph), torch.sin(ph)
        x = ch * v[:, 0] + sh * v[:, 2]
        z = -sh * v[:, 0] + ch * v[:, 2]
        return torch.stack([cp * x - sp * v[:, 1], sp * x + cp * v[:, 1], z], 1)

    return rotate(d), rotate(d_mirror)


def _reference_eval(material, spp: int):
    if "n_samples" in inspect.signature(material.eval).parameters:
        return lambda uv, wi, wo: material.eval(uv, wi, wo, n_samples=spp)
    return material.eval


def generate_targets(material, count: int, settings: BakeSettings, gen: torch.Generator, deadline: float,
                     tick=None, walks: int | None = None) -> dict:
    """Training pairs until `count` or the deadline (at least one chunk), values averaging `walks` random walks
    (default settings.target_samples). Returns uv, wi, wo, value (on CPU)."""
    evaluate = _reference_eval(material, walks or settings.target_samples)
    clock = bake_clock(settings.device)
    parts: dict[str, list] = {"uv": [], "wi": [], "wo": [], "value": []}
    made = 0
    while made < count and (made == 0 or clock() < deadline):
        n = min(settings.chunk, count - made)
        uv = torch.rand(n, 2, generator=gen)
        wi, wo = rusinkiewicz_pairs(torch.rand(n, 4, generator=gen))
        # A share of pairs follows the reference's own sampling from a cosine-distributed wi.
        k = int(n * settings.sampled_share)
        if k:
            wi_s = square_to_cosine_hemisphere(torch.rand(k, 2, generator=gen))
            wo_s = material.sample(uv[:k], wi_s, torch.rand(k, 2, generator=gen), torch.rand(k, generator=gen))[0]
            wi, wo = torch.cat([wi_s, wi[k:]]), torch.cat([wo_s, wo[k:]])
        ok = (wi[:, 2] > 1e-3) & (wo[:, 2] > 1e-3) & torch.isfinite(wo).all(1)
        uv, wi, wo = uv[ok], wi[ok], wo[ok]
        with torch.no_grad():
            value = evaluate(uv, wi, wo).float()
        value = torch.nan_to_num(value, nan=0.0, posinf=0.0).clamp_min(0)
        for key, t in (("uv", uv), ("wi", wi), ("wo", wo), ("value", value)):
            parts[key].append(t.cpu())
        made += n
        if tick is not None:
            tick(made, None)
    return {k: torch.cat(v) for k, v in parts.items()}


def bake_clock(device: str):
    """The bake's clock: this process's CPU time on the CPU (the budget is CPU minutes, so a bake on a loaded shared
    machine does the same work as on an idle one), wall time on a GPU (its work is not CPU time)."""
    return time.perf_counter if str(device).startswith("cuda") else time.process_time


def _cosine_lr(opt, lr0: float, progress: float) -> None:
    lr = lr0 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))
    for g in opt.param_groups:
        g["lr"] = lr


def optimize(params, lr0: float, span: float, max_steps: int | None, clock, loss_at, on_step=None) -> int:
    """Adam on `params` with a cosine-decayed learning rate for `span` seconds of `clock` (or `max_steps` steps),
    at least one step. loss_at(fraction done) -> loss; on_step(steps, fraction, elapsed, loss) after each step.
    Returns the steps taken."""
    opt = torch.optim.Adam(params, lr=lr0)
    t0, steps = clock(), 0
    while True:
        elapsed = clock() - t0
        done_frac = elapsed / span if max_steps is None else steps / max_steps
        if done_frac >= 1 and steps > 0:
            return steps
        _cosine_lr(opt, lr0, done_frac)
        loss = loss_at(done_frac)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if on_step is not None:
            on_step(steps, done_frac, elapsed, loss)


def pyramid_levels(resolution: int, max_levels: int = 6) -> int:
    levels = 1
    while levels < max_levels and resolution >> levels >= 4:
        levels += 1
    return levels


def bake_latents(model: NeuralMaterialModel, textures: torch.Tensor) -> None:
    """Runs the encoder at every texel of each pyramid level's prefiltered parameter textures (§5.1)."""
    with torch.no_grad():
        level_tex = textures
        for level in model.pyramid.levels:
            h, w, p = level_tex.shape
            level.copy_(model.encoder(level_tex.reshape(-1, p)).reshape(h, w, -1))
            if h > 1:
                level_tex = downsample(level_tex)


def rebuild_coarse_levels(model: NeuralMaterialModel) -> None:
    """Coarse pyramid levels = box-downsampled finer latents. Fine-tuning moves the finest level and the decoder
    away from the encoder-baked coarse levels; rebuilt from the tuned level they stay consistent with it (carpaint
    at 4096 spp: FLIP 0.119 with stale coarse levels, 0.048 with the finest level only)."""
    with torch.no_grad():
        levels = model.pyramid.levels
        for k in range(1, len(levels)):
            levels[k].copy_(downsample(levels[k - 1]))


def fit_coarse_levels(model: NeuralMaterialModel, train: dict, loss_fn, batch: int, lr: float,
                      gen: torch.Generator, span: float, max_steps: int | None = None, clock=time.process_time) -> int:
    """Fits the coarse pyramid levels (decoder and finest level frozen) to the training pairs: each level's
    bilinear latent field at a pair's uv is trained against the reference value there. With the relative L2
    loss (minimizer: the mean) a coarse level converges to the latent whose decoding best matches the reference
    over the level's texel footprint, rather than to a box average of latents, which is not the average of the
    decoded BRDFs (the decoder is nonlinear). Starts from rebuild_coarse_levels; returns the steps taken."""
    levels = list(model.pyramid.levels)[1:]
    if not levels:
        return 0
    dev = levels[0].device
    frozen = [p for p in model.brdf.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    m = len(train["uv"])
    from .model import bilinear_repeat

    def loss_at(_):
        idx = torch.randint(0, m, (batch,), generator=gen).to(dev)
        uv, wi, wo, value = (train[k][idx] for k in ("uv", "wi", "wo", "value"))
        return sum(loss_fn(model.brdf(bilinear_repeat(level, uv), wi, wo), value) for level in levels)

    steps = optimize(levels, lr, span, max_steps, clock, loss_at)
    for p in frozen:
        p.requires_grad_(True)
    return steps


def save_checkpoint(path: Path, state: dict) -> None:
    from ..core.image import _write_atomically

    _write_atomically(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict | None:
    """The bake state saved at the last finished phase, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which, do not guess
        raise UserError(f"{path}: not a readable bake checkpoint ({str(e).splitlines()[0][:120]}); delete it or "
                        "run without --resume") from None


def bake(material, cfg: NetworkConfig | None = None, settings: BakeSettings | None = None,
         progress=None, checkpoint: Path | None = None, resume: bool = False) -> BakeResult:
    """Trains a neural material for `material`. progress(phase, fraction, loss, rate) is called as it goes.
    With `checkpoint`, the state is saved after each phase; `resume` continues from it (same settings)."""
    settings = settings or BakeSettings()
    dev = torch.device(settings.device)
    clock = bake_clock(settings.device)
    gen = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    from .source import source_resolution

    res = source_resolution(material)
    textures = material.parameter_textures(res).float().cpu().permute(1, 2, 0).contiguous()   # (R,R,P)
    if cfg is None:
        cfg = NetworkConfig()
    cfg = NetworkConfig(**{**cfg.to_dict(), "resolution": res, "levels": pyramid_levels(res)})
    model = NeuralMaterialModel(cfg, textures.shape[-1]).to(dev)
    budget = settings.minutes * 60.0
    shares = settings.phase_shares
    step_caps = settings.phase_steps or (None, None, None)
    t_start = clock()
    history: dict[str, list] = {"targets": [], "decoder": [], "finetune": [], "sampler": [], "validation": []}

    def report(phase, frac, loss=None, rate=None):
        if progress is not None:
            progress(phase, frac, loss, rate)

    # ---- 1. targets (restored from the checkpoint when resuming: they are the costly part)
    state = load_checkpoint(checkpoint) if checkpoint is not None and resume else None
    done = state["phase"] if state else 0
    if state:
        val, train = state["val"], state["train"]
        history, errors, n = state["history"], state["errors"], state["pairs"]
        model.load_state_dict(state["model"])
        gen.set_state(state["rng"])
        t_start -= state["elapsed"]
    else:
        deadline = t_start + (budget * shares[0] if settings.phase_steps is None else math.inf)
        tick = lambda made, _: report("targets", min(1.0, max(made / settings.max_pairs, (
            clock() - t_start) / (budget * shares[0]))), None,
            made / max(clock() - t_start, 1e-9))
        # held-out pairs first (low-noise values, so the log-L1 validation error is not biased by target noise)
        n_val = max(1, min(settings.validation_pairs, settings.max_pairs // 16))
        val = generate_targets(material, n_val, settings, gen, math.inf, walks=settings.validation_samples)
        train = generate_targets(material, settings.max_pairs, settings, gen, deadline, tick=tick)
        n = len(train["uv"])
        history["targets"].append((clock() - t_start, n))
        errors = {}

    def save(phase):
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"phase": phase, "val": val, "train": train, "history": history,
                                         "errors": errors, "pairs": n, "model": model.state_dict(),
                                         "rng": gen.get_state(), "elapsed": clock() - t_start})

    if done < 1:
        save(1)
    val = {k: v.to(dev) for k, v in val.items()}
    train = {k: v.to(dev) for k, v in train.items()}
    textures_dev = textures.to(dev)

    # The encoder's input: the parameter textures at the finest level's texels. A pair's latent is the bilinear blend
    # of its four texels' encodings, as the baked pyramid gives it (encode, then interpolate): an encoder trained on
    # the parameters interpolated to uv (interpolate, then encode) left car paint's baked latents 2-10x worse at
    # texel corners than at centres (its flake colour varies per texel and the encoder is nonlinear).
    texels = textures_dev.reshape(-1, textures_dev.shape[-1])

    def enc(b):
        index, weight = bilinear_taps(b["uv"], res, res)
        latent = model.encoder(texels[index.reshape(-1)]).reshape(len(index), 4, -1)
        return (latent * weight[:, :, None]).sum(1)

    def validate(latent_fn) -> float:
        with torch.no_grad():
            return float(log_l1(model.brdf(latent_fn(val), val["wi"], val["wo"]), val["value"]))

    loss_fn = LOSSES[settings.loss]
    # targets that stopped early (max_pairs reached) leave their time to the training phases, in their proportions
    left = budget - (clock() - t_start)
    training_budget = max(left, budget * sum(shares[1:])) / sum(shares[1:])
    warmup = settings.log_warmup if settings.loss == "relative_l2" else 0.0

    def run_phase(name, params, latent_fn, share, lr0, max_steps=None):
        m = len(train["uv"])

        def loss_at(done_frac):
            idx = torch.randint(0, m, (settings.batch,), generator=gen).to(dev)
            batch = {k: v[idx] for k, v in train.items()}
            # relative L2 from a random start sees f off by orders of magnitude on the coat's specular peaks
            # (gradient ~ y/f): a log-L1 warm-up first brings f near y, then the unbiased loss takes over.
            fn = log_l1 if name == "decoder" and done_frac < warmup else loss_fn
            return fn(model.brdf(latent_fn(batch), batch["wi"], batch["wo"]), batch["value"])

        def on_step(steps, done_frac, elapsed, loss):
            if steps % 10 == 0 or steps == 1:
                history[name].append((clock() - t_start, float(loss.detach())))
                report(name, min(1.0, done_frac), float(loss.detach()), steps / max(elapsed, 1e-9))

        return optimize(params, lr0, training_budget * share, max_steps, clock, loss_at, on_step)

    # ---- 2. encoder + decoder
    if done < 2:
        run_phase("decoder", list(model.encoder.parameters()) + list(model.brdf.parameters()), enc, shares[1],
                  settings.lr, step_caps[0])
        errors["validation_log_l1_encoder"] = validate(enc)
        history["validation"].append((clock() - t_start, errors["validation_log_l1_encoder"]))
        save(2)

    # ---- 3. bake the latents (prefiltered parameter textures per level), then fine-tune
    lookup = lambda b: model.pyramid.lookup(b["uv"])
    if done < 3:
        bake_latents(model, textures_dev)
        errors["validation_log_l1_baked"] = validate(lookup)
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        coarse_share = settings.coarse_fit_share if len(model.pyramid.levels) > 1 else 0.0
        run_phase("finetune", [model.pyramid.levels[0]] + list(model.brdf.parameters()), lookup,
                  shares[2] * (1 - coarse_share), settings.lr * settings.finetune_lr, step_caps[1])
        errors["validation_log_l1_finetuned"] = validate(lookup)
        if errors["validation_log_l1_finetuned"] > errors["validation_log_l1_baked"]:
            model.load_state_dict(saved)  # fine-tuning overfit the held-out pairs: keep the baked latents
        else:
            rebuild_coarse_levels(model)
        if coarse_share > 0:
            fit_coarse_levels(model, train, loss_fn, settings.batch, settings.lr, gen,
                              training_budget * shares[2] * coarse_share,
                              None if step_caps[1] is None else max(1, step_caps[1] // 4), clock)
        errors["validation_log_l1"] = validate(lookup)
        history["validation"].append((clock() - t_start, errors["validation_log_l1"]))
        save(3)

    # ---- 4. sampler against the frozen decoder
    for p in model.brdf.parameters():
        p.requires_grad_(False)
    errors["sampler_cross_entropy"] = train_sampler(model, settings, gen, training_budget * shares[3], history,
                                                    t_start, report, step_caps[2])
    for p in model.brdf.parameters():
        p.requires_grad_(True)
    model.encoder = None
    return BakeResult(model=model.eval(), history=history, errors=errors, seconds=clock() - t_start,
                      pairs=n)


def sampler_batch(model: NeuralMaterialModel, b: int, k: int, gen: torch.Generator, dev):
    """(latent, wi) for b pairs, each repeated k times, and wo from the proposal r = 1/2 uniform + 1/2 current
    mixture (detached), with the target luminance f / r (for -E_p[log q] by importance sampling)."""
    uv = torch.rand(b, 2, generator=gen).to(dev)
    # wi: half cosine-distributed, half uniform in solid angle, so that grazing incidence (silhouettes; where the
    # coat's Fresnel peak is strongest) is not left to 3% of the batch as with cosine alone.
    u_wi = torch.rand(b, 2, generator=gen)
    wi = torch.where((torch.arange(b) % 2 == 0)[:, None], square_to_cosine_hemisphere(u_wi),
                     square_to_uniform_hemisphere(u_wi)).to(dev)
    latent = model.pyramid.lookup(uv).detach().repeat_interleave(k, 0)
    wi = wi.repeat_interleave(k, 0)
    with torch.no_grad():
        lobes = model.sampler.lobes(latent, wi)
        u = torch.rand(b * k, 2, generator=gen).to(dev)
        own, valid = lobes.sample(wi, u, torch.rand(b * k, generator=gen).to(dev))
        uniform = square_to_uniform_hemisphere(u)
        pick = ((torch.arange(b * k, device=dev) % 2 == 0) | ~valid)[:, None]
        wo = torch.where(pick, uniform, own)
        r = 0.5 / (2 * math.pi) * (wo[:, 2] > 0) + 0.5 * lobes.pdf(wi, wo)
        f = model.brdf(latent, wi, wo) @ torch.tensor(LUMINANCE, device=dev)
        w = torch.where(r > 0, f / r.clamp_min(1e-12), torch.zeros_like(f)).reshape(b, k)
        w = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    return latent, wi, wo, w.reshape(-1)


def train_sampler(model, settings: BakeSettings, gen, span: float, history, t_start, report,
                  max_steps: int | None = None) -> float:
    """KL(p || q) up to the entropy of p, p ∝ luminance of the frozen decoder (§5.2). Returns the last loss."""
    dev = next(model.parameters()).device
    clock = bake_clock(settings.device)
    last = [math.nan]

    def loss_at(_):
        latent, wi, wo, w = sampler_batch(model, settings.sampler_batch, settings.sampler_directions, gen, dev)
        q = model.sampler.lobes(latent, wi).pdf(wi, wo)
        return -(w * torch.log(q.clamp_min(1e-8))).sum() / settings.sampler_batch

    def on_step(steps, done_frac, elapsed, loss):
        last[0] = float(loss.detach())
        if steps % 10 == 0 or steps == 1:
            history["sampler"].append((clock() - t_start, last[0]))
            report("sampler", min(1.0, done_frac), last[0], steps / max(elapsed, 1e-9))

    optimize(model.sampler.parameters(), settings.lr, span, max_steps, clock, loss_at, on_step)
    return last[0]
