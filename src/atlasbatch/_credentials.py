"""Where the API token comes from: --token-file, $ATLAS_TOKEN, or the stored login.

``atlasbatch login`` stores the token in the user's config directory (platformdirs) with
mode 0600. The token is a secret: it is never printed, logged, or put in an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from atlasbatch._exceptions import InputError

__all__ = ["TOKEN_ENV", "resolve_token", "store_token", "token_path"]

TOKEN_ENV = "ATLAS_TOKEN"
_HOW = (
    "run `atlasbatch login`, or set ATLAS_TOKEN, or pass --token-file FILE "
    "(the token is on your account page at /forcedphot/apitoken/)"
)


def token_path() -> Path:
    """The stored token's file (override the folder with $ATLASBATCH_CONFIG_DIR)."""
    folder = os.environ.get("ATLASBATCH_CONFIG_DIR") or platformdirs.user_config_dir("atlasbatch")
    return Path(folder) / "token"


def _read(path: Path, *, what: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}; {_HOW}") from None
    if not token:
        raise InputError(f"the {what} {path} is empty; {_HOW}")
    return token


def resolve_token(token_file: str | None = None) -> str:
    """The token to use, by precedence; a clear sentence when there is none."""
    if token_file:
        return _read(Path(token_file), what="token file")
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    stored = token_path()
    if stored.exists():
        return _read(stored, what="stored token")
    raise InputError(f"no ATLAS API token found: {_HOW}")


def store_token(token: str) -> Path:
    """Save the token for later runs, readable by this user only."""
    path = token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.tmp")
    # Created 0600 from the first byte: a copy made with the umask would be readable by others.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, token.encode("utf-8") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temp, 0o600)  # an older temp file may have had other bits
    os.replace(temp, path)
    return path
