"""Light-curve plots: valid PNG files, the right marks, no pyplot state."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from atlasbatch._outputs.plots import _overview_figure, _target_figure, plot_overview, plot_target

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def light_curve(
    filters: str = "ccooH", ujy: tuple[int, ...] = (1228, 20, 800, -41, 570)
) -> pd.DataFrame:
    n = len(filters)
    return pd.DataFrame(
        {
            "MJD": [59226.2 + i for i in range(n)],
            "uJy": pd.array(list(ujy), dtype="Int64"),
            "duJy": pd.array([15, 10, 20, 47, 17][:n], dtype="Int64"),
            "F": pd.array(list(filters), dtype="string"),
        }
    )


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def all_texts(figure: Figure) -> list[str]:
    texts = [t.get_text() for t in figure.texts]
    for axes in figure.axes:
        texts += [t.get_text() for t in axes.texts] + [axes.get_title()]
    return texts


def test_plot_target_writes_a_readable_png_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "SN2023ixf.png"
    plot_target(light_curve(), title="SN2023ixf", path=path)

    assert_png(path)
    assert os.listdir(tmp_path) == ["SN2023ixf.png"]


def legend_labels(figure: Figure) -> list[str]:
    legend = figure.axes[0].get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def test_target_figure_marks_detections_limits_filters_and_axes() -> None:
    figure = _target_figure(light_curve(), title="SN2023ixf", sigma_limit=3.0)
    (axes,) = figure.axes

    assert axes.get_xlabel() == "MJD"
    assert "µJy" in axes.get_ylabel()
    assert axes.get_title() == "SN2023ixf"
    assert legend_labels(figure) == ["c", "c < 3σ", "o", "o < 3σ", "H"]
    # Upper limits: the two non-detections (snr 2 and < 0), triangles at 3 x duJy.
    limits = {str(c.get_label()): c for c in axes.collections if isinstance(c, PathCollection)}
    assert sorted(limits) == ["c < 3σ", "o < 3σ"]
    assert np.asarray(limits["c < 3σ"].get_offsets()) == pytest.approx(np.array([[59227.2, 30.0]]))
    assert np.asarray(limits["o < 3σ"].get_offsets()) == pytest.approx(np.array([[59229.2, 141.0]]))
    assert tuple(np.asarray(limits["c < 3σ"].get_facecolor())[0, :3]) == to_rgb("tab:cyan")
    assert tuple(np.asarray(limits["o < 3σ"].get_facecolor())[0, :3]) == to_rgb("tab:orange")
    # Detections: error bars of duJy, in the filter colours, H-alpha in grey.
    bars = {str(c.get_label()): c for c in axes.containers if isinstance(c, ErrorbarContainer)}
    assert sorted(bars) == ["H", "c", "o"]
    for label, colour, flux in [("c", "tab:cyan", 1228), ("o", "tab:orange", 800)]:
        data_line = bars[label].lines[0]
        assert to_rgb(data_line.get_color()) == to_rgb(colour)
        assert list(np.asarray(data_line.get_ydata())) == [flux]
    assert to_rgb(bars["H"].lines[0].get_color()) == to_rgb("tab:grey")
    zero_lines = [line for line in axes.lines if list(np.asarray(line.get_ydata())) == [0, 0]]
    assert len(zero_lines) == 1


def test_sigma_limit_changes_what_counts_as_a_limit() -> None:
    figure = _target_figure(light_curve(), title="t", sigma_limit=50.0)

    assert legend_labels(figure) == ["c", "c < 50σ", "o < 50σ", "H < 50σ"]  # snr 82 survives


@pytest.mark.parametrize(
    "df",
    [
        light_curve().iloc[0:0],
        pd.DataFrame(),
        light_curve().assign(uJy=pd.array([pd.NA] * 5, dtype="Int64")),
    ],
    ids=["empty", "no-columns", "all-missing"],
)
def test_empty_data_gives_a_no_data_plot(tmp_path: Path, df: pd.DataFrame) -> None:
    assert "no data" in all_texts(_target_figure(df, title="t", sigma_limit=3.0))
    plot_target(df, title="t", path=tmp_path / "t.png")

    assert_png(tmp_path / "t.png")


def test_overview_draws_one_panel_per_target_up_to_the_limit() -> None:
    frames = {f"T{i:02d}": light_curve() for i in range(40)}
    frames["T01"] = light_curve().iloc[0:0]
    figure = _overview_figure(frames, max_panels=36, sigma_limit=3.0)

    titled = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert titled == [f"T{i:02d}" for i in range(36)]
    assert "(36 of 40 targets)" in figure.texts[0].get_text()
    assert "no data" in [t.get_text() for t in figure.axes[1].texts]
    drawn = [a for a in figure.axes if a.get_title() not in ("", "T01")]
    assert all(len(a.containers) == 3 for a in drawn)  # c, o and H detections everywhere


def test_plot_overview_writes_a_png(tmp_path: Path) -> None:
    frames = {f"T{i}": light_curve() for i in range(5)}
    path = tmp_path / "overview.png"
    plot_overview(frames, path=path, max_panels=4)

    assert_png(path)
    assert os.listdir(tmp_path) == ["overview.png"]


def test_overview_of_nothing_says_no_data(tmp_path: Path) -> None:
    assert "no data" in all_texts(_overview_figure({}, max_panels=36, sigma_limit=3.0))
    plot_overview({}, path=tmp_path / "o.png")

    assert_png(tmp_path / "o.png")


def test_plots_from_several_threads_are_all_valid(tmp_path: Path) -> None:
    def draw(i: int) -> Path:
        path = tmp_path / f"t{i}.png"
        plot_target(light_curve(), title=f"t{i}", path=path)
        return path

    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(draw, range(8)))

    for path in paths:
        assert_png(path)
    first = matplotlib.image.imread(paths[0])
    assert np.isfinite(first).all()


def overview_boxes(figure: Figure) -> tuple[Bbox, Bbox, list[Bbox]]:
    """Where the title, the legend and the top panels (with their names) landed, in pixels."""
    FigureCanvasAgg(figure)
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    title = figure.texts[0].get_window_extent(renderer)
    (legend,) = figure.legends
    panels = [
        Bbox.union([axes.get_window_extent(renderer), axes.title.get_window_extent(renderer)])
        for axes in figure.axes
        if axes.get_title()
    ]
    return title, legend.get_window_extent(renderer), panels


@pytest.mark.parametrize("count", [1, 5, 40])
def test_overview_title_legend_and_panels_do_not_overlap(count: int) -> None:
    frames = {f"SN2023ixf-{i}": light_curve() for i in range(count)}
    figure = _overview_figure(frames, max_panels=36, sigma_limit=3.0)
    title, legend, panels = overview_boxes(figure)
    top = figure.bbox.height

    assert title.y1 <= top and legend.y1 <= top
    assert not title.overlaps(legend)
    for panel in panels:
        assert not panel.overlaps(title), panel
        assert not panel.overlaps(legend), panel


def test_overview_legend_names_the_filter_colours_and_marks() -> None:
    figure = _overview_figure({"a": light_curve("cccc", (1228, 20, 800, -41))},
                              max_panels=36, sigma_limit=5.0)  # fmt: skip
    (legend,) = figure.legends

    labels = [t.get_text() for t in legend.get_texts()]
    # c and o always (the survey's filters), other filters only when there are any
    assert labels == ["c (cyan)", "o (orange)", "detection ±1σ", "upper limit (5σ)"]
    colours = [to_rgb(h.get_color()) for h in legend.legend_handles[:2]]  # type: ignore[union-attr]
    assert colours == [to_rgb("tab:cyan"), to_rgb("tab:orange")]
    with_h = _overview_figure({"a": light_curve()}, max_panels=36, sigma_limit=3.0)
    assert [t.get_text() for t in with_h.legends[0].get_texts()][2] == "H (grey)"
    assert _overview_figure({}, max_panels=36, sigma_limit=3.0).legends == []
