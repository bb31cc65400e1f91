"""Distributed rendering and reconstruction sweeps: work split into tiles x sample batches (tiles.py, no Ray) and
their execution on a Ray cluster (ray_backend.py; the optional `[cluster]` extra, imported only when asked for)."""
