"""The packed BSDF parameter row, read from its single definition in cuda/include/radiant/bsdf_params.h."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = Path(__file__).resolve().parents[2] / "cuda" / "include" / "radiant" / "bsdf_params.h"


def _parse(text: str):
    types = {m[1]: int(m[2]) for m in re.finditer(r"^\s*X\((\w+), (\d+)\)\s*\\?\s*$", text, re.M)}
    fields = {}
    for m in re.finditer(r'^\s*X\((\w+), (\d+), (\d+), "([^"]*)"\)', text, re.M):
        fields[m[1]] = (int(m[2]), int(m[3]), m[4])
    count = int(re.search(r"kBSDFParamCount = (\d+);", text)[1])
    flags = {m[1]: int(m[2]) for m in re.finditer(r"kFlag(\w+) = (\d+),", text)}
    return types, fields, count, flags


TYPES, FIELDS, PARAM_COUNT, _FLAGS = _parse(HEADER.read_text())
TYPE_NAMES = {v: k for k, v in TYPES.items()}
ROUGH_TRANSMITTANCE_RES = FIELDS["external_transmittance"][1]

# Sampled-lobe flags (Mitsuba 3 BSDFFlags bit values), by snake-case name.
FLAGS = {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in _FLAGS.items()}


def field_slice(name: str) -> slice:
    offset, width, _ = FIELDS[name]
    return slice(offset, offset + width)


def _check() -> None:
    end = 0
    for name, (offset, width, _) in sorted(FIELDS.items(), key=lambda kv: kv[1][0]):
        if offset != end:
            raise RuntimeError(f"bsdf_params.h: field {name} at offset {offset}, expected {end}")
        end = offset + width
    if end != PARAM_COUNT or len(TYPES) < 8:
        raise RuntimeError(f"bsdf_params.h: fields end at {end}, kBSDFParamCount = {PARAM_COUNT}, types {TYPES}")


_check()
