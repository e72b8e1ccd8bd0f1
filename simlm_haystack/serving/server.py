"""Running the server: on localhost unless told otherwise, and saying so when told."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

#: Host names that only this machine reaches.
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, *, api_key: bool) -> str | None:
    """The warning printed before listening on an address other machines may reach (None for loopback)."""
    if is_loopback(host):
        return None
    advice = (
        "requests need the API key"
        if api_key
        else "anyone who can reach it can search and add documents: set SIMLM_HAYSTACK_API_KEY"
    )
    return f"warning: listening on {host}, reachable from other machines (plain HTTP: put TLS in front); {advice}"


def run_server(app: Any, *, host: str = "127.0.0.1", port: int = 1416, api_key: bool = False) -> None:
    """Serve ``app`` with Hayhooks' runner (uvicorn, one process) until interrupted; warn first when ``host`` is not
    loopback.

    :param app: The app of :func:`~simlm_haystack.serving.app.build_app`.
    :param host: The address to bind (``0.0.0.0`` for every interface).
    :param port: The port.
    :param api_key: Whether the app requires an API key (said in the warning).
    """
    from hayhooks import run_app

    warning = exposure_warning(host, api_key=api_key)
    if warning:
        print(f"simlm-haystack serve: {warning}", file=sys.stderr, flush=True)
    run_app(app, host=host, port=port)
