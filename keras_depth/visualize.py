"""Figures for training and evaluation: depth prediction grids and training curves (PNG).

Drawn with Matplotlib's object-oriented API on the Agg canvas (no ``pyplot``, no display, no global
state), so the functions are safe in headless pipeline workers and threads.

Depth maps are shown in metres with one colour map and one colour range shared by every map of a figure,
so colours compare across columns and rows; invalid pixels (0, negative or non-finite depth) are black.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

# A diverging map without black (near = red, far = blue), so black is free for invalid pixels.
DEPTH_CMAP = "Spectral"
INVALID_COLOR = "black"
PANEL_INCHES = 2.4
DPI = 100
RGB_MAX = 255.0
RGB_COLUMN = "RGB"

# (panel title, history keys drawn in it) of the default training-curves figure.
DEFAULT_CURVE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss", "val_loss")),
    ("val delta < 1.25", ("val_delta1",)),
    ("val abs rel", ("val_abs_rel",)),
    ("val RMSE (m)", ("val_rmse",)),
)


def _depth_batch(depth: np.ndarray, name: str) -> np.ndarray:
    """Views a depth batch of shape [N, h, w] or [N, h, w, 1] as float64 [N, h, w].

    Raises:
        ValueError: naming the column for any other shape.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 4 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    if depth.ndim != 3:
        raise ValueError(
            f"depth column {name!r} must have shape [N, h, w] or [N, h, w, 1]; got {depth.shape}"
        )
    return depth


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels that are drawn in colour: finite depth > 0 metres."""
    return np.isfinite(depth) & (depth > 0)


def depth_color_range(maps: Iterable[np.ndarray]) -> tuple[float, float]:
    """The smallest and largest valid depth (metres) over all ``maps`` (any shapes).

    Returns:
        ``(vmin, vmax)``; ``(0.0, 1.0)`` when no pixel is valid, and a range widened to non-zero width
        when every valid pixel has the same depth.
    """
    values = [np.asarray(depth, np.float64)[valid_depth(np.asarray(depth, np.float64))] for depth in maps]
    values = np.concatenate([v.ravel() for v in values]) if values else np.empty(0)
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return low * 0.5, low * 1.5
    return low, high


def _depth_colormap() -> Colormap:
    """``DEPTH_CMAP`` with masked (invalid) pixels drawn in ``INVALID_COLOR``."""
    return colormaps[DEPTH_CMAP].with_extremes(bad=INVALID_COLOR)


def depth_grid_figure(
    depth_columns: Mapping[str, np.ndarray],
    images: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of examples (rows) by named depth maps (columns), with one shared colour bar.

    Args:
        depth_columns: Column title -> depth in metres, [N, h, w] or [N, h, w, 1], in display order (e.g.
            ``{"ground truth": ..., "coarse": ..., "fine": ...}``). Columns may differ in resolution;
            0, negative and non-finite values are drawn black.
        images: Optional RGB images, [N, H, W, 3] with values in 0..255 (uint8 or float), drawn as the
            first column ``"RGB"``.
        vmin: Lower end of the shared colour range in metres (default: the smallest valid depth of all
            columns).
        vmax: Upper end of the shared colour range in metres (default: the largest valid depth).
        row_labels: Optional label of each row (e.g. example keys), length N.
        title: Optional figure title.

    Returns:
        The Matplotlib figure (Agg canvas); save it with ``figure.savefig(path)``.

    Raises:
        ValueError: when there is no column, or the columns, images and labels disagree on N.
    """
    columns = {name: _depth_batch(depth, name) for name, depth in depth_columns.items()}
    if not columns:
        raise ValueError("depth_grid_figure needs at least one depth column")
    counts = {name: depth.shape[0] for name, depth in columns.items()}
    if images is not None:
        counts[RGB_COLUMN] = len(images)
    if row_labels is not None:
        counts["row_labels"] = len(row_labels)
    if len(set(counts.values())) != 1:
        raise ValueError(f"every column needs the same number of examples (rows); got {counts}")
    num_rows = next(iter(counts.values()))
    default_low, default_high = depth_color_range(columns.values())
    low = default_low if vmin is None else vmin
    high = default_high if vmax is None else vmax

    num_cols = len(columns) + (images is not None)
    figure = Figure(
        figsize=(PANEL_INCHES * num_cols + 1.0, PANEL_INCHES * 0.8 * num_rows + 0.6),
        dpi=DPI,
        layout="constrained",
    )
    axes = figure.subplots(num_rows, num_cols, squeeze=False)
    cmap = _depth_colormap()
    mappable = None
    for row in range(num_rows):
        col = 0
        if images is not None:
            axes[row, 0].imshow(np.clip(np.asarray(images[row], np.float64) / RGB_MAX, 0.0, 1.0))
            col = 1
        for depth in columns.values():
            masked = np.ma.masked_where(~valid_depth(depth[row]), depth[row])
            mappable = axes[row, col].imshow(masked, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            col += 1
    titles = ([RGB_COLUMN] if images is not None else []) + list(columns)
    for col, name in enumerate(titles):
        axes[0, col].set_title(name)
    for row in range(num_rows):
        if row_labels is not None:
            axes[row, 0].set_ylabel(row_labels[row], fontsize="x-small")
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.colorbar(mappable, ax=axes.ravel().tolist(), label="depth (m)", shrink=0.8)
    if title:
        figure.suptitle(title)
    return figure


def save_depth_grid(path: str | Path, depth_columns: Mapping[str, np.ndarray], **kwargs) -> Path:
    """Saves :func:`depth_grid_figure` (same arguments after ``path``) as a PNG.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    depth_grid_figure(depth_columns, **kwargs).savefig(path)
    return path


def training_curves_figure(
    phases: Mapping[str, Sequence[Mapping[str, float]]],
    panels: Sequence[tuple[str, Sequence[str]]] = DEFAULT_CURVE_PANELS,
    x_key: str = "step",
) -> Figure:
    """Per-epoch training curves of consecutive phases (e.g. coarse, then fine), one panel per metric group.

    Phases follow each other along the x axis: a phase's ``x_key`` values are shifted by the last
    ``x_key`` value of the phases before it, and a dashed line marks where each phase starts.

    Args:
        phases: Phase name -> its per-epoch records, in order; a record maps ``x_key`` (e.g. the
            optimizer step at the end of the epoch) and metric names (e.g. ``"loss"``,
            ``"val_delta1"``) to numbers. Keys missing from a record are not drawn.
        panels: (panel title, keys drawn in it) of each panel.
        x_key: Record key of the x coordinate.

    Returns:
        The Matplotlib figure (Agg canvas).
    """
    figure = Figure(figsize=(4.0 * len(panels), 3.2), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    offset = 0.0
    for phase, records in phases.items():
        x = np.array([offset + float(record[x_key]) for record in records])
        for ax, (_, keys) in zip(axes, panels, strict=True):
            if offset > 0:
                ax.axvline(offset, color="grey", linestyle="--", linewidth=0.8)
            for key in keys:
                points = [(xi, record[key]) for xi, record in zip(x, records, strict=True) if key in record]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, marker="o", markersize=3, label=f"{phase} {key}")
        if len(x):
            offset = float(x[-1])
    for ax, (panel_title, _) in zip(axes, panels, strict=True):
        ax.set_title(panel_title)
        ax.set_xlabel(x_key)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return figure


def save_training_curves(
    path: str | Path, phases: Mapping[str, Sequence[Mapping[str, float]]], **kwargs
) -> Path:
    """Saves :func:`training_curves_figure` (same arguments after ``path``) as a PNG.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    training_curves_figure(phases, **kwargs).savefig(path)
    return path
