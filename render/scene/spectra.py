"""wavelength:value spectra to linear sRGB exactly as Mitsuba's RGB variants do (spectrum_list_to_srgb)."""

from __future__ import annotations

import numpy as np

from . import mitsuba_tables

CIE_MIN, CIE_MAX = 360.0, 830.0
_XYZ = np.asarray(mitsuba_tables.CIE_XYZ, dtype=np.float64)
_D65 = np.asarray(mitsuba_tables.CIE_D65, dtype=np.float64)
# XYZ -> linear sRGB, Mitsuba's xyz_to_srgb
_XYZ_TO_SRGB = np.array([[3.240479, -1.537150, -0.498535],
                         [-0.969256, 1.875991, 0.041556],
                         [0.055648, -0.204043, 1.057311]])
_STEPS = 1000


def _cie_lerp(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = (x - CIE_MIN) * ((len(_D65) - 1) / (CIE_MAX - CIE_MIN))
    i0 = np.clip(t.astype(np.int64), 0, len(_D65) - 2)
    w1 = t - i0
    if table.ndim == 2:
        w1 = w1[:, None]
    return (1 - w1) * table[i0] + w1 * table[i0 + 1]


def spectrum_list_to_srgb(wavelengths, values, d65: bool) -> np.ndarray:
    """RGB (3,) of a piecewise-linear spectrum: Mitsuba integrates it (times D65 for reflectances, d65=True)
    against the CIE 1931 curves with 1000 midpoint-free steps over 360..830 nm, maps XYZ to sRGB and clamps
    negatives to 0. The spectrum is zero outside [wavelengths[0], wavelengths[-1]]."""
    w = np.asarray(wavelengths, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    x = CIE_MIN + np.arange(_STEPS) / (_STEPS - 1) * (CIE_MAX - CIE_MIN)
    x = x[(x >= w[0]) & (x <= w[-1])]
    idx = np.clip(np.searchsorted(w, x, side="right") - 1, 0, len(w) - 2)
    x0, x1, y0, y1 = w[idx], w[idx + 1], v[idx], v[idx + 1]
    y = (x * y0 - x1 * y0 - x * y1 + x0 * y1) / (x0 - x1)
    if d65:
        y = y * _cie_lerp(_D65, x)
    xyz = (_cie_lerp(_XYZ, x) * y[:, None]).sum(axis=0)
    xyz *= (CIE_MAX - CIE_MIN) / _STEPS * mitsuba_tables.CIE_Y_NORMALIZATION
    return np.maximum(_XYZ_TO_SRGB @ xyz, 0.0).astype(np.float32)


def uniform_emitter_rgb(value: float) -> np.ndarray:
    """A single-valued <spectrum> inside an emitter: Mitsuba reads it as the equal-energy spectrum (XYZ =
    value * (1, 1, 1)), i.e. value * xyz_to_srgb(1, 1, 1) = value * (1.2048, 0.9483, 0.9089), not RGB white."""
    return (value * _XYZ_TO_SRGB.sum(axis=1)).astype(np.float32)
