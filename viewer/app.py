"""Start the viewer: the Qt application, one window, and the headless `--screenshot` mode."""

from __future__ import annotations

import os
from pathlib import Path

from render.errors import UserError

_app = None


def run_viewer(path, device: str = "cpu", width: int | None = None, height: int | None = None,
               params: dict | None = None, allow_outside: bool = False, spp: int | None = None,
               screenshot: Path | None = None, force: bool = False) -> None:
    """Open `path` in a window and run until it is closed. With `screenshot`, render offscreen
    until `spp` samples per pixel (default: the scene's sampler count), write the window as PNG and exit
    (a user error, bad scene included, is raised as UserError: one line and exit 2 from the CLI)."""
    if screenshot is not None and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from .window import ViewerWindow

    global _app
    # One QApplication per process, kept alive, and a local event loop instead of app.exec(): once exec() has
    # returned, PySide6 tears down and no longer calls Python overrides (a later window's QThread.run would not
    # run), which matters where several viewers open in one process (tests).
    app = _app = QApplication.instance() or QApplication(["radiant"])
    app.setQuitOnLastWindowClosed(False)
    window = ViewerWindow(device=device, width=width, height=height, params=params, allow_outside=allow_outside,
                          max_spp=spp, screenshot=screenshot, force=force)
    loop = QEventLoop()
    window.closed.connect(loop.quit)
    window.done.connect(lambda _code: window.close())
    window.show()
    window.open_scene(path)
    loop.exec()
    window.worker.stop()
    if window.error is not None:
        raise UserError(window.error)
