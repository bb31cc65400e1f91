"""`radiant sweep`: a grid of reconstruction runs (ablations, hyper-parameters) as Ray tasks with per-run CPU/GPU
resources; each run is a normal run folder (resumable from its checkpoints), evaluated against the dataset's
ground truth; the results are collected into one table (JSON, CSV, HTML with a plot)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import time
from pathlib import Path

from ..errors import UserError

RESULT = "sweep_result.json"  # written last in a run folder: the run is complete


def parse_grid(items: list[str]) -> list[tuple[str, list]]:
    """--grid key=v1,v2 ... -> [(key, [values])]; values are YAML scalars (true, 3, 0.5, text)."""
    import yaml

    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UserError(f"--grid {item}: expected key=v1,v2,...")
        vals = []
        for v in values.split(","):
            if not v.strip():
                raise UserError(f"--grid {item}: empty value in the list")
            try:
                vals.append(yaml.safe_load(v.strip()))
            except yaml.YAMLError:
                vals.append(v.strip())
        if any(k == key for k, _ in grid):
            raise UserError(f"--grid {item}: key '{key}' given twice")
        grid.append((key, vals))
    return grid


def run_name(values: dict) -> str:
    if not values:
        return "base"
    text = ",".join(f"{k}={v}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def expand(grid: list[tuple[str, list]]) -> list[dict]:
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in grid])] or [{}]


def plan_runs(data: Path, out: Path, grid_items: list[str], fixed: dict) -> list[dict]:
    """One entry per grid point: its folder, overrides, and its state (done / resume / new). The overrides are
    checked against the config here, before anything starts."""
    from ..recon.config import ReconConfig

    runs = []
    for values in expand(parse_grid(grid_items)):
        overrides = {**fixed, **values}
        ReconConfig().updated({**overrides, "data": str(data)}, f"--grid {run_name(values)}")
        folder = out / "runs" / run_name(values)
        if (folder / RESULT).is_file():
            state = "done"
        elif (folder / "ckpt" / "latest.pt").is_file():
            state = "resume"
        else:
            state = "new"
        runs.append({"name": run_name(values), "folder": str(folder), "values": values, "overrides": overrides,
                     "state": state})
    return runs


def run_one(data: str, run: dict, threads: int, eval_points: int | None = None) -> dict:
    """Ray task body (also callable in-process): train or resume one run, export its mesh, evaluate it; writes
    RUN/sweep_result.json last. A retried task (worker killed) resumes from the run's last checkpoint."""
    import torch

    from ..recon.run import prepare_config, reconstruct
    from ..core.image import write_text

    torch.set_num_threads(max(1, threads))
    folder = Path(run["folder"])
    resume = (folder / "ckpt" / "latest.pt").is_file()
    overrides = {**run["overrides"], "threads": max(1, threads)}
    config = prepare_config(Path(data), folder, overrides, None, resume=resume, force=not resume)
    t0 = time.perf_counter()
    summary = reconstruct(config, folder, resume=resume, force=not resume, progress=False)
    result = {"name": run["name"], **run["values"], "resumed": resume, "wall_s": round(time.perf_counter() - t0, 1),
              **{k: summary[k] for k in ("steps", "train_seconds", "it_per_s") if k in summary}}
    result.update(evaluate_run(Path(data), folder, eval_points))
    write_text(folder / RESULT, json.dumps(result, indent=1), force=True)
    return result


def evaluate_run(data: Path, folder: Path, num_points: int | None = None) -> dict:
    """Accuracy/completeness/F-scores of RUN/mesh.ply against the dataset's gt.ply (culled to its cameras)."""
    from ..recon.dataset import load_dataset
    from ..recon.evaluate import evaluate_meshes

    gt = data / "gt.ply"
    if not gt.is_file():
        return {}
    r = evaluate_meshes(folder / "mesh.ply", gt, dataset=load_dataset(data), num_points=num_points)
    row = {"accuracy": round(r.accuracy, 5), "completeness": round(r.completeness, 5), "chamfer": round(r.chamfer, 5)}
    for t, f in r.fscore.items():
        row[f"F@{t}"] = round(f, 4)
    return row


