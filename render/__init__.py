"""Radiant: a physically based path tracer, neural materials and an SDF reconstructor on shared ray kernels."""

__version__ = "0.1.0"
