"""Builds and loads the ray-kernel torch extension from cuda/ (JIT, cached under ~/.cache/radiant by source hash)."""

from __future__ import annotations

import hashlib
import os
import platform
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


def _cpu_flags() -> str:
    """The host CPU's model and feature flags: the build uses -march=native, so the cache is per CPU kind."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [l for l in info.splitlines() if l.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def _cflags(with_cuda: bool) -> list[str]:
    # -ffp-contract=off: no fused multiply-add, so the C++ results match the torch references bit for bit.
    flags = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
    if platform.machine() in ("x86_64", "AMD64") and not os.environ.get("RADIANT_PORTABLE_BUILD"):
        flags.append("-march=native")
    if with_cuda:
        flags.append("-DRADIANT_WITH_CUDA")
    flags += os.environ.get("RADIANT_EXTRA_CFLAGS", "").split()  # e.g. -g for profiling (part of the cache key)
    return flags


def _source_hash(with_cuda: bool) -> str:
    h = hashlib.sha256()
    h.update(torch.__version__.encode())
    h.update(b"cuda" if with_cuda else b"cpu")
    h.update(" ".join(_cflags(with_cuda)).encode())
    h.update(_cpu_flags().encode())
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
        built = sorted(cache.glob(f"{name}*.so"))
        if built:
            # The key hashes the sources' contents, so a built module is valid for any checkout with the same
            # sources; importing it directly (not through load_extension, whose build.ninja records the absolute
            # source paths) keeps checkouts in other folders from rebuilding each other's kernels.
            import importlib.util

            spec = importlib.util.spec_from_file_location(name, built[0])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _module = module
            return _module
        if not built:
            print("building ray kernels (~1 min, once)...", file=sys.stderr, flush=True)
        _module = load_extension(
            name=name,
            sources=[str(s) for s in _sources(with_cuda)],
            extra_include_paths=[str(CUDA_ROOT / "include"), str(CUDA_ROOT)],
            extra_cflags=_cflags(with_cuda),
            extra_cuda_cflags=["-O3", "-std=c++17", "-DRADIANT_WITH_CUDA"] if with_cuda else None,
            build_directory=str(cache),
            verbose=bool(os.environ.get("RADIANT_VERBOSE_BUILD")),
        )
        return _module
