"""Bench report: JSON lines of several benches become an HTML page with tables and plot images."""

import json

from render.bench.report import write_bench_report


def test_report_tables_and_plots(tmp_path):
    rays = [{"bench": "rays", "mesh": "scanned-36k", "rays": r, "ours_mrays_s": 5.0, "embree_mrays_s": 9.0,
             "ratio": 0.55} for r in ("coherent", "incoherent")]
    conv = [{"bench": "convergence", "scene": "cbox", "renderer": name, "spp": s, "relmse": 0.1 / s}
            for name in ("radiant", "mitsuba") for s in (1, 2, 4, 8)]
    (tmp_path / "rays.jsonl").write_text("\n".join(json.dumps(r) for r in rays) + "\nnot json\n")
    (tmp_path / "convergence.jsonl").write_text("\n".join(json.dumps(r) for r in conv) + "\n")
    path = write_bench_report(tmp_path)
    text = path.read_text()
    for img in ("rays.png", "convergence.png"):
        assert (tmp_path / img).stat().st_size > 1000 and img in text
    assert "scanned-36k" in text and "incoherent" in text and text.count("<tr>") >= 1 + 2 + 1 + 8
