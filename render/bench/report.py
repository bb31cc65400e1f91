"""`radiant bench report`: the JSON lines of every bench under a folder as an HTML page of tables and plots."""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path


def _load(folder: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            groups[row.get("bench", path.stem)].append(row)
    return groups


def html_table(rows: list[dict]) -> str:
    """An HTML table of dict rows, the union of their keys as columns (in first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(k, '')))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plots(groups: dict[str, list[dict]], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    rays = groups.get("rays", [])
    if rays:
        labels = [f"{r['mesh']}\n{r['rays']}" for r in rays]
        x = range(len(rays))
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar([i - 0.2 for i in x], [r["ours_mrays_s"] for r in rays], 0.4, label="Radiant")
        if all("embree_mrays_s" in r for r in rays):
            ax.bar([i + 0.2 for i in x], [r["embree_mrays_s"] for r in rays], 0.4, label="Open3D / Embree")
        ax.set_xticks(list(x), labels, fontsize=8)
        ax.set_ylabel("Mrays/s (closest hit)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "rays.png", dpi=110)
        plt.close(fig)
        images.append("rays.png")
    render = groups.get("render", [])
    if render:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = [str(r.get("scene", i)) for i, r in enumerate(render)]
        series = [k for k in render[0] if k.endswith("msamples_s")]
        width = 0.8 / max(len(series), 1)
        for j, k in enumerate(series):
            ax.bar([i + (j - (len(series) - 1) / 2) * width for i in range(len(render))],
                   [r.get(k, 0) or 0 for r in render], width, label=k)
        ax.set_xticks(range(len(render)), names)
        ax.set_ylabel("Msamples/s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "render.png", dpi=110)
        plt.close(fig)
        images.append("render.png")
    conv = groups.get("convergence", [])
    if conv:
        fig, ax = plt.subplots(figsize=(5, 4))
        by = defaultdict(list)
        for r in conv:
            by[(r["scene"], r["renderer"])].append((r["spp"], r["relmse"]))
        for (scene, renderer), pts in sorted(by.items()):
            pts.sort()
            ax.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{renderer} ({scene})")
        if by:
            s0, e0 = min(min(v) for v in by.values())
            ax.loglog([s0, s0 * 64], [e0, e0 / 64], "k--", lw=0.8, label="slope -1")
        ax.set_xlabel("samples per pixel")
        ax.set_ylabel("relMSE vs reference")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "convergence.png", dpi=110)
        plt.close(fig)
        images.append("convergence.png")
    return images


def write_bench_report(folder: Path) -> Path:
    groups = _load(folder)
    images = _plots(groups, folder) if groups else []
    sections = "".join(f"<h2>{html.escape(name)}</h2>{html_table(rows)}" for name, rows in sorted(groups.items()))
    figs = "".join(f'<img src="{img}" alt="{img}">' for img in images)
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Radiant benchmarks</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;font-size:12px;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:2px 6px}} img{{margin:4px;border:1px solid #ddd}}</style></head><body>
<h1>Radiant benchmarks</h1><p>From the JSON lines in {html.escape(str(folder))}; each anchor ran in the same
process and on the same inputs as ours.</p>{figs}{sections or '<p>No results yet: run make bench.</p>'}</body></html>"""
    path = folder / "index.html"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(doc)
    tmp.replace(path)
    return path
