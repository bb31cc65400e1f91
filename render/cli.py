"""`radiant` command line: parse, call the library, report. User errors print one line and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import UserError

app = typer.Typer(
    name="radiant",
    help="Radiant: physically based path tracing, neural materials and SDF reconstruction on shared ray kernels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Speed and quality benchmarks against the anchors (one JSON line per result).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _version(value: bool):
    if value:
        typer.echo(f"radiant {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    pass


@app.command("render")
def render_cmd(
    scene: Path = typer.Argument(..., help="Mitsuba 3 XML scene file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output image: .exr (linear float, + AOVs) or .png (sRGB 8-bit)."),
    spp: Optional[int] = typer.Option(None, help="Samples per pixel (default: the scene's sampler)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same image."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    max_depth: Optional[int] = typer.Option(None, "--max-depth", help="Override the integrator's max_depth (-1: unbounded)."),
    aov: str = typer.Option("", help="Comma-separated AOVs written as extra EXR channels: albedo,normal,depth,position."),
    width: Optional[int] = typer.Option(None, help="Override the film width."),
    height: Optional[int] = typer.Option(None, help="Override the film height."),
    define: list[str] = typer.Option([], "-D", help="Set a scene parameter, name=value (as mi.load_file(..., name=value))."),
    force: bool = typer.Option(False, help="Overwrite an existing output file."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="Let the scene reference files outside its folder."),
    integrator: str = typer.Option("auto", help="fused (C++/CUDA kernel), torch (reference) or auto (fused when it "
                                               "supports the scene)."),
    frames: Optional[str] = typer.Option(None, help="Render several frames over a scene parameter: NAME=V1,V2,... or "
                                                   "NAME=START:STOP:COUNT; OUT gets _NNNN (or replaces '{frame}')."),
    cluster: Optional[str] = typer.Option(None, help="Distribute tiles x sample batches on Ray: local:K (start K "
                                                    "workers here), auto (join RAY_ADDRESS) or ray://HOST:PORT. "
                                                    "Same seed, same image. Needs the [cluster] extra."),
    tile: Optional[int] = typer.Option(None, help="--cluster: tile size in pixels (default: ~8 units per worker)."),
    batch_spp: Optional[int] = typer.Option(None, "--batch-spp", help="--cluster: samples per work unit."),
):
    """Path trace a Mitsuba-3-XML scene (NEE + MIS) to EXR or PNG."""
    from .core.image import write_image
    from .render import check_output, parse_defines, parse_frames, render_scene

    aovs = tuple(a.strip() for a in aov.split(",") if a.strip())
    for name, v in (("--width", width), ("--height", height)):
        if v is not None and v <= 0:
            raise UserError(f"{name}: expected a positive size, got {v}")
    params = parse_defines(define)
    frame_spec = parse_frames(frames)
    frame_params = [params] if frame_spec is None else [{**params, frame_spec[0]: v} for v in frame_spec[1]]
    if frame_spec is None:
        outs = [out]
    else:
        from .cluster.ray_backend import frame_paths

        outs = frame_paths(out, len(frame_params))
    for o in outs:
        check_output(o, force)
    if cluster is not None:
        _render_on_cluster(scene, outs, frame_params, cluster, spp=spp, seed=seed, device=device, max_depth=max_depth,
                           aovs=aovs, width=width, height=height, allow_outside=allow_outside, integrator=integrator,
                           tile=tile, batch_spp=batch_spp, force=force)
        return
    for o, p in zip(outs, frame_params):
        result = render_scene(scene, spp=spp, seed=seed, device=device, max_depth=max_depth, aovs=aovs, width=width,
                              height=height, params=p, allow_outside=allow_outside, progress=True,
                              integrator=integrator)
        write_image(o, result.rgb, result.aovs, force=force)
        rate = result.samples / max(result.seconds, 1e-9) / 1e6
        typer.echo(f"wrote {o} ({result.rgb.shape[1]}x{result.rgb.shape[0]}, "
                   f"{result.samples / (result.rgb.shape[0] * result.rgb.shape[1]):.0f} spp, "
                   f"{result.seconds:.1f} s, {rate:.2f} Msamples/s)")


def _render_on_cluster(scene_path, outs, frame_params, cluster, spp, seed, device, max_depth, aovs, width, height,
                       allow_outside, integrator, tile, batch_spp, force):
    from .cluster.ray_backend import render_frames_on_cluster, require_ray
    from .cluster.tiles import RenderJob
    from .core.image import write_image
    from .scene import load_scene

    require_ray()
    if aovs:
        raise UserError("--aov: AOVs are not rendered on a cluster yet (they need the torch integrator); drop "
                        "--cluster or --aov")
    if integrator == "torch":
        raise UserError("--integrator torch: the cluster renders with the fused kernel; use auto or fused")
    scenes = [load_scene(scene_path, params=p, allow_outside=allow_outside) for p in frame_params]
    first = scenes[0]
    job = RenderJob(spp=spp if spp is not None else first.sampler.sample_count, seed=seed, max_depth=max_depth,
                    width=width, height=height, device=device)
    if job.spp <= 0:
        raise UserError(f"--spp: expected a positive sample count, got {job.spp}")

    def write(i, img):
        write_image(outs[i], img, force=force)

    _, stats = render_frames_on_cluster(scenes, job, cluster, tile=tile, batch_spp=batch_spp, progress=True,
                                        on_frame=write)
    typer.echo(f"wrote {', '.join(str(o) for o in outs)} ({stats.units} units on {stats.workers} workers, "
               f"{stats.seconds:.1f} s, {stats.samples / max(stats.seconds, 1e-9) / 1e6:.2f} Msamples/s)")


@app.command("sweep")
def sweep_cmd(
    data: Path = typer.Argument(..., help="Dataset folder (MonoSDF cameras.npz or nerfstudio transforms.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Sweep folder: runs/NAME/ per grid point, results.json/csv, "
                                                     "index.html."),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2,... over config keys (see RUN/config.yaml); "
                                                      "repeat for a product grid."),
    set_: list[str] = typer.Option([], "--set", help="key=value fixed for every run."),
    iters: Optional[int] = typer.Option(None, help="Training budget of each run in steps."),
    minutes: Optional[float] = typer.Option(None, help="Training budget of each run in minutes."),
    cluster: str = typer.Option("local", help="local (this machine's cores), local:K, auto or ray://HOST:PORT."),
    cpus_per_run: int = typer.Option(1, "--cpus-per-run", help="CPU cores reserved (and torch threads) per run."),
    gpus_per_run: float = typer.Option(0, "--gpus-per-run", help="GPUs reserved per run (fractions allowed)."),
    eval_points: Optional[int] = typer.Option(None, "--eval-points", help="Points sampled per mesh for the metrics "
                                                                         "(default: spacing of half the 2 cm threshold)."),
):
    """Run a grid of reconstructions as Ray tasks, evaluate each, collect one table; re-running resumes."""
    import os

    import yaml

    from .cluster.sweep import run_sweep

    fixed = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item}: expected key=value")
        fixed[key] = yaml.safe_load(value) if value else value
    if iters is not None:
        fixed.update(iters=iters, minutes=None)
    elif minutes is not None:
        fixed.update(minutes=minutes, iters=None)
    spec = f"local:{os.cpu_count() or 1}" if cluster == "local" else cluster
    rows = run_sweep(data, out, grid, fixed, spec, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run,
                     eval_points=eval_points)
    from rich.console import Console
    from rich.table import Table

    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    table = Table(title=f"sweep: {len(rows)} runs")
    for k in keys:
        table.add_column(k)
    for r in rows:
        table.add_row(*[str(r.get(k, "")) for k in keys])
    Console().print(table)
    typer.echo(f"wrote {out / 'results.json'}, {out / 'index.html'}")


@app.command("regress")
def regress_cmd(
    scenes: str = typer.Option("*", help="Glob over the regression scene names (tests/regression/scenes/*.xml)."),
    spp: int = typer.Option(64, help="Samples per pixel of each of the two renders per scene."),
    report: Path = typer.Option(Path("out/regress/index.html"), help="HTML report (images next to it)."),
    update_refs: bool = typer.Option(False, "--update-refs", help="Re-render the references with Mitsuba 3 first."),
):
    """Render-quality regression against Mitsuba 3 references: FLIP, relMSE, mean; HTML report; exit 1 on failure."""
    from .regress import run_regression, update_refs as do_update

    if update_refs:
        changed = do_update(scenes)
        typer.echo(f"references changed: {', '.join(changed) if changed else 'none'}")
    results = run_regression(scenes, spp=spp, report=report, progress=True)
    for r in results:
        status = "pass" if r.passed else "FAIL"
        typer.echo(f"{status}  {r.name:32s} FLIP {r.flip:.4f} (noise {r.noise_flip:.4f})  relMSE {r.relmse:.3g} "
                   f"(noise {r.noise_relmse:.3g})  mean {r.mean_ratio}" + ("" if r.passed else f"  {'; '.join(r.reasons)}"))
    failed = sum(not r.passed for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed; report: {report}")
    if failed:
        raise typer.Exit(1)


@app.command("bake-material")
def bake_material_cmd(
    material: Path = typer.Argument(..., help="XML with one layered (torch-evaluated) material: a scene or a <bsdf>."),
    out: Path = typer.Option(..., "--out", "-o", help="Output NAME.radmat (the report goes to NAME.html)."),
    minutes: float = typer.Option(3.0, help="Training time budget (targets, decoder, fine-tune, sampler)."),
    latent_channels: int = typer.Option(8, "--latent-channels", help="Latent channels per texel (paper: 8)."),
    decoder: str = typer.Option("2x32", help="Decoder hidden layers x width: 2x32, 3x32, 2x64 or 3x64."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    material_id: Optional[str] = typer.Option(None, "--material", help="Id of the material when the XML has several."),
    preview_spp: int = typer.Option(16, "--preview-spp", help="Samples per pixel of the report's preview renders "
                                                             "(0: none)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    resume: bool = typer.Option(False, help="Continue from NAME.radmat.ckpt (saved after each training phase)."),
    force: bool = typer.Option(False, help="Overwrite existing NAME.radmat / NAME.html."),
    loss: str = typer.Option("relative_l2", help="Training loss: relative_l2 (unbiased under noisy targets) or "
                                                 "log_l1 (the paper's; needs averaged targets)."),
    target_walks: Optional[int] = typer.Option(None, "--target-walks",
                                               help="Random walks averaged per training target (default: 1 with "
                                                    "relative_l2, 64 with log_l1)."),
    phase_shares: Optional[str] = typer.Option(None, "--phase-shares",
                                               help="Shares of --minutes for targets,decoder,fine-tune,sampler "
                                                    "(default 0.4,0.35,0.1,0.15)."),
    finetune_lr: Optional[float] = typer.Option(None, "--finetune-lr",
                                                help="Fine-tune learning rate as a factor of the decoder's "
                                                     "(default 0.2)."),
):
    """Bake a layered material into a neural material (latent pyramid + decoders), with an HTML report."""
    from .neural.bake import run_bake

    if threads is not None:
        if threads <= 0:
            raise UserError(f"--threads: expected a positive count, got {threads}")
        import torch

        torch.set_num_threads(threads)
    s = run_bake(material, out, minutes=minutes, latent_channels=latent_channels, device=device, force=force,
                 material_id=material_id, decoder=decoder, preview_spp=preview_spp, resume=resume,
                 loss=loss, target_walks=target_walks, phase_shares=phase_shares, finetune_lr=finetune_lr)
    typer.echo(f"wrote {s['out']} ({s['seconds']:.0f} s, {s['pairs']} training pairs, held-out log-L1 "
               f"{s['validation_log_l1']:.4f})" + (f"; report {s['report']}" if "report" in s else ""))


@app.command("view")
def view_cmd(
    path: Path = typer.Argument(..., help="Mitsuba 3 XML scene file, a reconstruction run folder (watched live: "
                                          "losses, SDF, cameras, maps, mesh export) or a dataset folder (start a "
                                          "reconstruction)."),
    screenshot: Optional[Path] = typer.Option(None, "--screenshot", help="Render the window offscreen to this PNG "
                                                                         "and exit (docs, tests)."),
    spp: Optional[int] = typer.Option(None, help="Stop accumulating at this spp (default 65536; with --screenshot: "
                                                 "the scene's sampler count)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    width: Optional[int] = typer.Option(None, help="Override the film width."),
    height: Optional[int] = typer.Option(None, help="Override the film height."),
    define: list[str] = typer.Option([], "-D", help="Set a scene parameter, name=value."),
    force: bool = typer.Option(False, help="Overwrite an existing --screenshot file."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="Let the scene reference files outside its folder."),
):
    """Open a scene in the desktop viewer (progressive path tracing, orbit/pan/zoom, AOVs, exposure, save), or a
    reconstruction run / dataset in its reconstruction tab."""
    from .progressive import check_device
    from .render import parse_defines

    params = parse_defines(define)
    for name, v in (("--spp", spp), ("--width", width), ("--height", height)):
        if v is not None and v <= 0:
            raise UserError(f"{name}: expected a positive value, got {v}")
    check_device(device)
    if screenshot is not None:
        if screenshot.suffix.lower() != ".png":
            raise UserError(f"--screenshot {screenshot}: expected a .png file")
        if screenshot.exists() and not force:
            raise UserError(f"--screenshot {screenshot}: exists; pass --force to overwrite")
    try:
        import PySide6  # noqa: F401
    except ImportError:
        raise UserError("radiant view needs the viewer extra: pip install radiant[viewer]") from None
    from viewer.app import run_viewer

    run_viewer(path, device=device, width=width, height=height, params=params, allow_outside=allow_outside,
               spp=spp, screenshot=screenshot, force=force)
    if screenshot is not None:
        typer.echo(f"wrote {screenshot}")


# --- reconstruction data: make-dataset, evaluate (render/recon/make_dataset.py, evaluate.py) ---------------------

@app.command("make-dataset")
def make_dataset_cmd(
    scene: Path = typer.Argument(..., help="Mitsuba 3 XML scene (e.g. scenes/room/room.xml)."),
    views: int = typer.Option(60, help="Number of views."),
    out: Path = typer.Option(..., "--out", "-o", help="Output dataset folder (both formats, gt.ply, recipe.json)."),
    orbit: bool = typer.Option(False, "--orbit", help="Cameras around the scene's objects, looking at their centre."),
    inside: bool = typer.Option(False, "--inside", help="Cameras inside a room looking across it (default)."),
    priors: str = typer.Option("noisy", help="noisy (simulated monocular depth/normals), gt (exact) or none."),
    width: int = typer.Option(320, help="Image width."),
    height: int = typer.Option(240, help="Image height."),
    spp: int = typer.Option(12, help="Path-tracing samples per pixel."),
    fov: float = typer.Option(75.0, help="Horizontal field of view in degrees."),
    seed: int = typer.Option(0, help="Seed of the cameras, the renders and the prior noise."),
    force: bool = typer.Option(False, help="Replace an existing output folder."),
):
    """Render a reconstruction dataset with our path tracer: MonoSDF cameras.npz + nerfstudio transforms.json over
    the same NNNNNN_rgb.png / _depth.npy / _normal.npy files, gt.ply (world units) and recipe.json.

    Default recipe (DESIGN's target): `radiant make-dataset scenes/room/room.xml --out data/room` = 60 views at
    320x240, 12 spp, from inside the room, with noisy monocular priors (unknown per-image depth scale and shift,
    blur, noise growing on edges and thin parts). Objects: `radiant make-dataset scenes/object/object.xml --orbit
    --out data/object`.
    """
    from .recon.make_dataset import Recipe, make_dataset

    if orbit and inside:
        raise UserError("--orbit and --inside: expected at most one camera mode")
    recipe = Recipe(scene=str(scene), views=views, mode="orbit" if orbit else "inside", priors=priors, width=width,
                    height=height, spp=spp, seed=seed, fov=fov)
    summary = make_dataset(scene, out, recipe, force=force, progress=True)
    typer.echo(f"wrote {out} ({views} views {width}x{height}, {spp} spp, {recipe.mode}, priors {priors}, "
               f"{summary['seconds']:.1f} s)")


@app.command("inspect-dataset")
def inspect_dataset_cmd(data: Path = typer.Argument(..., help="Dataset folder, cameras.npz or transforms.json.")):
    """Read a reconstruction dataset and summarize it (format, views, size, priors, normalization): a broken
    dataset fails here with one line naming the file and frame, before any training."""
    from .recon.dataset import load_dataset

    ds = load_dataset(data)
    priors = [n for n, v in (("depth", ds.depths), ("normal", ds.normals), ("mask", ds.masks)) if v is not None]
    radius = ds.cam_to_world[:, :3, 3].norm(dim=-1)
    typer.echo(f"{ds.source}: {ds.num_images} views {ds.width}x{ds.height}, {ds.camera_model}, priors: "
               f"{', '.join(priors) or 'none'}{f' ({ds.depth_kind} depth)' if ds.depths is not None else ''}; "
               f"normalization scale {ds.scale:.4g} world units, centre {[round(float(x), 4) for x in ds.normalization[:3, 3]]}; "
               f"cameras at radius {float(radius.min()):.3f}..{float(radius.max()):.3f}; "
               f"gt mesh: {ds.gt_mesh or 'none'}")


@app.command("evaluate")
def evaluate_cmd(
    mesh: Path = typer.Argument(..., help="Reconstructed mesh (world units), e.g. run/mesh.ply."),
    gt: Path = typer.Argument(..., help="Ground-truth mesh in the same units, e.g. data/room/gt.ply."),
    data: Optional[Path] = typer.Option(None, help="Dataset folder: cull both meshes to what its cameras see."),
    thin: Optional[Path] = typer.Option(None, help="The GT's thin structures for thin-part recall (default: "
                                                   "gt_thin.ply next to GT, as make-dataset writes it)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    threshold: list[float] = typer.Option([0.05, 0.02], help="F-score distance thresholds in the meshes' units "
                                                              "(metres for the bundled scenes: 5 cm, 2 cm)."),
    points: Optional[int] = typer.Option(None, help="Points sampled on each surface (default: one per "
                                                    "(threshold/2)^2 of area, at most 2M)."),
    seed: int = typer.Option(0, help="Seed of the surface sampling."),
    force: bool = typer.Option(False, help="Overwrite an existing --json file."),
):
    """Accuracy, completeness, chamfer, precision, recall and F-score of MESH against GT (a table and JSON), plus
    recall on the GT's thin structures and objects when gt_thin.ply / gt_objects.ply are beside gt.ply."""
    import json

    from .recon.evaluate import evaluate_meshes, ground_truth_parts, load_mesh, print_table

    if json_out is not None and json_out.exists() and not force:
        raise UserError(f"--json {json_out}: exists; pass --force to overwrite")
    pred_mesh, gt_mesh = load_mesh(mesh, "mesh"), load_mesh(gt, "ground truth")
    parts = ground_truth_parts(gt)
    thin_mesh = load_mesh(thin or parts["thin"], "thin ground truth") if thin or parts["thin"] else None
    objects_mesh = load_mesh(parts["objects"], "objects ground truth") if parts["objects"] else None
    dataset = None
    if data is not None:
        from .recon.dataset import load_dataset

        dataset = load_dataset(data)
    result = evaluate_meshes(pred_mesh, gt_mesh, dataset=dataset, thresholds=threshold, num_points=points, seed=seed,
                             thin=thin_mesh, objects=objects_mesh)
    print_table(result, title=f"{mesh} vs {gt}")
    line = json.dumps({"mesh": str(mesh), "gt": str(gt), "data": str(data) if data else None, **result.to_json()})
    if json_out is not None:
        from .core.image import write_text

        write_text(json_out, line + "\n", force=force)
    typer.echo(line)


@bench_app.command("rays")
def bench_rays(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    quick: bool = typer.Option(False, help="Smaller meshes and ray counts (a smoke run, not the reported numbers)."),
    rays: int = typer.Option(1_000_000, help="Rays per case."),
    device: str = typer.Option("cpu", help="cpu or cuda (the anchor always runs on the CPU)."),
):
    """BVH build and closest-hit throughput vs Open3D/Embree on the same rays, same run."""
    from .bench.rays import run_rays_bench

    run_rays_bench(out=out, quick=quick, num_rays=rays, device=device)


@bench_app.command("layered")
def bench_layered(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    quick: bool = typer.Option(False, help="Small batches (a smoke run, not the reported numbers)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    batch: int = typer.Option(0, help="Evaluations per timing (0: 262144 at 1 walk, 65536 at 64 walks)."),
):
    """Eval throughput of the layered reference materials (scenes/materials) at 1 and 64 walks, beside an analytic
    BSDF kernel on the same batch."""
    from .bench.layered import run_layered_bench

    run_layered_bench(out=out, quick=quick, device=device, batch=batch)


@bench_app.command("convergence")
def bench_convergence(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    scene: str = typer.Option("cbox", help="A scene with a Mitsuba reference in tests/render/refs."),
    max_spp: int = typer.Option(64, "--max-spp", help="Largest spp (doubling from 1)."),
):
    """relMSE vs a high-spp Mitsuba reference as spp doubles, ours and Mitsuba's (slope -1 expected)."""
    from .bench.convergence import run_convergence_bench

    run_convergence_bench(out=out, scene=scene, max_spp=max_spp)


@bench_app.command("cluster")
def bench_cluster(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    quick: bool = typer.Option(False, help="128x128 at 32 spp (a smoke run, not the reported numbers)."),
    size: Optional[int] = typer.Option(None, help="Image width = height (default 512)."),
    spp: Optional[int] = typer.Option(None, help="Samples per pixel (default 256)."),
):
    """Ray local cluster with 1 and 2 workers: throughput, scaling, per-unit overhead, time to first result."""
    from .bench.cluster import run_cluster_bench

    run_cluster_bench(out=out, quick=quick, size=size, spp=spp)


@bench_app.command("report")
def bench_report(folder: Path = typer.Argument(Path("out/bench"), help="Folder with the benches' .jsonl files.")):
    """Tables and plots (HTML) of every bench's JSON lines in FOLDER."""
    from .bench.report import write_bench_report

    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of bench results; run `make bench` first")
    typer.echo(f"wrote {write_bench_report(folder)}")


@bench_app.command("viewer")
def bench_viewer(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    scene: list[str] = typer.Option([], "--scene", help="Only these bundled scenes (cbox, spheres, lights)."),
    repeats: int = typer.Option(5, help="Timed passes per case (best is reported)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
):
    """Cost of one viewer step: 1-spp colour pass, on-demand AOV pass, preview; full torch AOV pass as anchor."""
    from .bench.viewer import SCENES, run_viewer_bench
    from .progressive import check_device

    check_device(device)
    for s in scene:
        if s not in SCENES:
            raise UserError(f"--scene {s}: expected one of {', '.join(SCENES)}")
    run_viewer_bench(out=out, scenes=scene or None, repeats=repeats, device=device)


@bench_app.command("render")
def bench_render(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    quick: bool = typer.Option(False, help="Small images and few samples (a smoke run, not the reported numbers)."),
    spp: Optional[int] = typer.Option(None, help="Samples per pixel of the timed renders (default 64; quick 16)."),
    torch_spp: Optional[int] = typer.Option(None, "--torch-spp", help="Samples per pixel of the torch reference "
                                                                     "integrator (slow; default 8; quick 4)."),
    ref_spp: Optional[int] = typer.Option(None, "--ref-spp", help="Samples per pixel of the relMSE reference "
                                                                 "(default 1024; quick 128)."),
    repeats: int = typer.Option(2, help="Timed repeats per renderer, interleaved (best and median are reported)."),
    mitsuba_variant: str = typer.Option("auto", "--mitsuba-variant",
                                        help="auto (llvm_ad_rgb, else scalar_rgb) or a Mitsuba variant name."),
    scene: list[str] = typer.Option([], "--scene", help="Only these bundled scenes (cbox, spheres, lights)."),
    threads: Optional[int] = typer.Option(None, help="Threads of both renderers (torch's and drjit's; default: "
                                                     "theirs)."),
    device: str = typer.Option("cpu", help="cpu, or cuda: also time the CUDA build of the fused kernel."),
):
    """Path-tracing Msamples/s and relMSE: fused kernel, torch reference and Mitsuba 3, same scenes, same run."""
    from .bench.render import run_render_bench

    run_render_bench(out=out, quick=quick, spp=spp, torch_spp=torch_spp, ref_spp=ref_spp, repeats=repeats,
                     mitsuba_variant=mitsuba_variant, scenes=scene or None, threads=threads, device=device)


@bench_app.command("neural")
def bench_neural(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    material: list[str] = typer.Option([], "--material", help="Only these bundled materials (scenes/materials/X)."),
    quick: bool = typer.Option(False, help="Small batches, images and spp (a smoke run, not the reported numbers)."),
    device: str = typer.Option("cpu", help="cpu or cuda (both materials run on it)."),
    spp: Optional[int] = typer.Option(None, help="spp of the equal-time and sampler renders (default 8; quick 4)."),
    ref_spp: Optional[int] = typer.Option(None, "--ref-spp",
                                          help="spp of the image-quality reference (two cached halves; the neural "
                                               "image gets half; default 8192; quick 8)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
):
    """Neural vs layered reference material: eval throughput, FLIP/PSNR/relMSE, equal time, sampler, error, memory."""
    from .bench.neural import run_neural_bench

    if threads is not None:
        if threads <= 0:
            raise UserError(f"--threads: expected a positive count, got {threads}")
        import torch

        torch.set_num_threads(threads)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: torch reports no CUDA device on this machine")
    run_neural_bench(out=out, materials=material or None, quick=quick, device=device, spp=spp, ref_spp=ref_spp)


# --- reconstruction method (render/recon): reconstruct, bench recon ---------------------------------------------

@app.command("reconstruct")
def reconstruct_cmd(
    data: Path = typer.Argument(..., help="Dataset folder (MonoSDF cameras.npz or nerfstudio transforms.json)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.yaml, ckpt/, metrics.jsonl, mesh.ply, report.html."),
    minutes: Optional[float] = typer.Option(None, help="Training budget in minutes (default 10 unless --iters)."),
    iters: Optional[int] = typer.Option(None, help="Training budget in steps."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file overriding config keys (see RUN/config.yaml)."),
    force: bool = typer.Option(False, help="Start over in a non-empty --out."),
    no_uncertainty: bool = typer.Option(False, "--no-uncertainty", help="MonoSDF prior losses only (no NLL, no exclusion)."),
    no_uncertainty_sampling: bool = typer.Option(False, "--no-uncertainty-sampling", help="Uniform pixel sampling."),
    no_bias_aware_density: bool = typer.Option(False, "--no-bias-aware-density", help="Plain VolSDF density."),
    no_adaptive_smoothness: bool = typer.Option(False, "--no-adaptive-smoothness", help="Smoothness everywhere."),
    mesh_resolution: Optional[int] = typer.Option(None, "--mesh-resolution", help="Marching-cubes grid size."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    quiet: bool = typer.Option(False, help="No progress bar."),
):
    """Reconstruct a mesh (world units) from posed images + mono priors: hash-grid SDF with DebSDF uncertainty."""
    import json

    from .recon.run import prepare_config, reconstruct

    overrides = {}
    if minutes is not None or iters is not None:
        overrides.update(minutes=minutes, iters=iters)
    for key, value in (("device", device), ("mesh_resolution", mesh_resolution), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    for key, off in (("uncertainty", no_uncertainty), ("uncertainty_sampling", no_uncertainty_sampling),
                     ("bias_aware_density", no_bias_aware_density), ("adaptive_smoothness", no_adaptive_smoothness)):
        if off:
            overrides[key] = False
    cfg = prepare_config(data, out, overrides, config, resume, force)
    summary = reconstruct(cfg, out, resume=resume, force=force, progress=not quiet)
    typer.echo(json.dumps(summary))


@bench_app.command("recon")
def bench_recon(
    data: list[Path] = typer.Option([], "--data", help="Datasets (default: the bundled recon scenes)."),
    minutes: float = typer.Option(15.0, help="Training budget per variant (equal time)."),
    variants: str = typer.Option("full,uniform,no_uncertainty", help="Comma-separated: full, uniform, no_uncertainty."),
    work: Path = typer.Option(Path("out/bench/recon"), help="Folder for the runs."),
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    config: Optional[Path] = typer.Option(None, help="Reconstruction config YAML under every variant's flags."),
    iters: Optional[int] = typer.Option(None, help="Equal steps instead of equal time (overrides --minutes)."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated seeds: every variant once per seed."),
    jobs: int = typer.Option(1, help="Runs at once (a GPU or a many-core machine; they share it)."),
):
    """Reconstruction ablation at equal time (or steps): F@5cm, F@2cm, chamfer, thin/object recall, wall time, peak
    RSS per variant; exit 1 when a run failed."""
    from .bench.recon import run_bench

    seed_list = None
    if seeds is not None:
        try:
            seed_list = [int(x) for x in seeds.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    failed = run_bench(data or None, minutes, [v.strip() for v in variants.split(",") if v.strip()], work, out,
                       config, iters, seed_list, jobs)
    if failed:
        raise typer.Exit(1)


def main(argv=None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # click usage errors: one line, exit 2
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
