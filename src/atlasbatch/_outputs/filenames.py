"""Per-target file names of a run: one file per target, on every file system.

A run writes one light curve (``lightcurves/<stem>.txt``) and one plot
(``plots/<stem>.png``) per target, and for targets that asked, ``images/<stem>.zip`` and
``images/<stem>.jpg``. :class:`FileNames` is built once per run from all its
target names and gives each name its stem:

- a name that is already a portable file name keeps it exactly: ASCII letters, digits,
  space, ``.``, ``_``, ``-`` and ``+``; not starting with ``.``, ``-`` or a space (hidden
  files, shell options), not ending with ``.`` or a space (Windows drops them), not a
  Windows device name (``CON``, ``nul.txt``), at most 80 characters. ``SN 2023ixf`` is
  written to ``lightcurves/SN 2023ixf.txt``;
- any other name is sanitised (every other character becomes ``_``) and gets ``~`` and a
  hash of the exact name: ``M31/V1`` → ``M31_V1~4ffb60b40d``. A plain name never contains
  ``~``, so no target name, however chosen, can take another target's suffixed stem;
- names that differ only in letter case (``Foo``, ``foo``) would share one file on macOS
  and Windows: all of them are suffixed;
- should two suffixed stems collide anyway (a 40-bit hash), those names get the full one.

Spaces are kept because IAU names are written with one (``SN 2023ixf``, ``AT 2024abc``),
every current file system accepts them, and the user looks for the file by the name they
gave; quoting a path in a shell is a smaller cost than guessing what a name became.

Stems are a pure function of the *set* of names (not their order), so a resume with the
same target list finds the same files. Adding names can only turn a plain stem into a
suffixed one (a new case-variant) and never gives a new name a stem an earlier file has.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atlasbatch._ledger.ledger import Ledger

__all__ = ["IMAGE_DIR", "LIGHTCURVE_DIR", "PLOT_DIR", "FileNames", "is_plain_name"]

LIGHTCURVE_DIR = "lightcurves"
PLOT_DIR = "plots"
IMAGE_DIR = "images"
_MAX_STEM = 80
_SHORT_HASH = 10
_SEPARATOR = "~"  # outside the plain alphabet: a plain name never looks suffixed
_PLAIN = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9 ._+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._+-]")
# Device names Windows refuses as a file's base name (the part before the first dot),
# whatever the extension; COM0/LPT0 are refused by some versions too.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}
)


def is_plain_name(name: str) -> bool:
    """True when ``name`` is already a safe, portable file stem (see the module docstring)."""
    return (
        _PLAIN.fullmatch(name) is not None
        and len(name) <= _MAX_STEM
        and not name.endswith((".", " "))
        and not _is_reserved(name)
    )


def _is_reserved(stem: str) -> bool:
    # Windows also ignores trailing spaces before the extension: "CON .txt" is CON.
    return stem.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED


def _sanitised(name: str) -> str:
    """``name`` with every unsafe character replaced: the readable part of a suffixed stem."""
    stem = _UNSAFE.sub("_", name)[:_MAX_STEM]
    stem = re.sub(r"^[. -]", "_", stem)  # hidden files, "..", options, invisible blanks
    stem = re.sub(r"[. ]$", "_", stem)  # Windows silently drops a trailing dot or space
    if not stem:
        return "_"  # "~abc" would be read as a user's home directory by a shell
    return f"_{stem}" if _is_reserved(stem) else stem


class FileNames:
    """The file stem of every target name of one run: one-to-one and case-insensitively unique.

    Build it from all the run's names (duplicates are fine); :meth:`stem` then answers for
    any of them. See the module docstring for the rules.

    Memory is flat in the number of names (issue 12: a dict of 100,000 names and the rows
    they came from cost the CLI 50 MB at the start of a run): only the names whose stem is
    not the name itself are kept as text; the others are known by a sorted array of their
    hashes (8 bytes a name), which is all :meth:`stem`'s check of membership needs.
    """

    def __init__(self, names: Iterable[str]) -> None:
        # Read twice (see _build): a one-shot iterator is listed first.
        again = list(names) if isinstance(names, Iterator) else names
        self._members, self._stems = _build(again)

    @classmethod
    def of_ledger(cls, ledger: Ledger) -> FileNames:
        """The stems of a run's valid rows (invalid rows never have files), read from the
        ledger one name at a time."""
        return cls(_Reread(ledger.iter_valid_names))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = hash(name)
        at = bisect.bisect_left(self._members, key)
        return at < len(self._members) and self._members[at] == key

    def stem(self, name: str) -> str:
        """The file stem of ``name``; ``KeyError`` for a name that is not in the run."""
        if (stem := self._stems.get(name)) is not None:
            return stem
        if name in self:  # a plain name no other name shares a case-fold with
            return name
        raise KeyError(f"target name {name!r} is not one of this run's names")

    def lightcurve(self, name: str) -> PurePosixPath:
        """``lightcurves/<stem>.txt``, relative to the run directory."""
        return PurePosixPath(LIGHTCURVE_DIR, f"{self.stem(name)}.txt")

    def plot(self, name: str) -> PurePosixPath:
        """``plots/<stem>.png``, relative to the run directory."""
        return PurePosixPath(PLOT_DIR, f"{self.stem(name)}.png")

    def images(self, name: str) -> PurePosixPath:
        """``images/<stem>.zip`` (image stamps), relative to the run directory."""
        return PurePosixPath(IMAGE_DIR, f"{self.stem(name)}.zip")

    def preview(self, name: str) -> PurePosixPath:
        """``images/<stem>.jpg`` (the server's preview), relative to the run directory."""
        return PurePosixPath(IMAGE_DIR, f"{self.stem(name)}.jpg")


class _Reread(Iterable[str]):
    """An iterable that asks ``source`` for a fresh iterator each time it is read."""

    def __init__(self, source: Callable[[], Iterator[str]]) -> None:
        self._source = source

    def __iter__(self) -> Iterator[str]:
        return self._source()


def _build(names: Iterable[str]) -> tuple[array[int], dict[str, str]]:
    """Two passes over ``names``: the hashes of every name and of its case-fold, then the
    names that get a suffix (not plain, or sharing a case-fold with another name). Returns
    the sorted hashes of the distinct names and the stems of the suffixed ones."""
    own, fold = array("q"), array("q")
    for name in names:
        own.append(hash(name))
        fold.append(hash(name.casefold()))
    members = array("q", (h for h, _ in itertools.groupby(sorted(own))))
    del own
    ordered = sorted(fold)
    del fold
    shared = {a for a, b in itertools.pairwise(ordered) if a == b}
    del ordered
    # Case-folds seen twice: the same name twice (duplicate rows), two names that differ
    # in case, or two case-folds with one hash. Their texts decide.
    by_fold: defaultdict[str, set[str]] = defaultdict(set)
    suffixed: set[str] = set()
    for name in names:
        if hash(name.casefold()) in shared:
            by_fold[name.casefold()].add(name)
        elif not is_plain_name(name):
            suffixed.add(name)
    for group in by_fold.values():
        suffixed.update(n for n in group if len(group) > 1 or not is_plain_name(n))
    return members, _suffixed_stems(sorted(suffixed))


def _suffixed_stems(names: Iterable[str]) -> dict[str, str]:
    """``<sanitised>~<hash>``; names whose short stems collide (casefold) get the full hash."""
    stems = {name: _suffixed(name, _SHORT_HASH) for name in names}
    holders: defaultdict[str, list[str]] = defaultdict(list)
    for name, stem in stems.items():
        holders[stem.casefold()].append(name)
    for group in holders.values():
        if len(group) > 1:
            stems.update((name, _suffixed(name, None)) for name in group)
    return stems


def _suffixed(name: str, hash_chars: int | None) -> str:
    # surrogatepass: a name read with errors="surrogateescape" still has one exact hash.
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_sanitised(name)}{_SEPARATOR}{digest[:hash_chars]}"
