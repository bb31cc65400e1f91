"""Benchmarks against the anchors (Embree, Mitsuba 3): each prints one JSON line per result."""

from __future__ import annotations

import json
from pathlib import Path


def emit(row: dict, out: Path | None) -> None:
    """Prints one result as a JSON line and appends it to `out` when given."""
    line = json.dumps(row)
    print(line, flush=True)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as fh:
            fh.write(line + "\n")
