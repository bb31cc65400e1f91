"""Mesh of a radiant-sdf nerfstudio run, by our exporter (render/recon/mesh.py: marching cubes near the surface,
culled to the training cameras' view, written in the dataset files' world units like `radiant reconstruct`).

    python -m render.nerfstudio_plugin.export --load-config outputs/NAME/radiant-sdf/TIME/config.yml --out mesh.ply
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from ..errors import UserError


def load_pipeline(config: Path):
    """nerfstudio's eval_setup (config.yml + its latest checkpoint) -> (trainer config, pipeline)."""
    from nerfstudio.utils.eval_utils import eval_setup

    if not config.is_file():
        raise UserError(f"--load-config {config}: not found; expected a run's config.yml")
    try:
        trainer_config, pipeline, _, step = eval_setup(config, test_mode="test")
    except (SystemExit, FileNotFoundError, RuntimeError, KeyError) as e:
        raise UserError(f"--load-config {config}: cannot load the run ({type(e).__name__}: {e})") from None
    if not hasattr(pipeline.model, "field") or not hasattr(pipeline.model, "ns_to_world"):
        raise UserError(f"--load-config {config}: method {trainer_config.method_name!r} is not radiant-sdf")
    return trainer_config, pipeline


def mesh_dataset(pipeline) -> SimpleNamespace:
    """What recon.mesh.export_mesh reads of a dataset: training cameras (normalized, OpenCV), K, size, and the
    normalized -> files' world similarity."""
    model, dm = pipeline.model, pipeline.datamanager
    cams = dm.train_dataset.cameras
    k = torch.zeros(len(cams), 3, 3)
    k[:, 0, 0], k[:, 1, 1] = cams.fx[:, 0], cams.fy[:, 0]
    k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = cams.cx[:, 0], cams.cy[:, 0], 1.0
    return SimpleNamespace(cam_to_world=dm.train_dataset.metadata["radiant_c2w"].cpu(), intrinsics=k,
                           height=int(cams.height[0, 0]), width=int(cams.width[0, 0]),
                           normalization=(model.ns_to_world @ model.normalization).cpu())


def export(config: Path, out: Path, resolution: int | None = None, force: bool = False) -> dict:
    from ..recon.mesh import export_mesh

    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to overwrite")
    _, pipeline = load_pipeline(Path(config))
    model = pipeline.model
    model.eval()
    res = resolution or model.recon.mesh_resolution
    with torch.no_grad():
        return export_mesh(model.field.cpu(), mesh_dataset(pipeline), out, res)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m render.nerfstudio_plugin.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-config", type=Path, required=True, help="the run's config.yml (ns-train output)")
    parser.add_argument("--out", type=Path, required=True, help="mesh .ply (world units of the dataset files)")
    parser.add_argument("--resolution", type=int, default=None, help="marching-cubes lattice (default: the run's)")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    try:
        if args.resolution is not None and args.resolution < 8:
            raise UserError(f"--resolution: expected >= 8, got {args.resolution}")
        summary = export(args.load_config, args.out, args.resolution, args.force)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"{args.out}: {summary['vertices']} vertices, {summary['faces']} faces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
