"""`radiant bench recon`: the DebSDF ablation at equal time (or steps) on the bundled datasets (one JSON line per run).

Each variant runs in its own process (`python -m render.bench.recon --worker ...`) so that its peak RSS is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
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
    """F@5cm, F@2cm, chamfer (and thin-part / object recall where gt_thin.ply / gt_objects.ply exist) of the mesh
    against the dataset's gt mesh, culled to what the dataset's cameras see (render.recon.evaluate)."""
    from ..recon.evaluate import evaluate_meshes, ground_truth_parts

    if dataset.gt_mesh is None:
        return {"note": "dataset has no gt mesh"}
    r = evaluate_meshes(mesh, dataset.gt_mesh, dataset=dataset, **ground_truth_parts(dataset.gt_mesh))
    out = {"f_score_5cm": r.fscore.get("0.05"), "f_score_2cm": r.fscore.get("0.02"), "chamfer": r.chamfer,
           "accuracy": r.accuracy, "completeness": r.completeness}
    if r.thin_recall:
        out["thin_recall_5cm"], out["thin_recall_2cm"] = r.thin_recall.get("0.05"), r.thin_recall.get("0.02")
    if r.objects_recall:
        out["objects_recall_5cm"], out["objects_recall_2cm"] = (r.objects_recall.get("0.05"),
                                                                r.objects_recall.get("0.02"))
    return out


def worker(data: Path, run: Path, variant: str, budget: dict, config_file: Path | None = None) -> dict:
    """One variant's run; `budget`: {"minutes": M} or {"iters": K}, and "seed" when the bench sets it."""
    from ..recon.run import prepare_config, reconstruct

    t0 = time.perf_counter()
    overrides = {"minutes": budget.get("minutes"), "iters": budget.get("iters"), **VARIANTS[variant]}
    if "seed" in budget:
        overrides["seed"] = budget["seed"]
    config = prepare_config(data, run, overrides, config_file, False, True)
    summary = reconstruct(config, run, force=True, progress=False)
    from ..recon.run import _load_dataset

    metrics = _evaluate(run / "mesh.ply", _load_dataset(data))
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return {"bench": "recon", "dataset": Path(data).name, "variant": variant, "minutes": config.minutes,
            "iters": config.iters, "seed": config.seed, **metrics,
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
              config_file: Path | None = None, iters: int | None = None, seeds: list[int] | None = None,
              jobs: int = 1) -> int:
    """Every variant (x every seed) on every dataset, at equal time (`minutes`) or equal steps (`iters`), each in
    its own process; `jobs` of them at once (a GPU or a many-core machine: they share it, so equal time is still
    equal; on 2 cores keep 1). One JSON line per run, in the order they finish. Returns the number of failed runs."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown)} (expected {', '.join(VARIANTS)})")
    if jobs < 1:
        raise UserError(f"--jobs: expected >= 1, got {jobs}")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds: each seed once, got {','.join(map(str, seeds))}")
    if iters is not None and iters < 1:
        raise UserError(f"--iters: expected >= 1, got {iters}")
    if not datasets:
        datasets = [bundled_dataset(name, Path(work) / "data") for name in BUNDLED]
    datasets = [Path(d) for d in datasets]
    for d in datasets:
        if not d.exists():
            raise UserError(f"{d}: dataset not found (make it with `radiant make-dataset`)")
    if config_file is not None and not Path(config_file).is_file():
        raise UserError(f"--config {config_file}: file not found")
    budget = {"minutes": None, "iters": iters} if iters is not None else {"minutes": minutes, "iters": None}
    queue = []
    for d in datasets:
        for v in variants:
            for seed in (seeds or [None]):
                run = Path(work) / d.name / (v if seed is None else f"{v}_s{seed}")
                b = dict(budget) if seed is None else {**budget, "seed": seed}
                cmd = [sys.executable, "-m", "render.bench.recon", "--worker", str(d), str(run), v, json.dumps(b)]
                cmd += [str(config_file)] if config_file is not None else []
                queue.append(({"bench": "recon", "dataset": d.name, "variant": v, **b}, cmd))
    running: list = []
    failed = 0

    def finish(entry) -> None:
        nonlocal failed
        label, proc, logs = entry
        proc.wait()
        stdout, stderr = (f.seek(0) or f.read().decode(errors="replace") for f in logs)
        for f in logs:
            f.close()
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            failed += 1
            emit({**label, "error": (stderr.strip().splitlines() or ["no output"])[-1]}, out)
        else:
            emit(json.loads(lines[-1]), out)

    try:
        while queue or running:
            while queue and len(running) < jobs:
                label, cmd = queue.pop(0)
                # Output to files, not pipes: a worker that fills a pipe nobody reads yet would block.
                logs = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
                running.append((label, subprocess.Popen(cmd, stdout=logs[0], stderr=logs[1]), logs))
            done = next((e for e in running if e[1].poll() is not None), None)
            if done is None:
                time.sleep(0.2)
                continue
            running.remove(done)
            finish(done)
    finally:  # Ctrl-C or an error here: no worker is left running
        for _, proc, logs in running:
            proc.terminate()
            proc.wait()
            for f in logs:
                f.close()
    return failed


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "--worker":
        cfg = Path(sys.argv[6]) if len(sys.argv) == 7 else None
        print(json.dumps(worker(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5]), cfg)))
    else:
        sys.exit("usage: python -m render.bench.recon --worker DATA RUN VARIANT BUDGET_JSON [CONFIG]")
