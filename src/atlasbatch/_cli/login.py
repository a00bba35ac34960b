"""``atlasbatch login``: exchange username and password for the API token, store it 0600.

The password is read with ``getpass`` (never echoed) or from ``$ATLAS_PASSWORD``; the token
goes straight to the file, recorded as the token of the server it came from (later commands
use it for that server only), and is never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import anyio

from atlasbatch._config import PRODUCTION_URL
from atlasbatch._exceptions import AuthenticationError, InputError, RequestRejectedError
from atlasbatch._http.base_url import obtain_token
from atlasbatch._http.credentials import TOKEN_ENV, server_key, store_token

__all__ = ["LOGIN_HELP", "add_login_arguments", "run_login"]

USERNAME_ENV = "ATLAS_USERNAME"
PASSWORD_ENV = "ATLAS_PASSWORD"

LOGIN_HELP = f"""\
Log in once: asks for your ATLAS forced-photometry username and password (or reads
${USERNAME_ENV} and ${PASSWORD_ENV}), gets your API token from the server and saves it in your
config folder, readable only by you, as the token of that server (--base-url): later
commands use it for that server only, unless ${TOKEN_ENV} or --token-file says otherwise.
Log in once per server; each keeps its own token. The token is never printed. No account
yet? Register at
{PRODUCTION_URL}/register/ (the account must be e-mail-verified).
"""


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``login``."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get("ATLAS_BASE_URL", PRODUCTION_URL),
        help="server base URL (default: $ATLAS_BASE_URL or the production server)",
    )
    parser.add_argument("--username", help=f"account name (default: ${USERNAME_ENV}, else asked)")


def _ask(prompt: str, *, secret: bool) -> str:
    if not sys.stdin.isatty():
        raise InputError(
            f"cannot ask for the {prompt.lower()} without a terminal: set "
            f"{USERNAME_ENV if not secret else PASSWORD_ENV}"
        )
    if secret:
        return getpass.getpass(f"{prompt}: ")
    print(f"{prompt}: ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


def run_login(args: argparse.Namespace) -> int:
    """Run ``login``; the exit code."""
    username = args.username or os.environ.get(USERNAME_ENV) or _ask("Username", secret=False)
    password = os.environ.get(PASSWORD_ENV) or _ask("Password", secret=True)
    if not username or not password:
        raise InputError("a username and a password are needed to log in")
    try:
        token = anyio.run(obtain_token, args.base_url, username, password)
    except (RequestRejectedError, AuthenticationError) as exc:
        print(
            f"atlasbatch: {args.base_url} refused the log-in ({exc.detail or exc.status}); "
            "check the username and password (the account must be e-mail-verified)",
            file=sys.stderr,
        )
        return 1
    path = store_token(token, server=args.base_url)
    del token
    print(
        f"Logged in as {username}; the API token for {server_key(args.base_url)} is saved in "
        f"{path} (readable only by you)."
    )
    if os.environ.get(TOKEN_ENV):
        print(f"Note: ${TOKEN_ENV} is set and takes precedence over the saved token.")
    return 0
