"""Widgets both viewer tabs use: the image view that turns mouse and keys into camera moves, QImage <-> numpy."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

KEY_ORBIT_PX, KEY_PAN_PX = 20.0, 10.0


def to_qimage(rgb8: np.ndarray) -> QImage:
    h, w, _ = rgb8.shape
    data = np.ascontiguousarray(rgb8)
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels


def qimage_to_array(image: QImage) -> np.ndarray:
    """(H,W,3) uint8 of a QImage."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    return np.frombuffer(img.constBits(), np.uint8, count=h * stride).reshape(h, stride)[:, :3 * w] \
        .reshape(h, w, 3).copy()


class ImageView(QWidget):
    """Shows the current frame (scaled to fit, aspect kept) and turns mouse/keys into camera moves:
    left drag orbit, right/middle or shift+left drag pan, wheel zoom; arrows orbit, shift+arrows pan, +/- zoom."""

    orbit = Signal(float, float)
    pan = Signal(float, float)
    zoom = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: QImage | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(64, 64)
        self._last: QPointF | None = None
        self._panning = False

    def set_image(self, image: QImage) -> None:
        self.image = image
        self.update()

    def image_scale(self) -> float:
        """Widget pixels per image pixel (mouse drags are converted to image pixels with it)."""
        if self.image is None or self.image.width() == 0:
            return 1.0
        return min(self.width() / self.image.width(), self.height() / self.image.height())

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        if self.image is not None:
            s = self.image_scale()
            w, h = self.image.width() * s, self.image.height() * s
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, s < 1)
            p.drawImage(QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h), self.image)
        p.end()

    def mousePressEvent(self, event):
        self.setFocus()
        self._last = event.position()
        self._panning = event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton) or \
            bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)

    def mouseMoveEvent(self, event):
        if self._last is None:
            return
        d = (event.position() - self._last) / self.image_scale()
        self._last = event.position()
        (self.pan if self._panning else self.orbit).emit(d.x(), d.y())

    def mouseReleaseEvent(self, event):
        self._last = None

    def wheelEvent(self, event):
        self.zoom.emit(event.angleDelta().y() / 120.0)

    def keyPressEvent(self, event):
        k, shift = event.key(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        arrows = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1), Qt.Key.Key_Down: (0, 1)}
        if k in arrows:
            dx, dy = arrows[k]
            step = KEY_PAN_PX if shift else KEY_ORBIT_PX
            (self.pan if shift else self.orbit).emit(dx * step, dy * step)
        elif k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal, Qt.Key.Key_PageUp):
            self.zoom.emit(1.0)
        elif k in (Qt.Key.Key_Minus, Qt.Key.Key_PageDown):
            self.zoom.emit(-1.0)
        else:
            super().keyPressEvent(event)
