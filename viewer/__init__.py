"""Radiant's desktop viewer (PySide6): progressive path tracing with camera control; no rendering logic of its own."""
