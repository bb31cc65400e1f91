"""The reconstruction tab: a run folder's metrics.jsonl read incrementally (complete lines only) and plotted live;
folders that are not runs give the one-line error."""

import json

from PySide6.QtWidgets import QMessageBox

from render.cli import main
from viewer.recon import read_new_metrics
from viewer.window import ViewerWindow


def write_rows(path, rows, tail=""):
    with open(path, "a") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
        fh.write(tail)


def test_read_new_metrics_takes_complete_lines_only(tmp_path):
    m = tmp_path / "metrics.jsonl"
    assert read_new_metrics(m, 0) == ([], 0)
    write_rows(m, [{"step": 10, "time": 1.0, "rgb": 0.5}, {"step": 20, "time": 2.0, "rgb": 0.25}], tail='{"step": 3')
    rows, offset = read_new_metrics(m, 0)
    assert [r["step"] for r in rows] == [10, 20]
    write_rows(m, [], tail='0, "rgb": 0.1}\nnot json\n')
    rows, offset = read_new_metrics(m, offset)
    assert rows == [{"step": 30, "rgb": 0.1}] and offset == m.stat().st_size


def test_run_folder_opens_the_loss_tab_and_follows_training(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("iters: 100\n")
    write_rows(run / "metrics.jsonl", [{"step": 10, "time": 1.0, "rgb": 0.5, "eikonal": 0.1}])
    w = ViewerWindow(poll_ms=50)
    qtbot.addWidget(w)
    w.show()
    w.open_scene(run)
    assert w.tabs.currentWidget() is w.recon_tab
    assert len(w.recon_tab.plot.rows) == 1
    write_rows(run / "metrics.jsonl", [{"step": 20, "time": 2.0, "rgb": 0.3, "eikonal": 0.05}])
    qtbot.waitUntil(lambda: len(w.recon_tab.plot.rows) == 2, timeout=10_000)
    series = w.recon_tab.plot.series()
    assert sorted(series) == ["eikonal", "rgb"] and [x for x, _ in series["rgb"]] == [10.0, 20.0]
    assert "step 20" in w.recon_tab.title.text()
    img = w.grab_array()
    assert img.std() > 10
    w.close()


def test_folder_that_is_not_a_run_shows_an_error(qtbot, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append(text))
    w = ViewerWindow()
    qtbot.addWidget(w)
    w.open_scene(tmp_path)
    assert shown == [f"{tmp_path}: a folder, but not a reconstruction run (no config.yaml or metrics.jsonl) "
                     "nor a dataset (no cameras.npz or transforms.json)"]
    w.close()


def test_screenshot_of_a_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_rows(run / "metrics.jsonl", [{"step": s, "time": s / 10, "rgb": 1 / s} for s in range(10, 110, 10)])
    out = tmp_path / "run.png"
    assert main(["view", str(run), "--screenshot", str(out)]) == 0
    import imageio.v3 as iio

    assert iio.imread(out).std() > 10
