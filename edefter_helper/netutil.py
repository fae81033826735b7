"""Small network facts several layers need (targets, the server's command line)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Is `host` this computer (localhost, 127.0.0.0/8, ::1)? Plain http is allowed only there."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
