"""Figures of per-disc measurements (``discnet measure`` / ``predict``'s ``measurements_wide.csv``) by level
and, when the table has a ``grade`` column with values, by Pfirrmann grade.

Example:
    >>> import pandas as pd, tempfile, pathlib
    >>> wide = pd.DataFrame({"level": ["L4-L5", "L5-S1"], "volume": [7000.0, 6000.0], "depth": [35.0, 34.0]})
    >>> [p.name for p in measurement_figures(wide, pathlib.Path(tempfile.mkdtemp()))]
    ['measurements_by_level.png']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from discnet.evaluation.morphometry import UNITS
from discnet.spine import grade_name, level_sort_key

#: Measures drawn, in panel order.
SHOWN = ["volume", "midsagittal_area", "height_mean", "depth", "width", "height_depth_ratio"]


def _panels(wide: pd.DataFrame, by: str, order: list) -> list[dict]:
    panels = []
    for measure in [m for m in SHOWN if m in wide.columns]:
        groups = [
            (
                (grade_name(g) or str(g)) if by == "grade" else str(g),
                wide.loc[wide[by] == g, measure].dropna().to_numpy(float),
            )
            for g in order
        ]
        groups = [(name, values) for name, values in groups if len(values)]
        if groups:
            unit = UNITS[measure]
            label = measure.replace("_", " ") + ("" if unit == "1" else f" ({unit})")
            panels.append({"kind": "box", "groups": groups, "title": label, "ylabel": label, "point": "disc"})
    return panels


def measurement_figures(wide: pd.DataFrame, out: Path) -> list[Path]:
    """``measurements_by_level.png`` and, with grades, ``measurements_by_grade.png`` in ``out``."""
    from discnet.analysis.figures import panels_figure
    from discnet.io.pictures import save

    out.mkdir(parents=True, exist_ok=True)
    written = []
    levels = sorted(pd.unique(wide["level"].astype(str)), key=level_sort_key)
    specs = [("level", levels, "measurements_by_level.png")]
    if "grade" in wide.columns and wide["grade"].notna().any():
        grades = sorted(int(g) for g in pd.unique(wide["grade"].dropna()))
        specs.append(("grade", grades, "measurements_by_grade.png"))
    for by, order, name in specs:
        table = wide.assign(level=wide["level"].astype(str))
        if by == "grade":
            table = table.assign(grade=pd.to_numeric(table["grade"], errors="coerce").astype(float))
            order = [float(g) for g in order]
        panels = _panels(table, by, order)
        if panels:
            suptitle = f"Disc measurements by {by} ({np.sum(table[by].notna())} discs)"
            written.append(save(panels_figure(panels, suptitle=suptitle), out / name))
    return written