def run_sweep(data: Path, out: Path, grid_items: list[str], fixed: dict, cluster: str, cpus_per_run: int = 1,
              gpus_per_run: float = 0, progress: bool = True, eval_points: int | None = None) -> list[dict]:
    """All runs of the grid on the cluster (finished runs are read back, unfinished ones resume); returns the rows
    of the results table, also written to OUT/results.json, results.csv and index.html."""
    from .ray_backend import cancel_on_interrupt, connect, require_ray

    if cpus_per_run < 1:
        raise UserError(f"--cpus-per-run: expected >= 1, got {cpus_per_run}")
    if eval_points is not None and eval_points < 1:
        raise UserError(f"--eval-points: expected >= 1, got {eval_points}")
    if gpus_per_run < 0:
        raise UserError(f"--gpus-per-run: expected >= 0, got {gpus_per_run}")
    data, out = Path(data).resolve(), Path(out).resolve()
    if not data.exists():
        raise UserError(f"{data}: dataset not found")
    runs = plan_runs(data, out, grid_items, fixed)
    rows = {r["name"]: json.loads((Path(r["folder"]) / RESULT).read_text()) for r in runs if r["state"] == "done"}
    todo = [r for r in runs if r["state"] != "done"]
    if todo:
        ray = require_ray()
        with connect(cluster):
            task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=3)(run_one)
            pending = {task.remote(str(data), r, cpus_per_run, eval_points): r for r in todo}
            bar = _progress(progress, len(runs), len(rows))
            waiting = list(pending)
            with cancel_on_interrupt(ray, lambda: pending, bar):
                while waiting:
                    done, waiting = ray.wait(waiting, num_returns=1, timeout=1.0)
                    for ref in done:
                        try:
                            result = ray.get(ref)
                        except ray.exceptions.RayTaskError as e:
                            cause = getattr(e, "cause", None)
                            if isinstance(cause, UserError):
                                raise UserError(f"run {pending[ref]['name']}: {cause}") from None
                            raise
                        rows[result["name"]] = result
                        if bar is not None:
                            bar[0].update(bar[1], advance=1)
    table = [rows[r["name"]] for r in runs]
    write_results(out, table)
    return table


def _progress(enabled: bool, total: int, done: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sweep runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    bar.start()
    return bar, bar.add_task("sweep", total=total, completed=done)


def write_results(out: Path, rows: list[dict]) -> None:
    from ..bench.report import html_table
    from ..core.image import write_text

    out.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    write_text(out / "results.json", json.dumps(rows, indent=1), force=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "results.csv", buf.getvalue(), force=True)
    plot = _plot(out, rows)
    img = f'<img src="{plot}" alt="F-scores per run">' if plot else ""
    write_text(out / "index.html", f"""<!doctype html><meta charset="utf-8"><title>Radiant sweep</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:3px 8px}}
table{{border-collapse:collapse}}</style><h1>Sweep: {len(rows)} runs</h1>{img}
{html_table(rows)}<p>Run folders: runs/NAME (config.yaml, mesh.ply, report.html).</p>""", force=True)


def _plot(out: Path, rows: list[dict]) -> str | None:
    metrics = sorted({k for r in rows for k in r if k.startswith("F@")})
    if not metrics:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows)), 3.5))
    width = 0.8 / len(metrics)
    for j, m in enumerate(metrics):
        ax.bar([i + (j - (len(metrics) - 1) / 2) * width for i in range(len(rows))],
               [float(r.get(m, 0) or 0) for r in rows], width, label=m)
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fscores.png", dpi=110)
    plt.close(fig)
    return "fscores.png"
