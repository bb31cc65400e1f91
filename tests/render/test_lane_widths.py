"""Lane and packet widths other than the CPU's default (cuda/include/radiant/lane.h RADIANT_LANES, bvh_wide.h
RADIANT_PACKET_WIDTH): a lane group of 16 paths traced as two 8-ray packets is what an AVX-512 build does with
-DRADIANT_PACKET_WIDTH=8, and on an AVX2 CPU -DRADIANT_LANES=16 runs the same lane-group code (16 lanes in pairs of
AVX2 registers, two packets a group). Its own build of the extension (RADIANT_EXTRA_CFLAGS is part of the cache key),
in a child pytest of some of tests/render/test_lanes_path.py's bitwise lane-vs-scalar checks. On AVX2 the 16-lane
build is a check of the code, not a fast build (GCC's 16-float vectors over AVX2 run several times slower)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _has_avx2(),
                    reason="ray packets need AVX2")
def test_sixteen_lanes_as_two_packets_match_the_scalar_loop():
    avx512 = " avx512f" in Path("/proc/cpuinfo").read_text()
    flags = "-DRADIANT_PACKET_WIDTH=8" if avx512 else "-DRADIANT_LANES=16"
    env = dict(os.environ, RADIANT_EXTRA_CFLAGS=(os.environ.get("RADIANT_EXTRA_CFLAGS", "") + " " + flags).strip(),
               RADIANT_NO_CUDA="1")
    # The default hybrid and pure packets (emitters hidden, depth 3) on every scene; the other checks, packets on.
    f = "tests/render/test_lanes_path.py::test_lane_loop_"
    ids = [f"{f}matches_scalar_loop_bitwise[{p}-{s}]" for p in ("None--1-False", "0-3-True")
           for s in ("cbox", "spheres", "lights")]
    ids += [f"{f}twosided_diffuse_and_deferred_rows[None]", f"{f}mesh_emitters_with_normals_and_flip[True]",
            f"{f}sphere_light_inside_and_outside[None]"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *ids],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert f"{len(ids)} passed" in r.stdout
