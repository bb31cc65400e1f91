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
