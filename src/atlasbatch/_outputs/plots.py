"""Light-curve plots as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas rather than with
pyplot: pyplot keeps global state (the current figure, the chosen backend) that is neither
thread-safe nor ours to change inside a library, and it leaks figures unless closed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import Container
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from atlasbatch._outputs.results import write_atomic

__all__ = ["FILTER_COLOURS", "plot_overview", "plot_target"]

#: The survey's own convention: cyan and orange; any other filter (H-alpha ``H``) in grey.
FILTER_COLOURS: Mapping[str, str] = {"c": "tab:cyan", "o": "tab:orange"}
_OTHER_COLOUR = "tab:grey"
_DPI = 100
# The overview's margins in inches, so that they hold whatever the number of rows: the
# title, the legend under it, and each top panel's name above the panel.
_TITLE_TOP, _LEGEND_TOP, _HEADER, _FOOTER = 0.08, 0.36, 0.95, 0.35
_PANEL_HEIGHT, _PANEL_WIDTH, _MIN_WIDTH = 2.0, 2.6, 6.4


def plot_target(df: pd.DataFrame, *, title: str, path: Path, sigma_limit: float = 3.0) -> None:
    """Write one target's light curve as a PNG: flux (µJy) against MJD, per filter.

    Detections (uJy/duJy >= ``sigma_limit``) get duJy error bars; the others are drawn as
    downward triangles at ``sigma_limit`` x duJy, the upper limit. An empty frame gives a
    plot saying "no data". The file is written atomically.
    """
    _save_png(_target_figure(df, title=title, sigma_limit=sigma_limit), path)


def _target_figure(df: pd.DataFrame, *, title: str, sigma_limit: float) -> Figure:
    figure = Figure(figsize=(8.0, 4.5), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    points = _plottable(df)
    if points.empty:
        _say_no_data(axes)
    else:
        handles = _draw_light_curve(axes, points, sigma_limit=sigma_limit, marker_size=4.0)
        axes.legend(handles=handles, loc="best", fontsize="small")
    axes.set_title(title)
    axes.set_xlabel("MJD")
    axes.set_ylabel("Flux (µJy)")
    return figure


def plot_overview(
    frames: Mapping[str, pd.DataFrame],
    *,
    path: Path,
    max_panels: int = 36,
    sigma_limit: float = 3.0,
) -> None:
    """Write a grid of small light curves, one panel per target, as a PNG.

    Only the first ``max_panels`` targets (in mapping order) are drawn; the figure title
    says how many were left out, and a legend under it gives the filter colours and marks.
    An empty mapping gives a plot saying "no data". The file is written atomically.
    """
    figure = _overview_figure(frames, max_panels=max_panels, sigma_limit=sigma_limit)
    _save_png(figure, path)


def _overview_figure(
    frames: Mapping[str, pd.DataFrame], *, max_panels: int, sigma_limit: float
) -> Figure:
    names = list(frames)[: max(max_panels, 0)]
    ncols = max(1, math.ceil(math.sqrt(len(names))))
    nrows = max(1, math.ceil(len(names) / ncols))
    height = _PANEL_HEIGHT * nrows + _HEADER + _FOOTER - 0.4
    width = max(_PANEL_WIDTH * ncols + 0.4, _MIN_WIDTH)
    figure = Figure(figsize=(width, height), dpi=_DPI)
    panels = list(figure.subplots(nrows, ncols, squeeze=False).flat)
    for axes, name in zip(panels, names, strict=False):
        _draw_panel(axes, frames[name], name=name, sigma_limit=sigma_limit)
    for axes in panels[len(names) :]:
        axes.set_axis_off()
    if not names:
        _say_no_data(panels[0])
    shown = f"({len(names)} of {len(frames)} targets)" if len(frames) > len(names) else ""
    figure.suptitle(
        f"ATLAS forced photometry, µJy vs MJD {shown}".strip(), y=1.0 - _TITLE_TOP / height,
        va="top",
    )  # fmt: skip
    if names:
        bands = _band_order(pd.concat([_plottable(frames[n])["F"] for n in names]))
        _add_legend(figure, bands, sigma_limit=sigma_limit, top=1.0 - _LEGEND_TOP / height)
    # A fixed layout: constrained/tight layout warn (and give up) when panels get crowded.
    figure.subplots_adjust(
        left=0.4 / width, right=1.0 - 0.15 / width, bottom=_FOOTER / height,
        top=1.0 - _HEADER / height, wspace=0.35, hspace=0.55,
    )  # fmt: skip
    return figure


def _add_legend(figure: Figure, bands: list[str], *, sigma_limit: float, top: float) -> None:
    """One legend for every panel: the filter colours (c and o always), then the marks."""
    shown = [*FILTER_COLOURS, *(b for b in bands if b not in FILTER_COLOURS)]
    colours = [FILTER_COLOURS.get(band, _OTHER_COLOUR) for band in shown]
    handles = [
        Line2D([], [], color=colour, marker="s", linestyle="",
               label=f"{band} ({colour.removeprefix('tab:')})")
        for band, colour in zip(shown, colours, strict=True)
    ]  # fmt: skip
    handles += [
        Line2D([], [], color="black", marker="o", markersize=4, linestyle="",
               label="detection ±1σ"),
        Line2D([], [], color="black", marker="v", linestyle="", alpha=0.6,
               label=f"upper limit ({sigma_limit:g}σ)"),
    ]  # fmt: skip
    figure.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, top), ncols=len(handles),
        frameon=False, fontsize="small", handletextpad=0.3, columnspacing=1.2,
    )  # fmt: skip


def _draw_panel(axes: Axes, df: pd.DataFrame, *, name: str, sigma_limit: float) -> None:
    points = _plottable(df)
    if points.empty:
        _say_no_data(axes)
    else:
        _draw_light_curve(axes, points, sigma_limit=sigma_limit, marker_size=2.0)
    axes.set_title(name, fontsize=8)
    axes.tick_params(labelsize=6)
    axes.locator_params(axis="x", nbins=4)  # five-digit MJDs collide in a small panel


def _plottable(df: pd.DataFrame) -> pd.DataFrame:
    """MJD, uJy, duJy as floats and F as text, without the rows that cannot be placed."""
    if not {"MJD", "uJy", "duJy"} <= set(df.columns):
        return pd.DataFrame({"MJD": [], "uJy": [], "duJy": [], "F": []})
    points = pd.DataFrame(
        {
            column: pd.to_numeric(df[column], errors="coerce").astype("float64")
            for column in ("MJD", "uJy", "duJy")
        }
    )
    filters = df["F"] if "F" in df.columns else pd.Series("", index=df.index)
    points["F"] = filters.astype("string").fillna("?").to_numpy(dtype=object)
    # Without duJy a row is neither a detection nor a limit: nothing to draw.
    return points.dropna(subset=["MJD", "uJy", "duJy"])


def _draw_light_curve(
    axes: Axes, points: pd.DataFrame, *, sigma_limit: float, marker_size: float
) -> list[Artist | Container]:
    """Error bars for detections, downward triangles for limits, one colour per filter.

    Returns the artists in legend order: c, o, then other filters, each detections first.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        detected = (points["uJy"] / points["duJy"] >= sigma_limit).to_numpy()
    points = points.assign(detected=detected)
    handles: list[Artist | Container] = []
    for band in _band_order(points["F"]):
        group = points[points["F"] == band]
        colour = FILTER_COLOURS.get(band, _OTHER_COLOUR)
        found, limits = group[group["detected"]], group[~group["detected"]]
        if not found.empty:
            handles.append(
                axes.errorbar(
                    found["MJD"], found["uJy"], yerr=found["duJy"], fmt="o", color=colour,
                    markersize=marker_size, elinewidth=0.6, label=band,
                )
            )  # fmt: skip
        if not limits.empty:
            handles.append(
                axes.scatter(
                    limits["MJD"], sigma_limit * limits["duJy"], marker="v", color=colour,
                    s=marker_size**2 * 2, alpha=0.6, label=f"{band} < {sigma_limit:g}σ",
                )
            )  # fmt: skip
    axes.axhline(0.0, color="black", linewidth=0.6, zorder=0)
    return handles


def _band_order(filters: pd.Series) -> list[str]:
    """The survey's two filters first, in their usual order, then any others sorted."""
    present = set(map(str, filters.unique()))
    return [b for b in FILTER_COLOURS if b in present] + sorted(present - set(FILTER_COLOURS))


def _say_no_data(axes: Axes) -> None:
    axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _save_png(figure: Figure, path: Path) -> None:
    """Render on a private Agg canvas (no global backend switch) and write atomically."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
