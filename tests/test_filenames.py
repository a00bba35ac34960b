"""File names of a run's per-target files: one-to-one, case-insensitively unique, portable."""

from __future__ import annotations

import re
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlasbatch import Session, read_targets
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs import filenames as _filenames
from atlasbatch._outputs.filenames import FileNames, is_plain_name
from atlasbatch._runs.finish import OutputOptions, write_outputs
from atlasbatch._runs.rundir import open_run, record_targets
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast

# What a stem may contain, and what it may not start or end with (hidden files, options,
# "~user" expansion, blanks and dots Windows drops).
SAFE_STEM = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9 ._+~-]*(?<![ .])")
RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9]) *", re.IGNORECASE)
MAX_STEM = 80 + 1 + 64

# Names as astronomers write them, and names built to look like other names' stems.
names_strategy = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="aAbB _.-+~/", max_size=12),
        st.sampled_from(["SN 2023ixf", "sn 2023IXF", "CON", "con.txt", "-1", "=1+1", ""]),
    ),
    max_size=25,
)


def assert_portable(stem: str) -> None:
    assert SAFE_STEM.fullmatch(stem), stem
    assert len(stem) <= MAX_STEM
    assert not RESERVED.fullmatch(stem.split(".", 1)[0])


@pytest.mark.parametrize(
    "name",
    [
        "SN 2023ixf",
        "SN2011fe",
        "ZTF21aaaaaaa",
        "2023ixf",
        "C_2020_F3.v2+x-1",
        "+12",
        "a b",
        "x" * 80,
    ],
)
def test_a_portable_name_keeps_its_name_exactly(name: str) -> None:
    names = FileNames([name, "other"])

    assert names.stem(name) == name
    assert names.lightcurve(name) == PurePosixPath("lightcurves", f"{name}.txt")
    assert names.plot(name) == PurePosixPath("plots", f"{name}.png")


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "-rf", " lead", "trail ", "name.", "CON", "nul.txt", "Com1",
     "CON .txt", "lpt9.x", "a/b", "a\\b", "a:b", "a~b", "é", "x" * 81, '=HYPERLINK("x")', "-1",
     "a\tb"],
)  # fmt: skip
def test_any_other_name_is_sanitised_and_suffixed_with_a_hash(name: str) -> None:
    stem = FileNames([name]).stem(name)

    assert not is_plain_name(name)
    assert stem != name
    assert_portable(stem)
    assert re.fullmatch(r"[^~]+~[0-9a-f]{10}", stem)


def test_a_sanitised_name_keeps_its_readable_part() -> None:
    assert FileNames(["M31/V1"]).stem("M31/V1").startswith("M31_V1~")
    assert FileNames(["CON.x/y"]).stem("CON.x/y").startswith("_CON.x_y~")  # still no device


def test_names_differing_only_in_case_are_all_suffixed() -> None:
    names = FileNames(["Foo", "foo", "FOO", "bar"])

    stems = [names.stem(n) for n in ("Foo", "foo", "FOO")]
    assert all(re.fullmatch(r"(Foo|foo|FOO)~[0-9a-f]{10}", s) for s in stems)
    assert len({s.casefold() for s in stems}) == 3
    assert names.stem("bar") == "bar"
    assert FileNames(["Foo"]).stem("Foo") == "Foo"  # alone, it keeps its name


def test_a_name_spelling_another_names_stem_gets_its_own() -> None:
    taken = FileNames(["a/b"]).stem("a/b")
    names = FileNames(["a/b", taken, "a b", "a_b"])

    assert names.stem("a/b") == taken
    assert names.stem(taken) != taken  # "~" is never plain: it cannot take a suffixed stem
    assert names.stem("a b") == "a b"
    assert names.stem("a_b") == "a_b"


def test_short_hash_collisions_fall_back_to_the_full_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_filenames, "_SHORT_HASH", 1)  # 16 values: collisions guaranteed
    raw = [f"t{c}" for c in "/:\\*?<>|!#$%&()[]{};,=@^`'\""]  # all sanitised to "t_"

    names = FileNames(raw)

    stems = [names.stem(n) for n in raw]
    assert len({s.casefold() for s in stems}) == len(raw)
    assert any(re.fullmatch(r"t_~[0-9a-f]{64}", s) for s in stems)


def test_a_name_not_in_the_run_is_refused() -> None:
    with pytest.raises(KeyError, match="not one of this run's names"):
        FileNames(["a"]).stem("b")


@given(names_strategy)
def test_stems_are_one_to_one_casefold_unique_and_portable(raw: list[str]) -> None:
    names = FileNames(raw)
    distinct = set(raw)

    stems = {name: names.stem(name) for name in distinct}

    assert len({stem.casefold() for stem in stems.values()}) == len(distinct)
    folds = Counter(name.casefold() for name in distinct)
    for name, stem in stems.items():
        assert_portable(stem)
        alone = folds[name.casefold()] == 1
        assert (stem == name) is (is_plain_name(name) and alone)


