"""Viewer tests run headless: Qt's offscreen platform (set before PySide6 is imported); skipped without PySide6."""

import os

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"
pytest.importorskip("PySide6", reason="the viewer extra is not installed: pip install radiant[viewer]")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed (test extra)")


@pytest.fixture(scope="session")
def recon_run(tmp_path_factory):
    """(dataset folder, run folder): the synthetic sphere (8 views, 32x24) reconstructed for 30 steps (~5 s)."""
    from recon_fixture import make_run, write_monosdf_dataset

    root = tmp_path_factory.mktemp("recon")
    data = write_monosdf_dataset(root / "data")
    return data, make_run(data, root / "run")
