"""Builds and loads the ray-kernel torch extension from cuda/ (JIT, cached under ~/.cache/radiant by source hash)."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import torch

CUDA_ROOT = Path(__file__).resolve().parents[2] / "cuda"
_lock = threading.Lock()
_module = None


def _sources(with_cuda: bool) -> list[Path]:
    files = [CUDA_ROOT / "bindings.cpp"]
    files += sorted((CUDA_ROOT / "bind").glob("*.cpp"))
    files += sorted((CUDA_ROOT / "cpu").glob("*.cpp"))
    if with_cuda:
        files += sorted((CUDA_ROOT / "gpu").glob("*.cu"))
    return files


def _source_hash(with_cuda: bool) -> str:
    h = hashlib.sha256()
    h.update(torch.__version__.encode())
    h.update(b"cuda" if with_cuda else b"cpu")
    for path in sorted(CUDA_ROOT.rglob("*")):
        if path.suffix in {".h", ".cpp", ".cu"}:
            h.update(str(path.relative_to(CUDA_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _want_cuda() -> bool:
    if os.environ.get("RADIANT_NO_CUDA"):
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return torch.cuda.is_available() and CUDA_HOME is not None


def load():
    """Returns the compiled extension module, building it on first use."""
    global _module
    if _module is not None:
        return _module
    with _lock:
        if _module is not None:
            return _module
        if not CUDA_ROOT.is_dir():
            raise RuntimeError(f"radiant kernel sources not found at {CUDA_ROOT}")
        from torch.utils.cpp_extension import load as load_extension

        with_cuda = _want_cuda()
        key = _source_hash(with_cuda)
        cache = Path(os.environ.get("RADIANT_CACHE", Path.home() / ".cache" / "radiant")) / f"kernels-{key}"
        cache.mkdir(parents=True, exist_ok=True)
        name = f"radiant_kernels_{key}"
        if not any(cache.glob(f"{name}*.so")):
            print("building ray kernels (~1 min, once)...", file=sys.stderr, flush=True)
        # -ffp-contract=off: no fused multiply-add, so the C++ results match the torch references bit for bit.
        cflags = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno"]
        if with_cuda:
            cflags.append("-DRADIANT_WITH_CUDA")
        _module = load_extension(
            name=name,
            sources=[str(s) for s in _sources(with_cuda)],
            extra_include_paths=[str(CUDA_ROOT / "include"), str(CUDA_ROOT)],
            extra_cflags=cflags,
            extra_cuda_cflags=["-O3", "-std=c++17", "-DRADIANT_WITH_CUDA"] if with_cuda else None,
            build_directory=str(cache),
            verbose=bool(os.environ.get("RADIANT_VERBOSE_BUILD")),
        )
        return _module
