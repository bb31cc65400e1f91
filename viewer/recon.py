"""The viewer's reconstruction tab, first part: the live loss curves of a run folder (RUN/metrics.jsonl, one JSON
line per logged step, appended while `radiant reconstruct` trains), polled on a timer.

Not built yet (needs render.recon.run.load_run, on its way from the recon branch): the sphere-traced SDF view,
the dataset cameras as frusta, per-view uncertainty / pixel-sampling heat maps and mesh export.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

NOT_PLOTTED = ("step", "time", "epoch", "lr")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "metrics.jsonl").exists() or (path / "config.yaml").exists())


def read_new_metrics(path: Path, offset: int) -> tuple[list[dict], int]:
    """Rows appended to a metrics.jsonl since byte `offset`, and the offset after the last complete line (a line
    still being written is left for the next call; lines that are not JSON objects are skipped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
    return rows, offset + end


class LossPlot(QWidget):
    """Loss curves against step, log-scaled y (every positive numeric field but step/time/lr)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[dict] = []
        self.setMinimumSize(480, 300)

    def series(self) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        for r in self.rows:
            for k, v in r.items():
                if k not in NOT_PLOTTED and isinstance(v, (int, float)) and not isinstance(v, bool) \
                        and v > 0 and math.isfinite(v):
                    out.setdefault(k, []).append((float(r["step"]), math.log10(v)))
        return out

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.white)
        series = self.series()
        left, top, right, bottom = 60, 16, self.width() - 130, self.height() - 36
        p.setPen(QPen(Qt.GlobalColor.black, 1))
        p.drawRect(left, top, right - left, bottom - top)
        if not series:
            p.drawText(left + 10, top + 20, "waiting for metrics.jsonl…")
            p.end()
            return
        xs = [x for s in series.values() for x, _ in s]
        ys = [y for s in series.values() for _, y in s]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
        y1 = max(y1, y0 + 1)
        sx = lambda x: left + (x - x0) / (x1 - x0) * (right - left)  # noqa: E731
        sy = lambda y: bottom - (y - y0) / (y1 - y0) * (bottom - top)  # noqa: E731
        for e in range(y0, y1 + 1):  # decades
            p.setPen(QPen(QColor("#dddddd"), 1))
            p.drawLine(QPointF(left, sy(e)), QPointF(right, sy(e)))
            p.setPen(QPen(Qt.GlobalColor.black, 1))
            p.drawText(QPointF(8, sy(e) + 4), f"1e{e}")
        p.drawText(QPointF(left, bottom + 16), f"{x0:g}")
        p.drawText(QPointF(right - 40, bottom + 16), f"{x1:g}")
        p.drawText(QPointF((left + right) / 2 - 12, bottom + 30), "step")
        for i, (name, pts) in enumerate(sorted(series.items())):
            color = QColor(COLORS[i % len(COLORS)])
            p.setPen(QPen(color, 2))
            p.drawPolyline(QPolygonF([QPointF(sx(x), sy(y)) for x, y in pts]))
            p.drawText(QPointF(right + 10, top + 14 + 16 * i), f"{name} {10 ** pts[-1][1]:.3g}")
        p.end()


class ReconTab(QWidget):
    """A run folder's live loss curves, re-read every `poll_ms` while the run trains."""

    def __init__(self, poll_ms: int = 1000, parent=None):
        super().__init__(parent)
        self.run: Path | None = None
        self.offset = 0
        self.title = QLabel("no run")
        self.plot = LossPlot()
        self.note = QLabel("Not built yet: the sphere-traced SDF view, dataset cameras, uncertainty and "
                           "pixel-sampling maps, mesh export.")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        self.timer = QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.poll)

    def open_run(self, run: Path) -> None:
        self.run, self.offset, self.plot.rows = Path(run), 0, []
        self.poll()
        self.timer.start()

    def poll(self) -> None:
        if self.run is None:
            return
        rows, self.offset = read_new_metrics(self.run / "metrics.jsonl", self.offset)
        if rows:
            self.plot.rows.extend(rows)
            self.plot.update()
        last = self.plot.rows[-1] if self.plot.rows else None
        self.title.setText(f"{self.run}: " + (f"step {last['step']}, {len(self.plot.rows)} logged steps"
                                               if last else "no metrics yet"))
