"""The viewer's main window: a tab per view (render; reconstruction run: loss curves so far), controls,
status bar. It renders nothing itself: frames come from the worker (render.progressive), images are tonemapped
and saved with render.core.image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QPushButton, QTabWidget, QVBoxLayout, QWidget)

from render.core.image import TONEMAPS, aov_display, to_8bit, tonemap, write_exr, write_png
from render.errors import UserError

from .camera import OrbitCamera
from .recon import ReconTab, is_dataset_folder, is_run_folder
from .widgets import ImageView, qimage_to_array, to_qimage
from .worker import Frame, Job, RenderWorker, SceneInfo

AOVS = ("color", "albedo", "normal", "depth")
DEFAULT_MAX_SPP = 1 << 16


class RenderTab(QWidget):
    """Progressive path tracing of a scene: controls on top, the image below."""

    def __init__(self, window: "ViewerWindow"):
        super().__init__(window)
        self.aov = QComboBox()
        self.aov.addItems(AOVS)
        self.aov.setToolTip("What to show: the path-traced colour or an AOV of the primary hit (rendered on demand)")
        self.tonemap = QComboBox()
        self.tonemap.addItems(TONEMAPS)
        self.tonemap.setToolTip("srgb: clamp + sRGB curve; filmic: ACES fit, highlights roll off; linear: raw")
        self.exposure = QDoubleSpinBox()
        self.exposure.setRange(-16.0, 16.0)
        self.exposure.setSingleStep(0.5)
        self.exposure.setPrefix("exposure ")
        self.exposure.setSuffix(" EV")
        self.reset_button = QPushButton("Reset camera")
        self.copy_button = QPushButton("Copy camera")
        self.copy_button.setToolTip("Copy the camera as a Mitsuba <lookat> element")
        self.save_button = QPushButton("Save image…")
        bar = QHBoxLayout()
        for w in (QLabel("view"), self.aov, QLabel("tonemap"), self.tonemap, self.exposure):
            bar.addWidget(w)
        bar.addStretch(1)
        for w in (self.reset_button, self.copy_button, self.save_button):
            bar.addWidget(w)
        self.view = ImageView()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)


class ViewerWindow(QMainWindow):
    """`radiant view`: the window. Accumulation stops at max_spp (default 65536). screenshot: a PNG path; once
    max_spp (default: the scene's sampler count) samples per pixel are in, the window is grabbed to it and `done`
    is emitted with the exit code (0, or 2 after an error, whose line is then in `error`)."""

    done = Signal(int)
    closed = Signal()

    def __init__(self, device: str = "cpu", width: int | None = None, height: int | None = None,
                 params: dict | None = None, allow_outside: bool = False, max_spp: int | None = None,
                 screenshot: Path | None = None, force: bool = False, poll_ms: int = 1000,
                 recon_options: dict | None = None):
        super().__init__()
        self.poll_ms = poll_ms
        self.recon_options = recon_options or {}  # ReconTab keywords (tests: a coarser SDF grid, a smaller view)
        self.recon_tab: ReconTab | None = None  # added when a run folder is opened
        self.setWindowTitle("Radiant")
        self.spp_flag = max_spp
        self.max_spp = max_spp or DEFAULT_MAX_SPP
        self.screenshot, self.force = screenshot, force
        self.info: SceneInfo | None = None
        self.camera: OrbitCamera | None = None
        self.generation = 0
        self.last_frame: Frame | None = None
        self.loading = False
        self.error: str | None = None  # screenshot mode: the error that ended it

        self.tabs = QTabWidget()
        self.render_tab = RenderTab(self)
        self.tabs.addTab(self.render_tab, "Render")
        self.setCentralWidget(self.tabs)
        self.status = QLabel("no scene")
        self.statusBar().addWidget(self.status, 1)
        self._menus()

        t = self.render_tab
        t.aov.currentTextChanged.connect(lambda _: self.request_render())
        t.tonemap.currentTextChanged.connect(lambda _: self.redisplay())
        t.exposure.valueChanged.connect(lambda _: self.redisplay())
        t.reset_button.clicked.connect(self.reset_camera)
        t.copy_button.clicked.connect(self.copy_camera)
        t.save_button.clicked.connect(self.save_dialog)
        t.view.orbit.connect(lambda dx, dy: self._move("orbit", dx, dy))
        t.view.pan.connect(lambda dx, dy: self._move("pan", dx, dy))
        t.view.zoom.connect(lambda s: self._move("zoom", s))

        self.worker = RenderWorker(device=device, width=width, height=height, params=params,
                                   allow_outside=allow_outside)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.failed.connect(self._on_failed)
        self.worker.frame.connect(self._on_frame)
        self.worker.start()

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, key, slot in (("&Open scene…", QKeySequence.StandardKey.Open, self.open_dialog),
                                ("Open &run folder…", QKeySequence("Ctrl+Shift+O"), self.open_run_dialog),
                                ("&Save image…", QKeySequence.StandardKey.Save, self.save_dialog),
                                ("&Quit", QKeySequence.StandardKey.Quit, self.close)):
            a = QAction(text, self)
            a.setShortcut(key)
            a.triggered.connect(slot)
            file_menu.addAction(a)
        view_menu = self.menuBar().addMenu("&View")
        for text, key, slot in (("&Reset camera", "R", self.reset_camera),
                                ("&Copy camera as <lookat>", "Ctrl+Shift+C", self.copy_camera)):
            a = QAction(text, self)
            a.setShortcut(QKeySequence(key))
            a.triggered.connect(slot)
            view_menu.addAction(a)

    # ---- scene
    def open_scene(self, path) -> None:
        """A Mitsuba scene (render tab), a reconstruction run folder or a dataset folder (reconstruction tab)."""
        path = Path(path)
        if path.is_dir():
            if is_run_folder(path):
                self.open_run(path)
            elif is_dataset_folder(path):
                self.open_dataset(path)
            else:
                self._on_failed(f"{path}: a folder, but not a reconstruction run (no config.yaml or metrics.jsonl) "
                                "nor a dataset (no cameras.npz or transforms.json)")
            return
        self.loading = True
        self.tabs.setCurrentWidget(self.render_tab)
        self.status.setText(f"loading {path}…")
        self.worker.load(path)

    def _recon(self) -> ReconTab:
        if self.recon_tab is None:
            self.recon_tab = ReconTab(poll_ms=self.poll_ms, **self.recon_options)
            self.recon_tab.error.connect(self._on_failed)
            self.recon_tab.ready.connect(self._recon_ready)
            self.tabs.addTab(self.recon_tab, "Reconstruction")
            if self.screenshot is not None:
                self.resize(1280, 800)
        self.tabs.setCurrentWidget(self.recon_tab)
        return self.recon_tab

    def open_run(self, run: Path) -> None:
        tab = self._recon()
        tab.open_run(run)
        self.setWindowTitle(f"Radiant: {run.name}")
        self.status.setText(f"run {run}: loss curves and checkpoint re-read every {self.poll_ms / 1000:g} s")
        if self.screenshot is not None and not tab.has_checkpoint():
            QTimer.singleShot(0, self._take_screenshot)  # loss curves only: nothing else will come

    def open_dataset(self, data: Path) -> None:
        self._recon().open_dataset(data)
        self.setWindowTitle(f"Radiant: {data.name}")
        self.status.setText(f"dataset {data}: start a reconstruction to watch it train")

    def _recon_ready(self) -> None:
        if self.screenshot is not None:
            QTimer.singleShot(0, self._take_screenshot)

    def open_run_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open reconstruction run")
        if path:
            self.open_scene(path)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scene", "", "Mitsuba scenes (*.xml);;All files (*)")
        if path:
            self.open_scene(path)

    def _on_loaded(self, info: SceneInfo) -> None:
        self.loading = False
        self.info = info
        if self.screenshot is not None and self.spp_flag is None:
            self.max_spp = info.sample_count  # as `radiant render`: the scene's sampler decides
        self.camera = OrbitCamera(info.to_world, info.fov_x, info.center)
        self.setWindowTitle(f"Radiant: {info.source.name}")
        view = self.render_tab.view
        view.setMinimumSize(min(info.width, 1600), min(info.height, 1000))
        self.adjustSize()
        self.request_render()

    def _on_failed(self, message: str) -> None:
        self.loading = False
        self.status.setText("error: " + message)
        if self.screenshot is not None:
            self.error = message
            self.done.emit(2)
            return
        self.show_error(message)

    def show_error(self, message: str) -> None:
        QMessageBox.critical(self, "Radiant", message)

    # ---- camera
    def request_render(self) -> None:
        if self.camera is None or self.loading:
            return
        self.generation += 1
        aov = self.render_tab.aov.currentText()
        self.worker.render(Job(self.generation, self.camera.to_world, None if aov == "color" else aov, self.max_spp))

    def _move(self, how: str, *args) -> None:
        if self.camera is None or self.info is None:
            return
        if how == "zoom":
            self.camera.zoom(*args)
        else:
            getattr(self.camera, how)(*args, self.info.width)
        self.request_render()

    def reset_camera(self) -> None:
        if self.recon_tab is not None and self.tabs.currentWidget() is self.recon_tab:
            self.recon_tab.reset_camera()  # View > Reset camera (R) acts on the tab on screen
            return
        if self.camera is not None:
            self.camera.reset()
            self.request_render()

    def copy_camera(self) -> str:
        if self.camera is None:
            return ""
        xml = self.camera.lookat_xml()
        QGuiApplication.clipboard().setText(xml)
        self.statusBar().showMessage("copied " + xml, 5000)
        return xml

    # ---- frames
    def display_image(self, frame: Frame) -> np.ndarray:
        """The frame as the 8-bit image on screen (tonemapped colour, or the AOV's visualisation)."""
        if frame.aov is None:
            t = self.render_tab
            return to_8bit(tonemap(frame.image, t.exposure.value(), t.tonemap.currentText()))
        return to_8bit(aov_display(frame.aov, frame.image))

    def _on_frame(self, frame: Frame) -> None:
        if self.last_frame is not None and frame.generation < self.last_frame.generation:
            return  # older than what is on screen (while the camera moves, the newest view wins)
        self.last_frame = frame
        self.redisplay()
        what = "color" if frame.aov is None else frame.aov
        self.status.setText(f"{frame.spp} spp  |  {frame.msamples_per_second:.2f} Msamples/s  |  "
                            f"{frame.width}x{frame.height}{' preview' if frame.preview else ''}  |  "
                            f"{what} ({frame.integrator})")
        if self.screenshot is not None and frame.generation == self.generation and not frame.preview \
                and frame.spp >= self.max_spp:
            QTimer.singleShot(0, self._take_screenshot)

    def redisplay(self) -> None:
        if self.last_frame is not None:
            self.render_tab.view.set_image(to_qimage(self.display_image(self.last_frame)))

    # ---- output
    def save_image(self, path) -> None:
        """EXR: the linear colour (or the raw AOV); PNG: the image as displayed. Overwrites (the dialog asked)."""
        path = Path(path)
        f = self.last_frame
        if f is None:
            raise UserError("save image: nothing rendered yet")
        ext = path.suffix.lower()
        if ext == ".exr":
            write_exr(path, {"RGB" if f.aov is None else f.aov: f.image}, force=True)
        elif ext == ".png":
            write_png(path, self.display_image(f), force=True)
        else:
            raise UserError(f"{path}: unsupported extension {path.suffix!r}; expected .exr or .png")
        self.statusBar().showMessage(f"saved {path}", 5000)

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save image", "", "OpenEXR (*.exr);;PNG (*.png)")
        if path:
            try:
                self.save_image(path)
            except UserError as e:
                self.show_error(str(e))
            except OSError as e:
                self.show_error(f"{path}: {e.strerror or e}")

    def grab_array(self) -> np.ndarray:
        """The whole window as (H,W,3) uint8."""
        return qimage_to_array(self.grab().toImage())

    def _take_screenshot(self) -> None:
        try:
            write_png(self.screenshot, self.grab_array(), force=self.force)
        except UserError as e:
            self._on_failed(str(e))
            return
        self.done.emit(0)

    def closeEvent(self, event):
        self.worker.stop()
        if self.recon_tab is not None:
            self.recon_tab.shutdown()
        super().closeEvent(event)
        self.closed.emit()
