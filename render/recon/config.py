"""The reconstruction run's configuration: one dataclass, written as RUN/config.yaml and overridable from YAML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass
class ReconConfig:
    data: str = ""
    device: str = "cpu"
    seed: int = 0
    iters: int | None = None            # stop after this many steps ...
    minutes: float | None = 10.0        # ... or this much training time (whichever is given; both: the first)
    threads: int = 0                    # torch threads (0: the cores not busy with other work)
    # Field: hash grid (instant-ngp) + SDF MLP + colour MLP.
    levels: int = 12
    features: int = 2
    log2_table: int = 15
    base_resolution: int = 16
    max_resolution: int = 256
    sdf_hidden: int = 64
    sdf_layers: int = 1
    feature_dim: int = 15
    color_hidden: int = 64
    color_layers: int = 2
    inside_out: str = "auto"            # auto | true | false: SDF initialised as r - |x| (rooms) or |x| - r
    init_radius: float = 0.0            # 0: 0.5 for objects, 0.9 for rooms
    beta_init: float = 0.1
    beta_anneal: float = 0.0            # fraction of the budget over which beta is held >= a floor decaying
                                        # geometrically from beta_init to beta_anneal_end (0: off)
    beta_anneal_end: float = 0.01
    coarse_to_fine: bool = True         # Neuralangelo: hash levels open one by one ...
    c2f_start_levels: int = 4           # ... from this many ...
    c2f_fraction: float = 0.4           # ... until all are open at this fraction of the budget
    # Sampling.
    rays_per_batch: int = 1024
    images_per_batch: int = 4
    coarse_step: float = 2.0 / 128
    max_coarse: int = 256
    fine_samples: int = 24
    uniform_samples: int = 0            # + stratified samples over the whole ray (training), NeuS-style
    grid_resolution: int = 48
    grid_every: int = 32
    eikonal_points: int = 256
    smooth_points: int = 256
    background: float = 0.0             # grey level beyond the scene box when learned_background is off
    learned_background: str = "auto"    # a direction -> RGB net for what rays see beyond the box (sky); auto: on
                                        # for objects seen from outside, off for rooms (it would eat the walls)
    # DebSDF components (each switchable for ablations).
    uncertainty: bool = True            # uncertainty-aware NLL prior losses + exclusion (off: MonoSDF losses)
    uncertainty_sampling: bool = True   # P = (1 - r) U / sum U + r / N (off: uniform pixels)
    bias_aware_density: bool = True
    bias_aware_schedule: str = "auto"   # debsdf | always | auto. debsdf: DebSDF's progressive warm-up (eq. 24),
                                        # from bias_aware_start to bias_aware_full of the budget (their Replica
                                        # config: iterations 120k -> 160k), scaled per sample by its
                                        # uncertainty, view angle from the detached
                                        # normals; always: the full correction on every sample from the first
                                        # step, angle with gradients (our first reading); auto: debsdf for rooms
                                        # (with always the room shrank 2-3 cm by step 1000, 3 runs), always for
                                        # objects (80-step sphere F@2cm 0.97 vs 0.43; object, 1500 steps: 0.60
                                        # vs 0.43-0.48 with detached normals, one run each)
    bias_aware_start: float = 0.6
    bias_aware_full: float = 0.8
    linear_intervals: bool = False      # each interval's opacity from the SDF at both ends (off: VolSDF's
                                        # left-sample density x length)
    adaptive_smoothness: bool = True
    uniform_ratio: float = 0.5          # r (DebSDF: 25-30 % uniform; with sampling_conflict_weight 4 at r 0.3 the
                                        # walls lost: room seed 0, 8800 steps, F@5cm 0.866, at 0.5 0.914)
    uniform_finish: float = 0.0         # the last this fraction of the budget: r ramps linearly to 1 over its first
                                        # half (uniform pixels from then on), so the colour loss ends with uniform
                                        # sampling's expectation once the guided rays have grown the thin parts
                                        # (0: DebSDF's fixed r to the end; room, seed 0, 8800 steps, 0.5: F@2cm
                                        # 0.801 -> 0.884 but thin recall@5cm 0.756 -> 0.560, so off; README)
    uniform_finish_ratio: float = 1.0   # ... the r the ramp ends at (1: uniform pixels)
    sampler_cell: int = 4
    sampler_refresh_every: int = 100
    sampling_rgb_weight: float = 0.0    # adds the rays' colour error to the sampler's per-cell value (Instant-NGP's
                                        # error-map sampling): pixels of geometry not grown yet (thin legs) have low
                                        # uncertainty, since the blurred prior agrees with the wall behind them
    prior_conflict: float = 4.0         # after the depth fits are fixed, leave out of the prior losses (depth,
                                        # normal, prior_sdf, smoothness) the pixels whose aligned depth prior
                                        # is photometrically inconsistent with the other views: inconsistency
                                        # above this many times its image's median (prior_align.
                                        # photometric_conflict); the priors' thin-leg errors agree across views
                                        # and give the learned uncertainty no residual to see. 0: off
    sampling_conflict_weight: float = 4.0  # the guided sampler's cell value gets + this x the cell's flagged
                                        # fraction x its image's mean value: rays go where the prior is wrong.
                                        # Room, 8800 steps, seeds 0 / 1: thin recall@5cm 0.38 / 0.27 -> 0.51 /
                                        # 0.62 (with uniform_ratio 0.5; off, seed 0 with the exclusion: 0.38)
    depth_exclude: float = 0.08         # exclude pixels whose depth uncertainty exceeds this (normalized units)
    normal_exclude: float = 0.5         # ... whose normal uncertainty exceeds this
    prior_normalization: str = "weights"  # the prior losses after warm-up, with weights w = 1/u^p: weights: sum w x /
                                        # sum w over the kept pixels; batch (DebSDF's mean over the batch):
                                        # sum (floor/u)^p x / pixels with a prior, so excluded and uncertain pixels
                                        # lower the loss instead of handing their share to the confident ones
    prior_importance: bool = True       # the prior losses weight each ray by 1 / (N P) of the guided sampler, so
                                        # they keep uniform sampling's expectation (the colour loss and the other
                                        # per-ray terms still follow the guided rays). Off (weighted means over
                                        # the kept guided rays), the room lost its table and chair: objects
                                        # recall@5cm 0.25 vs 0.53 / 0.51 on, seeds 0 / 1, 8800 steps (README)
    rgb_importance: float = 0.0         # the colour loss weights each ray by (1 / (N P))^this under the guided
                                        # sampler (self-normalized over the batch): 0 keeps the guided rays'
                                        # emphasis (thin parts), 1 gives uniform sampling's expectation, in
                                        # between tempers it (room, seed 0, 8800 steps, 0.5: thin recall@5cm
                                        # 0.756 -> 0.480, so off; its F@2cm 0.801 -> 0.875 came from its fits'
                                        # scale, the back wall's extra offset only 0.9 -> 0.7 cm, and uniform
                                        # sampling has one too; README, sessions 12-13)
    uncertainty_fit_weight: float = 0.1 # the heads' own NLL (geometry detached)
    depth_uncertainty_min: float = 0.01 # floors of the uncertainties in the NLL losses
    normal_uncertainty_min: float = 0.1
    # Losses. MonoSDF uses eikonal 0.1, depth 0.1, normal 0.05, smooth 0.005; a budget of minutes has few steps for
    # the photometric term to pin the geometry, so the priors weigh more here (sphere test, 80 steps: normal 0.05
    # -> F@5cm 0.63, 0.2 -> 1.0).
    warmup_fraction: float = 0.3
    warmup_max_steps: int = 600         # ... and at most this many steps (see objective.recon_losses)
    rgb_weight: float = 1.0
    eikonal_weight: float = 0.1
    depth_weight: float = 0.5
    normal_weight: float = 0.2
    smooth_weight: float = 0.005
    depth_loss: str = "mse"             # after warm-up: mse (MonoSDF's, 1/u-weighted) or l1 (DebSDF's Laplace
    depth_l1_weight: float = 0.05       # NLL |D - D*| / u on the geometry, with this weight; room seed 1, steps
                                        # 2550 -> 4050: back wall +4.7 -> +4.2 cm against mse, one run)
    depth_fit_robust_iters: int = 5     # reweighted refits of the per-image depth-prior fit (0: least squares)
    depth_fit_freeze: int = 1000        # from this step on, each image's depth fit is fixed (losses.DepthFitAnchor):
                                        # a scale-invariant depth loss lets textureless walls drift (room, 7800
                                        # steps: F@5cm 0.737 -> 0.845 fixed at 2000; fixed at 1000 with the
                                        # DebSDF bias schedule: seed 0 0.951, seed 1 0.785 against 0.928 / 0.190
                                        # at 2000); 0: the fit follows the geometry (MonoSDF)
    depth_fit_multiview: bool = True    # when the fits are fixed, make them consistent across views first
                                        # (prior_align.py; pinhole cameras). Room, fits fixed at step 1000:
                                        # per-image error of the fits (median over each image vs ground truth)
                                        # mean 1.1 % / max 5.8 % -> 0.3 % / 1.0 %; 7800 steps, seed 0 / 1:
                                        # F@5cm 0.951 -> 0.954 / 0.785 -> 0.808, chamfer 2.2 -> 2.05 / 3.7 -> 3.4 cm
    depth_fit_scale: bool = True        # then rescale all fits by the common factor the colours agree with best
                                        # (prior_align.photometric_scale, a sweep over +-4 %): the fits keep the
                                        # freeze-step geometry's scale, 1.5 % off in some runs, which held the
                                        # room's walls 3-4 cm off to the end (README, session 10); with fixed
                                        # image pairs and surface weights (session 14) the sweep lands within
                                        # 0.16 % of the walls' scale on six runs' fits (offline), -1.0..+0.2 % before
    depth_outlier: float = 0.08         # with a fixed fit: pixels whose depth residual exceeds this (normalized
                                        # units) leave the depth loss, prior_sdf grows what is missing there
                                        # (room, 7800 steps: F@5cm 0.845 -> 0.928); 0: off
    prior_sdf: str = "auto"             # auto | true | false: the aligned depth prior as SDF samples, |sdf| at it and
                                        # sdf > 0 in front; auto: rooms (furniture must grow inside the initial free
                                        # space), not objects (F@2cm 0.53 vs 0.60 on the object, measured)
    prior_sdf_grow: bool = False        # prior_sdf also on pixels far off a fixed fit whose prior is nearer
                                        # (missing geometry): room seed 0, 7800 steps: furniture recall@5cm
                                        # 0.32 -> 0.64 but walls +1.4 cm, F@5cm 0.951 -> 0.865, so off
    prior_sdf_weight: float = 0.5       # rooms: with the fits fixed, their common scale swept and conflicting
                                        # pixels left out, a stronger pin holds the walls where the prior puts
                                        # them (room, 8800 steps, seed 0: 0.05 -> 0.5 thin recall@5cm 0.51 ->
                                        # 0.74, objects 0.56 -> 0.77; 0.2 with a least-squares fit, before the
                                        # fixed fits, lost the room's shelf)
    prior_sdf_weight_fixed: float = -1.0  # prior_sdf's weight once the fits are fixed (< 0: prior_sdf_weight)
    prior_sdf_free_space_fixed: bool = True  # its free-space term once the fits are fixed (off: the surface term
                                        # only; the free-space term carves thin parts the prior misses). Room,
                                        # seed 0, 8800 steps, 1.0 and off: same fits, back wall +2.4 vs +2.2 cm,
                                        # objects recall@5cm 0.777 -> 0.835, thin level; one run, so off (README)
    prior_sdf_points: int = 256
    mask_weight: float = 0.1
    # Optimisation.
    lr_grid: float = 1e-2
    lr_net: float = 2e-3
    lr_final_ratio: float = 0.1
    # Output.
    log_every: int = 20
    ckpt_minutes: float = 2.0
    ckpt_every: int = 0                 # also every this many steps (0: off)
    mesh_resolution: int = 256
    report_views: int = 2
    report_scale: float = 0.5

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(dataclasses.asdict(self), sort_keys=False)

    def updated(self, values: dict, source: str) -> "ReconConfig":
        """A copy with `values` applied; unknown keys or wrong types -> UserError naming `source` and the key."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        out = dataclasses.replace(self)
        for key, value in values.items():
            if key not in fields:
                raise UserError(f"{source}: unknown config key '{key}' (expected one of: {', '.join(fields)})")
            expected = {"iters": int, "minutes": float}.get(key, type(getattr(self, key)))
            if key in ("iters", "minutes") and value is None:
                setattr(out, key, None)
                continue
            if expected is bool and not isinstance(value, bool):
                raise UserError(f"{source}: '{key}' expected true or false, got {value!r}")
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise UserError(f"{source}: '{key}' expected an integer, got {value!r}")
            if expected is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise UserError(f"{source}: '{key}' expected a number, got {value!r}")
                value = float(value)
            if expected is str and isinstance(value, bool) and key in ("inside_out", "learned_background", "prior_sdf"):
                value = "true" if value else "false"  # YAML reads an unquoted true/false as a bool
            if expected is str and not isinstance(value, str):
                raise UserError(f"{source}: '{key}' expected a string, got {value!r}")
            setattr(out, key, value)
        out.validate(source)
        return out

    def validate(self, source: str = "config") -> None:
        if self.iters is None and self.minutes is None:
            raise UserError(f"{source}: give a budget, 'iters' or 'minutes'")
        if self.iters is not None and self.iters < 1:
            raise UserError(f"{source}: 'iters' expected >= 1, got {self.iters}")
        if self.minutes is not None and not self.minutes > 0:
            raise UserError(f"{source}: 'minutes' expected > 0, got {self.minutes}")
        for key in ("inside_out", "learned_background", "prior_sdf"):
            if getattr(self, key) not in ("auto", "true", "false"):
                raise UserError(f"{source}: '{key}' expected auto, true or false, got {getattr(self, key)!r}")
        for key in ("rays_per_batch", "images_per_batch", "fine_samples", "max_coarse", "grid_resolution",
                    "mesh_resolution", "levels", "features", "sampler_cell", "sampler_refresh_every", "grid_every"):
            if getattr(self, key) < 1:
                raise UserError(f"{source}: '{key}' expected >= 1, got {getattr(self, key)}")
        for key in ("sampling_rgb_weight", "sampling_conflict_weight", "prior_conflict"):
            if not getattr(self, key) >= 0.0:
                raise UserError(f"{source}: '{key}' expected >= 0, got {getattr(self, key)}")
        for key in ("uniform_ratio", "uniform_finish", "uniform_finish_ratio", "rgb_importance"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"{source}: '{key}' expected in [0, 1], got {getattr(self, key)}")
        if not 0.0 <= self.c2f_fraction <= 1.0:
            raise UserError(f"{source}: 'c2f_fraction' expected in [0, 1], got {self.c2f_fraction}")
        if self.c2f_start_levels < 1:
            raise UserError(f"{source}: 'c2f_start_levels' expected >= 1, got {self.c2f_start_levels}")
        if not 0.0 <= self.beta_anneal <= 1.0:
            raise UserError(f"{source}: 'beta_anneal' expected in [0, 1], got {self.beta_anneal}")
        if not 0.0 < self.beta_anneal_end <= self.beta_init:
            raise UserError(f"{source}: 'beta_anneal_end' expected in (0, beta_init], got {self.beta_anneal_end}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise UserError(f"{source}: 'warmup_fraction' expected in [0, 1], got {self.warmup_fraction}")
        if self.prior_normalization not in ("weights", "batch"):
            raise UserError(f"{source}: 'prior_normalization' expected weights or batch, got "
                            f"{self.prior_normalization!r}")
        if self.depth_loss not in ("mse", "l1"):
            raise UserError(f"{source}: 'depth_loss' expected mse or l1, got {self.depth_loss!r}")
        if self.bias_aware_schedule not in ("auto", "debsdf", "always"):
            raise UserError(f"{source}: 'bias_aware_schedule' expected auto, debsdf or always, got "
                            f"{self.bias_aware_schedule!r}")
        if not 0.0 <= self.bias_aware_start < self.bias_aware_full <= 1.0:
            raise UserError(f"{source}: expected 0 <= 'bias_aware_start' < 'bias_aware_full' <= 1, got "
                            f"{self.bias_aware_start} and {self.bias_aware_full}")
        if self.depth_fit_freeze < 0:
            raise UserError(f"{source}: 'depth_fit_freeze' expected a step >= 0 (0: off), got {self.depth_fit_freeze}")
        if not self.depth_outlier >= 0.0:
            raise UserError(f"{source}: 'depth_outlier' expected >= 0 (0: off), got {self.depth_outlier}")


# Keys added after runs were written, with the value that gives the behaviour those runs started with: a resumed run
# whose config.yaml lacks one keeps that value instead of switching to the new default halfway.
LEGACY_DEFAULTS = {"prior_importance": False, "prior_conflict": 0.0, "sampling_conflict_weight": 0.0,
                   "depth_fit_scale": False}


def load_config_file(path: Path, base: ReconConfig | None = None, legacy: bool = False) -> ReconConfig:
    """base (default ReconConfig()) updated with the keys of a YAML file; one-line UserError on bad YAML/keys.
    legacy (a run's own config.yaml, resumed): keys it lacks take their LEGACY_DEFAULTS value."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of config keys, got {type(values).__name__}")
    if legacy:
        values = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k not in values}, **values}
    return (base or ReconConfig()).updated(values, str(path))
