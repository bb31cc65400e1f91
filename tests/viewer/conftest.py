"""Viewer tests run headless: Qt's offscreen platform (set before PySide6 is imported); skipped without PySide6."""

import os

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
pytest.importorskip("PySide6", reason="the viewer extra is not installed: pip install radiant[viewer]")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed (test extra)")
