"""Time per path of one shading stage (cuda/tools/lane_stage.cpp) through the shared headers' scalar instantiation
(F = float, as the fused CPU path tracer runs today) and through CPU lanes (F = LaneF, 16 paths at once with
AVX-512, 8 with AVX2), one thread, the two interleaved; best of the repeats, medians over runs.

    python scripts/lane_stage_bench.py [--runs 5] [--march native]
"""

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--march", default="native")
    ap.add_argument("--paths", type=int, default=1 << 16)
    args = ap.parse_args()
    cxx = shutil.which("g++")
    if cxx is None:
        raise SystemExit("needs g++")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "lane_stage"
        subprocess.run([cxx, "-O3", "-std=c++17", f"-march={args.march}", "-ffp-contract=off", "-fno-math-errno",
                        "-Wno-psabi", f"-I{ROOT / 'cuda' / 'include'}", str(ROOT / "cuda" / "tools" / "lane_stage.cpp"),
                        "-o", str(exe)], check=True)
        scalar, lanes = [], []
        for _ in range(args.runs):
            out = subprocess.run([str(exe), "bench", str(args.paths)], check=True, capture_output=True,
                                 text=True).stdout.split()
            scalar.append(float(out[1]))
            lanes.append(float(out[3]))
            print(f"scalar {scalar[-1]:.2f} ns/path  lanes {lanes[-1]:.2f} ns/path  ({scalar[-1] / lanes[-1]:.2f}x)")
    s, l = statistics.median(scalar), statistics.median(lanes)
    print(f"median: scalar {s:.2f} ns/path, lanes {l:.2f} ns/path, lanes {s / l:.2f}x faster (-march={args.march})")


if __name__ == "__main__":
    main()
