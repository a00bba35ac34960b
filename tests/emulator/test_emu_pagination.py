"""DRF cursor pagination over plain rows (ports PaginationTests with tied ordering values)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from atlasbatch.testing._web.pagination import InvalidCursorError, Page, paginate

BASE = "http://127.0.0.1:1/forcedphot/queue/?ordering=timestamp&pagesize=5"


@dataclass(frozen=True)
class Row:
    id: int
    stamp: int


def _page(rows: list[Row], url: str, *, size: int = 5, descending: bool = False) -> Page[Row]:
    cursor = None
    if "cursor=" in url:
        cursor = url.split("cursor=")[1].split("&", maxsplit=1)[0].replace("%3D", "=")
    return paginate(
        rows,
        key=lambda r: str(r.stamp),
        compare=float,
        descending=descending,
        size=size,
        base_url=url.split("?", maxsplit=1)[0]
        + "?"
        + "&".join(p for p in url.split("?")[1].split("&") if not p.startswith("cursor=")),
        cursor=cursor,
    )


@pytest.mark.parametrize("descending", [False, True])
def test_three_tied_batches_walk_forward_and_back(descending: bool) -> None:
    rows = [Row(batch * 9 + i + 1, batch) for batch in range(3) for i in range(9)]
    rows.sort(key=lambda r: (r.stamp, r.id), reverse=descending)
    pages = [_page(rows, BASE, descending=descending)]
    while pages[-1].next:
        pages.append(_page(rows, pages[-1].next, descending=descending))
    seen: list[int] = []
    for page in pages:
        assert page.first_position == len(seen)
        seen.extend(r.id for r in page.items)
    assert seen == [r.id for r in rows]
    page = pages[-1]
    for _ in range(20):
        if page.previous is None:
            break
        page = _page(rows, page.previous, descending=descending)
        ids = [r.id for r in page.items]
        assert ids
        start = seen.index(ids[0])
        assert seen[start : start + len(ids)] == ids
        assert page.first_position == start
    assert page.items[0].id == seen[0]


def test_bad_cursor_is_rejected() -> None:
    with pytest.raises(InvalidCursorError):
        paginate([Row(1, 1)], key=lambda r: str(r.id), compare=float, descending=False, size=5,
                 base_url=BASE, cursor="cD1hYmM=")  # p=abc  # fmt: skip
