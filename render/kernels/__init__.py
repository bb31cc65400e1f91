"""Ray kernels: BVH, occupancy grid and sphere tracing, each a C++/CUDA op with a pure-torch reference twin."""

from .build import load

__all__ = ["load"]
