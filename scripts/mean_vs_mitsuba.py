"""Image mean of a scene, ours vs Mitsuba 3 (scalar_rgb), over many independent seeds, with standard errors.

Usage: python scripts/mean_vs_mitsuba.py SCENE.xml [--width 48 --height 36 --ours-spp 4096 --mi-spp 16384]
A few low-spp Mitsuba renders are not a 0.1% reference: per-render means of glossy scenes are skewed (rare bright
samples), e.g. two 512-spp renders of a cut-down lights.xml both sat ~0.15% below the 48 x 1024 spp mean.
"""

from __future__ import annotations

import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scene")
    ap.add_argument("--width", default="48")
    ap.add_argument("--height", default="36")
    ap.add_argument("--ours-spp", type=int, default=4096)
    ap.add_argument("--mi-spp", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=100)
    a = ap.parse_args()
    import mitsuba as mi

    mi.set_variant("scalar_rgb")
    from render.render import render_scene

    sc = mi.load_file(a.scene, width=int(a.width), height=int(a.height))
    theirs = np.array([np.array(mi.render(sc, spp=1024, seed=a.seed + i)).mean() for i in range(a.mi_spp // 1024)])
    ours = np.array([render_scene(a.scene, spp=512, seed=a.seed + i, params={"width": a.width, "height": a.height})
                     .rgb.mean() for i in range(a.ours_spp // 512)])
    se = lambda x: x.std() / np.sqrt(len(x))
    r = ours.mean() / theirs.mean()
    print(f"mitsuba {theirs.mean():.6f} +- {se(theirs):.6f}   ours {ours.mean():.6f} +- {se(ours):.6f}   "
          f"ratio {r:.5f} +- {r * np.hypot(se(theirs) / theirs.mean(), se(ours) / ours.mean()):.5f}")


if __name__ == "__main__":
    main()
