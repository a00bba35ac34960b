"""Commands that need no table start without pandas, pyarrow, astropy or matplotlib.

Each check runs in a fresh interpreter (what a user's shell starts) and reads that
interpreter's ``sys.modules`` after the command: ``atlasbatch --help``, ``status``, ``login``,
``cancel`` and ``cleanup`` of a run with nothing to add to its table, and ``import atlasbatch``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pandas as pd
import pytest

from atlasbatch import Session
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets

Factory = Callable[..., Emulator]
HEAVY = ("pandas", "pyarrow", "numpy", "astropy", "matplotlib")
PROBE = """
import json, sys
from atlasbatch.cli import main
code = main(sys.argv[2:])
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
with open(sys.argv[1], "w") as handle:
    json.dump({{"code": code, "heavy": heavy}}, handle)
"""


def run_cli(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """``atlasbatch ARGV`` in a fresh interpreter: its exit code and the heavy modules it
    imported."""
    report = tmp_path / "probe.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(report), *argv],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert report.exists(), done.stderr
    result: dict[str, object] = json.loads(report.read_text())
    result["stderr"] = done.stderr
    return result


def test_import_atlasbatch_is_cheap() -> None:
    code = "import sys, atlasbatch; print(sorted(m for m in sys.modules if m.split('.')[0] in {}))"
    out = subprocess.run(
        [sys.executable, "-c", code.format(set(HEAVY) | {"httpx", "rich"})],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert out.strip() == "[]"


def test_public_names_stay_where_they_are() -> None:
    import atlasbatch  # noqa: PLC0415 - the point of the test

    for name in atlasbatch.__all__:
        assert getattr(atlasbatch, name) is not None, name
    assert set(atlasbatch.__all__) <= set(dir(atlasbatch))
    with pytest.raises(AttributeError):
        _ = atlasbatch.no_such_name


def test_help_and_version_import_nothing_heavy(tmp_path: Path) -> None:
    for argv in (["--help"], ["--version"], ["fetch", "--help"]):
        result = run_cli(tmp_path, *argv)
        assert result["code"] == 0, result["stderr"]
        assert result["heavy"] == [], argv


def test_login_imports_nothing_heavy(atlas_emulator: Emulator, tmp_path: Path) -> None:
    atlas_emulator.add_user("carol", "pw-of-carol")
    env = {"ATLAS_USERNAME": "carol", "ATLAS_PASSWORD": "pw-of-carol"}
    result = run_cli(tmp_path, "login", "--base-url", atlas_emulator.base_url, env=env)
    assert result["code"] == 0, result["stderr"]
    assert result["heavy"] == []


async def start_run(emu: Emulator, out: Path, count: int) -> None:
    """A run whose tasks are all queued or running on the server when it stops."""
    async with Session(token=emu.token, settings=client_settings(emu)) as session:

        async def consume() -> None:
            async for _ in session.fetch(grid_targets(count), out_dir=out):
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for _ in range(1500):  # 30 s at most
                if emu.stats()["tasks_created"] >= count:
                    break
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    assert emu.stats()["tasks_created"] == count


@pytest.mark.anyio
async def test_status_cancel_and_cleanup_import_nothing_heavy(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    # Long tasks, one at a time: nothing finishes, so there is nothing to add to a table.
    emu = atlas_emulator_factory(**fast(task_seconds=60.0, user_slots=1))
    out = tmp_path / "run"
    await start_run(emu, out, 4)
    env = {"ATLAS_TOKEN": emu.token}

    status = await anyio.to_thread.run_sync(lambda: run_cli(tmp_path, "status", str(out), env=env))
    assert status["heavy"] == [], status["stderr"]
    cancel = await anyio.to_thread.run_sync(lambda: run_cli(tmp_path, "cancel", str(out), env=env))
    assert cancel["heavy"] == [], cancel["stderr"]
    assert emu.stats()["tasks_live"] == 0  # the command did its work
    cleanup = await anyio.to_thread.run_sync(
        lambda: run_cli(tmp_path, "cleanup", str(out), env=env)
    )
    assert cleanup["heavy"] == [], cleanup["stderr"]
    assert list(pd.read_csv(out / "outcomes.csv")["state"]) == ["cancelled"] * 4
    assert not (out / "photometry.parquet").exists()  # no light curve: no table


ARROW_PROBE = """
import contextlib, io, sys
from atlasbatch.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--version"])
assert "pyarrow" not in sys.modules
import pyarrow
print(pyarrow.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize(("chosen", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_command_line_gives_arrow_the_system_allocator(
    chosen: str | None, expected: str
) -> None:
    """Arrow's own allocator keeps freed memory per thread (issue 12): the command line's
    tables use the C library's, unless the user chose one."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    done = subprocess.run([sys.executable, "-c", ARROW_PROBE], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert done.stdout.strip() == expected
