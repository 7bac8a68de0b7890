"""Contact sheets: a PNG grid of records, each as RGB beside its colour-mapped depth.

All depth panels share one colour scale (with a colour bar, in metres) so that
records can be compared; invalid depth (0 or non-finite) is drawn black.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from keras_depth.sources.base import RawRecord

DEPTH_COLORMAP = "viridis"  # its darkest colour is purple, so black stays free for "invalid"
PANEL_INCHES = (3.2, 2.6)  # width, height of one panel including its title
COLOUR_BAR_INCHES = 1.0
TITLE_INCHES = 0.4
DPI = 100
TITLE_CHARS = 40  # longer keys are shortened from the left


def _valid(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def shared_depth_limit(records: Sequence[RawRecord]) -> float:
    """Largest valid depth over all records in metres (1.0 when none is valid)."""
    limits = [float(r.depth[_valid(r.depth)].max()) for r in records if _valid(r.depth).any()]
    return max(limits, default=1.0)


def save_contact_sheet(
    records: Sequence[RawRecord],
    path: str | Path,
    max_depth: float | None = None,
    records_per_row: int = 2,
    title: str | None = None,
) -> Path:
    """Writes a contact sheet of ``records`` to a PNG file.

    Args:
        records: Records to show, in order; at least one.
        path: Output ``.png`` path; parent folders are created.
        max_depth: Top of the shared depth colour scale in metres; by default the
            largest valid depth over all records.
        records_per_row: Records per row (each takes an RGB and a depth panel).
        title: Optional title over the whole sheet.

    Returns:
        The path written.

    Raises:
        ValueError: when ``records`` is empty or ``records_per_row`` < 1.
    """
    if not records:
        raise ValueError("save_contact_sheet needs at least one record")
    if records_per_row < 1:
        raise ValueError(f"records_per_row must be >= 1, got {records_per_row}")
    columns = min(records_per_row, len(records))
    rows = math.ceil(len(records) / columns)
    norm = Normalize(vmin=0.0, vmax=max_depth if max_depth is not None else shared_depth_limit(records))
    cmap = colormaps[DEPTH_COLORMAP].with_extremes(bad="black")

    fig = Figure(
        figsize=(PANEL_INCHES[0] * 2 * columns + COLOUR_BAR_INCHES, PANEL_INCHES[1] * rows + TITLE_INCHES),
        dpi=DPI,
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2 * columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, record in enumerate(records):
        row, col = divmod(i, columns)
        rgb_ax, depth_ax = axes[row, 2 * col], axes[row, 2 * col + 1]
        valid = _valid(record.depth)
        name = record.key if len(record.key) <= TITLE_CHARS else "..." + record.key[-TITLE_CHARS + 3 :]
        rgb_ax.imshow(record.image)
        rgb_ax.set_title(name, fontsize=7)
        depth_ax.imshow(
            np.ma.masked_array(record.depth, mask=~valid), cmap=cmap, norm=norm, interpolation="nearest"
        )
        depth_ax.set_title(f"depth, {valid.mean():.0%} valid", fontsize=7)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), label="depth (m)", shrink=0.8
    )
    if title:
        fig.suptitle(title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
