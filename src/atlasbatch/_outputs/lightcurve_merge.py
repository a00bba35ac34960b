"""Merging a downloaded light curve into the stored one, for ``fetch --since-last``.

:class:`MergingSaver` is the pipeline's result saver for a refresh: it merges a downloaded
file into the stored one line by line (the server's own format, bytes kept as they were),
de-duplicating on (MJD, Obs) with the new row winning, sorted by MJD. Merging is idempotent,
so a crash between writing a merged file and recording it costs nothing on resume.
:func:`stored_last_mjd` reads where a stored light curve ends (a refresh asks from there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._models import Target
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.results import parse_result, write_atomic

if TYPE_CHECKING:  # imported where files are merged: `status` and `cancel` need no pandas
    import pandas as pd

__all__ = ["MergingSaver", "lightcurve_path", "merge_result_text", "stored_last_mjd"]

_LINE = "_line"


def lightcurve_path(out_dir: Path, name: str, names: FileNames) -> Path:
    """Where a target's light curve lives (the pipeline's default saver uses the same)."""
    return out_dir / names.lightcurve(name)


def stored_last_mjd(path: Path) -> float | None:
    """The last MJD of a stored light curve, or None when there is none (or it is unusable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or not lines[0].startswith("###"):
        return None
    names = lines[0][3:].split()
    if "MJD" not in names:
        return None
    column = names.index("MJD")
    latest: float | None = None
    for line in lines[1:]:
        fields = line.split()
        try:
            value = float(fields[column])
        except (IndexError, ValueError):
            continue
        if math.isfinite(value):
            latest = value if latest is None else max(latest, value)
    return latest


def _rows(text: str, source: str) -> tuple[list[str], list[str], pd.DataFrame]:
    """(header names, data lines, parsed frame) of a result file; rows align with lines."""
    frame = parse_result(text, source=source)
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or not lines[0].startswith("###"):
        return [], [], frame
    data = [line for line in lines[1:] if line.strip()]
    return lines[0][3:].split(), data, frame


def _keyed(frame: pd.DataFrame, lines: list[str]) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 - see the import block

    keys = frame[["MJD"]].copy()
    keys["Obs"] = frame["Obs"] if "Obs" in frame.columns else pd.NA
    keys[_LINE] = lines
    return keys


def _rerender(lines: list[str], names: Sequence[str], union: Sequence[str]) -> list[str]:
    """Rows of a file with header ``names`` rewritten for the header ``union``."""
    out = []
    for line in lines:
        values = dict(zip(names, line.split(), strict=False))
        out.append(" ".join(values.get(name, "nan") for name in union))
    return out


def merge_result_text(old: str, new: str, *, source: str = "result") -> str:
    """Merge two result files of one target: de-duplicated on (MJD, Obs), sorted by MJD.

    Rows keep their exact text. When the headers differ (a newer server writes ``PA_DEG``),
    the merged file has the new header plus any column only the old one had, and missing
    values are written as ``nan``.
    """
    from atlasbatch._science.photometry import merge_new_epochs  # noqa: PLC0415

    old_names, old_lines, old_frame = _rows(old, f"{source} (stored)")
    new_names, new_lines, new_frame = _rows(new, source)
    if not old_lines:
        return new
    if not new_names:  # an empty download: nothing to add
        return old
    union = [*new_names, *(n for n in old_names if n not in new_names)]
    if union != old_names:
        old_lines = _rerender(old_lines, old_names, union)
    if union != new_names:
        new_lines = _rerender(new_lines, new_names, union)
    merged = merge_new_epochs(_keyed(old_frame, old_lines), _keyed(new_frame, new_lines))
    header = new.splitlines()[0] if union == new_names else "###" + " ".join(union)
    return "\n".join([header, *merged[_LINE].tolist()]) + "\n"


class MergingSaver:
    """The result saver of a refresh: merges each download into the stored light curve.

    ``names`` are the run's file names (:meth:`FileNames.of_ledger`).
    """

    def __init__(self, out_dir: Path, *, names: FileNames) -> None:
        self.out_dir = out_dir
        self.names = names

    def __call__(self, target: Target, data: bytes) -> str:
        path = lightcurve_path(self.out_dir, target.name, self.names)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = data.decode("utf-8", "replace")
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        merged = merge_result_text(old, new, source=str(path.relative_to(self.out_dir)))
        write_atomic(path, merged.encode("utf-8"))
        return str(path.relative_to(self.out_dir))

    def merge_back(self, path: Path, old: bytes) -> None:
        """Put rows of an older copy back into ``path`` (after a plain overwrite)."""
        merged = merge_result_text(old.decode("utf-8", "replace"), path.read_text("utf-8"))
        write_atomic(path, merged.encode("utf-8"))
