"""Reconstruction: datasets, fields, samplers, losses, trainer, meshing and evaluation (DebSDF on a fast base)."""
