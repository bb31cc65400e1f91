"""`radiant bench recon`: the DebSDF ablation at equal time on the bundled datasets (one JSON line per run).

Each variant runs in its own process (`python -m render.bench.recon --worker ...`) so that its peak RSS is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from ..errors import UserError
from . import emit

VARIANTS = {
    "full": {},
    "uniform": {"uncertainty_sampling": False},
    "no_uncertainty": {"uncertainty": False, "uncertainty_sampling": False, "adaptive_smoothness": False},
}
# The bundled scenes and how their datasets are made (60 views at 320x240, the DESIGN target).
BUNDLED = {"room": ("scenes/room/room.xml", "inside"), "object": ("scenes/object/object.xml", "orbit")}


def _evaluate(mesh: Path, dataset) -> dict:
    """F@5cm, F@2cm, chamfer (and thin-part recall when gt_thin.ply exists) of the mesh against the dataset's
    gt mesh, culled to what the dataset's cameras see (render.recon.evaluate)."""
    from ..recon.evaluate import evaluate_meshes

    if dataset.gt_mesh is None:
        return {"note": "dataset has no gt mesh"}
    thin = Path(dataset.gt_mesh).with_name("gt_thin.ply")
    r = evaluate_meshes(mesh, dataset.gt_mesh, dataset=dataset, thin=thin if thin.exists() else None)
    out = {"f_score_5cm": r.fscore.get("0.05"), "f_score_2cm": r.fscore.get("0.02"), "chamfer": r.chamfer,
           "accuracy": r.accuracy, "completeness": r.completeness}
    if r.thin_recall:
        out["thin_recall_5cm"], out["thin_recall_2cm"] = r.thin_recall.get("0.05"), r.thin_recall.get("0.02")
    return out


def worker(data: Path, run: Path, variant: str, minutes: float, config_file: Path | None = None) -> dict:
    from ..recon.run import prepare_config, reconstruct

    t0 = time.perf_counter()
    config = prepare_config(data, run, {"minutes": minutes, "iters": None, **VARIANTS[variant]}, config_file, False,
                            True)
    summary = reconstruct(config, run, force=True, progress=False)
    from ..recon.run import _load_dataset

    metrics = _evaluate(run / "mesh.ply", _load_dataset(data))
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return {"bench": "recon", "dataset": Path(data).name, "variant": variant, "minutes": minutes, **metrics,
            "wall_s": round(time.perf_counter() - t0, 1), "train_s": summary["train_seconds"],
            "steps": summary["steps"], "it_per_s": summary["it_per_s"], "peak_rss_gb": round(rss_gb, 3)}


def bundled_dataset(name: str, folder: Path) -> Path:
    """The bundled scene's dataset under `folder`, rendered by make-dataset the first time."""
    from ..recon.make_dataset import Recipe, make_dataset

    out = folder / name
    if not out.exists():
        scene, mode = BUNDLED[name]
        print(f"making the {name} dataset (once) into {out}", file=sys.stderr, flush=True)
        make_dataset(Path(scene), out, Recipe(scene=scene, mode=mode))
    return out


def run_bench(datasets, minutes: float, variants: list[str], work: Path, out: Path | None,
              config_file: Path | None = None) -> None:
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown)} (expected {', '.join(VARIANTS)})")
    if not datasets:
        datasets = [bundled_dataset(name, Path(work) / "data") for name in BUNDLED]
    datasets = [Path(d) for d in datasets]
    for d in datasets:
        if not d.exists():
            raise UserError(f"{d}: dataset not found (make it with `radiant make-dataset`)")
    if config_file is not None and not Path(config_file).is_file():
        raise UserError(f"--config {config_file}: file not found")
    for d in datasets:
        for v in variants:
            run = Path(work) / d.name / v
            cmd = [sys.executable, "-m", "render.bench.recon", "--worker", str(d), str(run), v, str(minutes)]
            cmd += [str(config_file)] if config_file is not None else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                emit({"bench": "recon", "dataset": d.name, "variant": v, "error": tail}, out)
                continue
            emit(json.loads(lines[-1]), out)


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--worker":
        cfg = Path(sys.argv[6]) if len(sys.argv) == 7 else None
        print(json.dumps(worker(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], float(sys.argv[5]), cfg)))
    else:
        sys.exit("usage: python -m render.bench.recon --worker DATA RUN VARIANT MINUTES [CONFIG]")
