"""Trainer.losses kept its numbers through the move into render/recon/objective.py (shared with the nerfstudio
plugin): 3 steps with a fixed seed against the metrics the pre-refactor trainer logged (data/trainer_golden.json).

A deliberate change of the renderer, field or losses changes these numbers: regenerate the file with
RADIANT_REGEN_GOLDEN=1 pytest tests/recon/test_trainer_golden.py and say why in the commit."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

from render.recon.config import ReconConfig
from render.recon.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_dataset  # noqa: E402

GOLDEN = Path(__file__).parent / "data" / "trainer_golden.json"
# Sphere: masks (mask BCE); room: valid depth alignment; the third: MonoSDF losses, uniform pixels. Warm-up 0.5 of
# 3 steps: steps 0-1 warm, step 2 uncertainty-weighted with the exclusions loose enough to keep pixels.
CASES = {"sphere": ("sphere", {}), "room": ("room", {}),
         "room_monosdf": ("room", {"uncertainty": False, "uncertainty_sampling": False})}


def _run(kind: str, overrides: dict, tmp_path: Path) -> list[dict]:
    ds = make_dataset(kind, views=6, width=24, height=18)
    cfg = ReconConfig(iters=3, minutes=None, rays_per_batch=256, fine_samples=8, levels=4, log2_table=10,
                      max_resolution=32, grid_resolution=32, grid_every=2, eikonal_points=64, smooth_points=64,
                      sampler_refresh_every=1, seed=3, threads=1, warmup_fraction=0.5, normal_exclude=5.0,
                      depth_exclude=5.0, **overrides)
    trainer = Trainer(cfg, ds, tmp_path / kind, progress=False)
    rows = [trainer.train_step() for _ in range(3)]
    with torch.no_grad():
        probs = trainer.sampler.probs.double()
        rows.append({"param_sum": float(sum(p.double().sum() for p in trainer.model.parameters())),
                     "probs_moment": float((probs.flatten() * torch.arange(probs.numel())).sum())})
    return rows


@pytest.mark.parametrize("case", sorted(CASES))
def test_trainer_losses_match_pre_refactor_numbers(case, tmp_path):
    kind, overrides = CASES[case]
    rows = _run(kind, overrides, tmp_path)
    if os.environ.get("RADIANT_REGEN_GOLDEN"):
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        golden[case] = rows
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        pytest.skip("golden numbers regenerated")
    expected = json.loads(GOLDEN.read_text())[case]
    assert [sorted(r) for r in rows] == [sorted(r) for r in expected]  # the same loss terms, step by step
    # Bit-for-bit on the machine that made the file (checked with rel=0 there); a little slack for other CPUs'
    # vector paths in CI.
    for step, (got, want) in enumerate(zip(rows, expected)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-9), (case, step, key)