@given(names_strategy, st.randoms())
def test_stems_depend_on_the_set_of_names_not_their_order(raw: list[str], rng: Random) -> None:
    shuffled = [*raw, *raw[:3]]
    rng.shuffle(shuffled)

    first, again = FileNames(raw), FileNames(shuffled)

    assert all(first.stem(n) == again.stem(n) for n in raw)


@given(names_strategy, names_strategy)
def test_added_names_never_take_a_stem_an_earlier_run_wrote(old: list[str], new: list[str]) -> None:
    before, after = FileNames(old), FileNames([*old, *new])

    written = {before.stem(n).casefold(): n for n in old}  # files an earlier run left

    for name in set(new) - set(old):
        assert written.get(after.stem(name).casefold(), name) == name


@given(st.text(max_size=40))
def test_a_plain_name_keeps_its_name_when_alone(name: str) -> None:
    stem = FileNames([name]).stem(name)

    assert (stem == name) is is_plain_name(name)


# --- end to end: a library run over loopback ---------------------------------------------

CASE_NAMES = ["Foo", "foo", "FOO", "SN 2023ixf", "a/b", "x" * 90, "bar"]


@pytest.mark.anyio
async def test_a_run_names_light_curves_and_plots_by_the_runs_file_names(
    atlas_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01))
    rows = [{"name": name, "ra": 30.0 + i, "dec": 5.0, "mjd_min": 60000, "mjd_max": 60030}
            for i, name in enumerate(CASE_NAMES)]  # fmt: skip
    out = tmp_path / "run"
    expected = FileNames(CASE_NAMES)

    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(rows, out_dir=out)
    with open_run(out, base_url=emu.base_url) as ledger:
        write_outputs(ledger, out, server=emu.base_url, options=OutputOptions(parquet=False))

    assert report.ok
    paths = {o.target.name: o.path for o in report.outcomes}
    assert paths == {name: str(expected.lightcurve(name)) for name in CASE_NAMES}
    files = [p.name for p in (out / "lightcurves").iterdir()]
    assert len({f.casefold() for f in files}) == len(CASE_NAMES)  # even on macOS or Windows
    assert paths["SN 2023ixf"] == "lightcurves/SN 2023ixf.txt"
    plots = sorted(p.relative_to(out).as_posix() for p in (out / "plots").iterdir())
    assert plots == sorted(str(expected.plot(name)) for name in CASE_NAMES)


# --- a run's names, read from its ledger (issue 12) ----------------------------------------

LEDGER_NAMES = ["SN 2023ixf", "M31/V1", "Foo", "foo", "plain", "plain", "CON", "a b", "é/x"]


def recorded(tmp_path: Path, names: list[str], *, bad: int = 0) -> Ledger:
    """A ledger holding ``names`` (a repeated name: a duplicate row of its first position)
    and ``bad`` invalid rows."""
    first = {n: 10.0 + k for k, n in reversed(list(enumerate(names)))}
    rows = [{"name": n, "ra": first[n], "dec": 5.0} for n in names]
    rows += [{"name": f"bad{k}", "ra": 999.0, "dec": 5.0} for k in range(bad)]
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    record_targets(ledger, read_targets(rows, keep_going=True))
    return ledger


def test_a_ledger_gives_the_stems_its_names_give(tmp_path: Path) -> None:
    ledger = recorded(tmp_path, LEDGER_NAMES, bad=2)
    from_ledger, from_list = FileNames.of_ledger(ledger), FileNames(LEDGER_NAMES)

    assert {n: from_ledger.stem(n) for n in LEDGER_NAMES} == {
        n: from_list.stem(n) for n in LEDGER_NAMES
    }
    assert from_ledger.stem("Foo") != "Foo"  # a case-variant is in the run: both suffixed
    assert from_ledger.stem("plain") == "plain"  # a duplicate row is not a second name
    assert "bad0" not in from_ledger  # invalid rows never have files
    with pytest.raises(KeyError, match="not one of this run's names"):
        from_ledger.stem("bad0")


def test_a_ledger_of_many_names_is_read_in_a_few_bytes_each(tmp_path: Path) -> None:
    count = 20_000
    names = [f"t{i:06d}" if i % 100 else f"t/{i}" for i in range(count)]
    ledger = recorded(tmp_path, names)

    tracemalloc.start()
    try:
        found = FileNames.of_ledger(ledger)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert found.stem("t000001") == "t000001"
    assert found.stem("t/100").startswith("t_100~")
    # Was a dict of every name after a list of every row: ~96 bytes held, ~490 at the peak.
    assert held < 30 * count, held
    assert peak < 150 * count, peak
