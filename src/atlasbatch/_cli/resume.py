"""A run directory's own server and the command that resumes it, for the CLI.

A run's tasks exist only on the server it was started on, so every command on an existing
run directory defaults to that server (and to the limits stored with it), and refuses
another one with the flag to use instead. The resume command names the server, and every
option that shapes the rows, so that it really is "the same command".
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path

from atlasbatch._cli.common import RunRecipe, read_recipe
from atlasbatch._config import PRODUCTION_URL
from atlasbatch._exceptions import RunMismatchError
from atlasbatch._runs.rundir import LEDGER_NAME

__all__ = ["recipe_for_run", "resume_hint", "resume_words"]


def recipe_for_run(args: argparse.Namespace, out_dir: Path | None) -> RunRecipe | None:
    """The recipe of an existing run directory (None for a new one), whose server is the
    default; an explicit ``--base-url`` naming another server is refused with the flag to
    use instead (the run's tasks exist only on its own server)."""
    if out_dir is None or not (out_dir / LEDGER_NAME).is_file():
        return None
    recipe = read_recipe(out_dir)
    given = getattr(args, "base_url", None)
    if recipe is None or given is None:
        return recipe
    # Imported here: it needs httpx, and `status` shows the resume hint without a client.
    from atlasbatch._http.credentials import server_key  # noqa: PLC0415

    if server_key(given) != server_key(recipe.base_url):
        raise RunMismatchError(
            f"{out_dir} holds a run on {recipe.base_url}, not {given}: use "
            f"--base-url {recipe.base_url} (or leave --base-url out: a run directory's own "
            "server is the default), or another run directory"
        )
    args.base_url = None  # the same server, perhaps spelt otherwise: the run's spelling
    return recipe


def resume_words(
    args: argparse.Namespace, *, base_url: str, flags: Sequence[str] = ()
) -> list[str]:
    """The ``atlasbatch fetch`` command line that resumes a run: its target file, run
    directory, server (unless the production one) and the options that shape the rows;
    ``flags`` names the on/off options of ``args`` to repeat when set."""
    words = ["atlasbatch", "fetch", str(args.targets), "--out", str(args.out)]
    if base_url != PRODUCTION_URL:
        words += ["--base-url", base_url]
    for option in ("mjd_min", "mjd_max", "token_file"):
        value = getattr(args, option, None)
        if value is not None:
            words += ["--" + option.replace("_", "-"), str(value)]
    words += ["--" + flag.replace("_", "-") for flag in flags if getattr(args, flag, False)]
    return words


def resume_hint(recipe: RunRecipe | None, out_dir: Path, *, base_url: str | None) -> str:
    """The command that resumes the run in ``out_dir``, as one shell line."""
    if recipe is not None and recipe.resume:
        return shlex.join(recipe.resume)
    targets = recipe.targets if recipe is not None and recipe.targets else "TARGETS"
    words = ["atlasbatch", "fetch", targets, "--out", str(out_dir)]
    if base_url is not None and base_url != PRODUCTION_URL:
        words += ["--base-url", base_url]
    return shlex.join(words)
