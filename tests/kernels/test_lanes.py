"""The CPU lanes (cuda/include/radiant/lane.h): the shared headers' templated math run 16 (AVX-512) or 8 paths at once
gives bit for bit what the scalar instantiation (the one the kernels and CUDA use) gives, on a shading stage of the
path loop (cuda/tools/lane_stage.cpp: frame, cosine sampling, microfacet D, G, pdf and normal sampling (visible and
all normals, both distributions), dielectric and conductor
Fresnel, reflection and refraction, per-path parameters; edge cases among a million random paths, a tail that is not
a whole lane group), on lane.h's helpers with special values and on the lane loop's camera-sample streams
(path_lanes.h LaneRNG::seed_samples against path.h sample_rng).
Built straight from the headers with the kernels' flags, for this CPU, for this CPU at the other lane width (lane.h
RADIANT_LANES) and for plain x86-64 (the portable build)."""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from render.kernels.build import _cpu_flags

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "cuda" / "tools" / "lane_stage.cpp"

X86 = platform.machine() in ("x86_64", "AMD64")


def _other_width() -> str:
    """lane.h's width this CPU's build does not pick (RADIANT_LANES): 8 on AVX-512, else 16 (generic vectors)."""
    return "-DRADIANT_LANES=8" if " avx512f" in _cpu_flags() else "-DRADIANT_LANES=16"


# (-march, extra flags): this CPU's lanes, the other width on this CPU, the portable build.
BUILDS = [("native", "")] + ([("native", _other_width()), ("x86-64", "")] if X86 else [])


@pytest.mark.parametrize("march,extra", BUILDS)
def test_lanes_match_scalar_bitwise(tmp_path, march, extra):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++ (lane.h uses GCC vector extensions)")
    exe = tmp_path / "lane_stage"
    # The kernels' flags (render/kernels/build.py): no FMA contraction, so both forms round the same way.
    subprocess.run([cxx, "-O3", "-std=c++17", f"-march={march}", *extra.split(), "-ffp-contract=off", "-fno-math-errno",
                    "-Wno-psabi", f"-I{ROOT / 'cuda' / 'include'}", str(SOURCE), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe), "check"], check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == "mismatches" and out[4] == "helper_mismatches"
    stage_bad, values, helper_bad, lanes = int(out[1]), int(out[3]), int(out[5]), int(out[7])
    assert values == 2 * 28 * ((1 << 20) + 5)
    assert lanes in (8, 16) and (not extra or lanes == int(extra.rpartition("=")[2]))
    assert stage_bad == 0, f"{stage_bad} of {values} stage values differ between lanes and scalar"
    assert helper_bad == 0, f"{helper_bad} lane helper results differ from the scalar ones"
