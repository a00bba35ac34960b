"""The API token: where it comes from, what a usable one looks like, which server it is for.

Precedence: ``--token-file``, then ``$ATLAS_TOKEN``, then the token ``atlasbatch login``
stored for *this* server. Every token goes through :func:`check_token` before it is used:
a token with a line break or a space inside would otherwise reach httpx, whose "illegal
header value" error quotes the header, token and all.

``atlasbatch login`` keeps one token per server in ``tokens.json`` (a JSON object, server
base URL → token) in the config folder (``$ATLASBATCH_CONFIG_DIR``, else platformdirs),
created 0600. A stored token is used only for the server it came from: a token obtained
from a test server (the emulator on 127.0.0.1) is never sent to production, nor the other
way round. Earlier versions stored a bare token in the plain-text file ``token``; such a
file is still read, as the token for the production server, and is folded into
``tokens.json`` (then removed) at the next ``login``.

The token is a secret: it is never printed, logged, or put in an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import httpx
import platformdirs

from atlasbatch._config import PRODUCTION_URL
from atlasbatch._exceptions import InputError

__all__ = [
    "TOKEN_ENV",
    "check_token",
    "legacy_token_path",
    "resolve_token",
    "server_key",
    "store_token",
    "tokens_path",
]

TOKEN_ENV = "ATLAS_TOKEN"
_TOKENS_FILE = "tokens.json"
_LEGACY_FILE = "token"
_MAX_CHARS = 1024  # real tokens have 40; anything this long is a wrong file, not a token
_HOW = (
    "run `atlasbatch login`, or set ATLAS_TOKEN, or pass --token-file FILE "
    "(the token is on your account page at /forcedphot/apitoken/)"
)


# --- what a usable token looks like ---------------------------------------------------------


def _flaw(token: str) -> str | None:
    """What is wrong with a stripped token, in words that quote none of it; None if usable."""
    if not token:
        return "is empty"
    if "\n" in token or "\r" in token:
        return "contains a line break (a token is one line: 40 hexadecimal characters)"
    if " " in token:
        return "contains a space"
    if "\t" in token:
        return "contains a tab"
    if not token.isascii():
        return "contains a non-ASCII character"
    if not token.isprintable():
        return "contains a control character"
    if len(token) > _MAX_CHARS:
        return f"is {len(token)} characters long (an ATLAS token has 40)"
    return None


def check_token(token: str, *, source: str = "passed as token=…") -> str:
    """The token without surrounding whitespace, if it can go into a header; else InputError.

    A trailing newline (as a token file usually has) is stripped. What remains must be a
    non-empty run of printable ASCII with no whitespace: the real server's tokens are 40 hex
    characters, other printable tokens (the emulator's) are accepted as they are. ``source``
    says where the token came from ("from $ATLAS_TOKEN"); the error message names it and
    never any part of the token.
    """
    stripped = token.strip()
    flaw = _flaw(stripped)
    if flaw is not None:
        raise InputError(f"the token {source} {flaw}; nothing was sent")
    return stripped


# --- where tokens are stored ------------------------------------------------------------------


def _config_dir() -> Path:
    return Path(
        os.environ.get("ATLASBATCH_CONFIG_DIR") or platformdirs.user_config_dir("atlasbatch")
    )


def tokens_path() -> Path:
    """``tokens.json``, the stored tokens by server (folder: $ATLASBATCH_CONFIG_DIR)."""
    return _config_dir() / _TOKENS_FILE


def legacy_token_path() -> Path:
    """``token``, the bare token older versions stored (read as production's)."""
    return _config_dir() / _LEGACY_FILE


def server_key(base_url: str) -> str:
    """A server's base URL as stored: scheme and host lower-cased, default port and
    trailing slash dropped, so that spellings of one server share one token."""
    once = str(httpx.URL(base_url.strip()))
    # Parsed twice: httpx drops a default port (HTTPS://host:443) only for a lower-case scheme.
    return str(httpx.URL(once)).rstrip("/")


def _read_text(path: Path, *, what: str) -> str:
    """A small text file; undecodable bytes become U+FFFD (refused later, never quoted)."""
    try:
        with path.open("rb") as handle:
            # Bounded: --token-file pointed at a huge file (or /dev/zero) must not hang.
            data = handle.read(_MAX_CHARS * 4 + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}; {_HOW}") from None
    # utf-8-sig: a byte-order mark left by a Windows editor is not part of the token.
    return data.decode("utf-8-sig", errors="replace")


def _read_stored() -> dict[str, str]:
    """The stored tokens by server key; {} when ``login`` never ran (the new way)."""
    path = tokens_path()
    if not path.exists():
        return {}
    try:
        raw = json.loads(_read_text(path, what="stored tokens file"))
    except ValueError:
        raw = None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        # The decoder's message is not shown: it may quote the file, tokens and all.
        raise InputError(
            f"the stored tokens file {path} is damaged; delete it and run `atlasbatch login`"
        )
    return {server_key(server): token for server, token in raw.items()}


def _legacy_token() -> str | None:
    """The old plain-text token, unchecked (None when there is no such file)."""
    path = legacy_token_path()
    return _read_text(path, what="stored token file") if path.exists() else None


# --- choosing the token -----------------------------------------------------------------------


def _stored_for(server: str) -> str | None:
    """The stored token for ``server``; refuses when only other servers have one."""
    key = server_key(server)
    stored = _read_stored()
    if key in stored:
        return check_token(stored[key], source=f"stored for {key} in {tokens_path()}")
    legacy = _legacy_token()
    if legacy is not None:
        if key == server_key(PRODUCTION_URL):
            return check_token(legacy, source=f"stored in {legacy_token_path()}")
        stored.setdefault(server_key(PRODUCTION_URL), legacy)
    if not stored:
        return None
    servers = " and ".join(sorted(stored))
    which = "token is" if len(stored) == 1 else "tokens are"
    raise InputError(
        f"the stored {which} for {servers}, not {key}; run "
        f"`atlasbatch login --base-url {key}` or pass --token-file (nothing was sent)"
    )


def resolve_token(token_file: str | None = None, *, server: str) -> str:
    """The token to send to ``server`` (its base URL), by precedence, checked.

    ``--token-file`` and ``$ATLAS_TOKEN`` are the user's explicit choice and are used for
    any server; a stored token only for the server it was obtained from. An empty
    ``$ATLAS_TOKEN`` counts as unset (as in ``ATLAS_TOKEN= atlasbatch …``).
    """
    if token_file:
        text = _read_text(Path(token_file), what="token file")
        return check_token(text, source=f"from --token-file {token_file}")
    from_env = os.environ.get(TOKEN_ENV, "")
    if from_env:
        return check_token(from_env, source=f"from ${TOKEN_ENV}")
    stored = _stored_for(server)
    if stored is not None:
        return stored
    raise InputError(f"no ATLAS API token found: {_HOW}")


# --- storing --------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a file that was 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # mkstemp creates the file 0600 (whatever the umask) under a fresh name: no window in
    # which a copy made with the umask, or an older too-open file, holds the token.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def store_token(token: str, *, server: str) -> Path:
    """Save ``token`` as the one for ``server``, next to the other servers' tokens (0600).

    An old plain-text token file is folded in as production's token (unless production
    gets a new one now) and removed, so that one file holds every stored token.
    """
    key = server_key(server)
    token = check_token(token, source=f"as received from {key}")
    stored = _read_stored()
    legacy = _legacy_token()
    production = server_key(PRODUCTION_URL)
    if legacy is not None and production not in stored:
        with contextlib.suppress(InputError):  # an unusable old token is simply dropped
            stored[production] = check_token(legacy, source=f"in {legacy_token_path()}")
    stored[key] = token
    path = tokens_path()
    text = json.dumps(stored, indent=2, sort_keys=True) + "\n"
    _write_private(path, text.encode("utf-8"))
    if legacy is not None:
        legacy_token_path().unlink(missing_ok=True)  # its token now lives in tokens.json
    return path
