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
):
    """Path trace a Mitsuba-3-XML scene (NEE + MIS) to EXR or PNG."""
    from .core.image import write_image
    from .render import check_output, parse_defines, render_scene

    check_output(out, force)
    aovs = tuple(a.strip() for a in aov.split(",") if a.strip())
    for name, v in (("--width", width), ("--height", height)):
        if v is not None and v <= 0:
            raise UserError(f"{name}: expected a positive size, got {v}")
    result = render_scene(scene, spp=spp, seed=seed, device=device, max_depth=max_depth, aovs=aovs, width=width,
                          height=height, params=parse_defines(define), allow_outside=allow_outside, progress=True,
                          integrator=integrator)
    write_image(out, result.rgb, result.aovs, force=force)
    rate = result.samples / max(result.seconds, 1e-9) / 1e6
    typer.echo(f"wrote {out} ({result.rgb.shape[1]}x{result.rgb.shape[0]}, {result.samples / (result.rgb.shape[0] * result.rgb.shape[1]):.0f} spp, "
               f"{result.seconds:.1f} s, {rate:.2f} Msamples/s)")


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
    decoder: str = typer.Option("2x32", help="Decoder hidden layers x width: 2x32 or 3x64."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    material_id: Optional[str] = typer.Option(None, "--material", help="Id of the material when the XML has several."),
    preview_spp: int = typer.Option(16, "--preview-spp", help="Samples per pixel of the report's preview renders "
                                                             "(0: none)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    resume: bool = typer.Option(False, help="Continue from NAME.radmat.ckpt (saved after each training phase)."),
    force: bool = typer.Option(False, help="Overwrite existing NAME.radmat / NAME.html."),
):
    """Bake a layered material into a neural material (latent pyramid + decoders), with an HTML report."""
    from .neural.bake import run_bake

    if threads is not None:
        if threads <= 0:
            raise UserError(f"--threads: expected a positive count, got {threads}")
        import torch

        torch.set_num_threads(threads)
    s = run_bake(material, out, minutes=minutes, latent_channels=latent_channels, device=device, force=force,
                 material_id=material_id, decoder=decoder, preview_spp=preview_spp, resume=resume)
    typer.echo(f"wrote {s['out']} ({s['seconds']:.0f} s, {s['pairs']} training pairs, held-out log-L1 "
               f"{s['validation_log_l1']:.4f})" + (f"; report {s['report']}" if "report" in s else ""))


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


@bench_app.command("report")
def bench_report(folder: Path = typer.Argument(Path("out/bench"), help="Folder with the benches' .jsonl files.")):
    """Tables and plots (HTML) of every bench's JSON lines in FOLDER."""
    from .bench.report import write_bench_report

    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of bench results; run `make bench` first")
    typer.echo(f"wrote {write_bench_report(folder)}")


@bench_app.command("render")
def bench_render(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    quick: bool = typer.Option(False, help="Small images and few samples (a smoke run, not the reported numbers)."),
    spp: Optional[int] = typer.Option(None, help="Samples per pixel of the timed renders (default 64; quick 16)."),
    torch_spp: Optional[int] = typer.Option(None, "--torch-spp", help="Samples per pixel of the torch reference "
                                                                     "integrator (slow; default 8; quick 4)."),
    ref_spp: Optional[int] = typer.Option(None, "--ref-spp", help="Samples per pixel of the relMSE reference "
                                                                 "(default 1024; quick 128)."),
    repeats: int = typer.Option(2, help="Timed repeats per renderer (best is reported)."),
    mitsuba_variant: str = typer.Option("auto", "--mitsuba-variant",
                                        help="auto (llvm_ad_rgb, else scalar_rgb) or a Mitsuba variant name."),
    scene: list[str] = typer.Option([], "--scene", help="Only these bundled scenes (cbox, spheres, lights)."),
):
    """Path-tracing Msamples/s and relMSE: fused kernel, torch reference and Mitsuba 3, same scenes, same run."""
    from .bench.render import run_render_bench

    run_render_bench(out=out, quick=quick, spp=spp, torch_spp=torch_spp, ref_spp=ref_spp, repeats=repeats,
                     mitsuba_variant=mitsuba_variant, scenes=scene or None)


@bench_app.command("neural")
def bench_neural(
    out: Optional[Path] = typer.Option(None, help="Also append the JSON lines to this file."),
    material: list[str] = typer.Option([], "--material", help="Only these bundled materials (scenes/materials/X)."),
    quick: bool = typer.Option(False, help="Small batches, images and spp (a smoke run, not the reported numbers)."),
    device: str = typer.Option("cpu", help="cpu or cuda (both materials run on it)."),
    spp: Optional[int] = typer.Option(None, help="spp of the equal-time and sampler renders (default 8; quick 4)."),
    ref_spp: Optional[int] = typer.Option(None, "--ref-spp",
                                          help="spp of the image-quality renders (default 128; quick 8)."),
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
