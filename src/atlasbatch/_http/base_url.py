"""The server's address: which URLs atlasbatch will talk to, and logging in.

Plain ``http://`` is refused except to this machine (the emulator): the token would
travel unencrypted. TLS verification is httpx's default and nothing here can turn it off.
"""

from __future__ import annotations

import ipaddress

import httpx

from atlasbatch._exceptions import InputError, NotFoundError, TransportError
from atlasbatch._http.responses import api_error

__all__ = ["check_base_url", "obtain_token"]

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> httpx.URL:
    """The base URL with a trailing slash; plain http only to this machine (the emulator)."""
    parsed = httpx.URL(url.rstrip("/") + "/")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"base URL {url!r} must be an http(s) URL with a host")
    if parsed.scheme == "http" and not _is_loopback(parsed.host):
        raise InputError(
            f"refusing plain http to {parsed.host}: the token would travel unencrypted; "
            "use https (plain http is allowed only to 127.0.0.1, ::1 or localhost)"
        )
    return parsed


async def obtain_token(base_url: str, username: str, password: str) -> str:
    """Exchange a username and password for the account's API token (not throttled)."""
    base = check_base_url(base_url)
    url = str(base.join("api-token-auth/"))
    async with httpx.AsyncClient(timeout=30.0, headers={"Accept": "application/json"}) as http:
        try:
            response = await http.post(url, data={"username": username, "password": password})
        except httpx.HTTPError as exc:
            raise TransportError(f"POST {url}: {type(exc).__name__}: {exc}", url=url) from None
    if response.status_code != 200:
        raise api_error(response, action="log-in")
    token = response.json().get("token")
    if not isinstance(token, str) or not token:
        raise NotFoundError("log-in answered without a token", status=200, url=url)
    return token
