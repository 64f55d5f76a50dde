"""Checking a Ray cluster address before ray.init, which retries an unreachable one for minutes."""
from __future__ import annotations

import socket

from sim.config_loading import ConfigError

CONNECT_TIMEOUT_S = 5.0
LOCAL_ADDRESSES = ("auto", "local")  # ray.init's own keywords: a running local cluster, or a new one


def parse_address(address: str, source: str = "--address") -> tuple[str, int]:
    """'HOST:PORT' or 'ray://HOST:PORT' -> (host, port); anything else is a ConfigError naming `source`."""
    text = address.strip()
    for scheme in ("ray://", "http://"):
        text = text.removeprefix(scheme)
    host, separator, port = text.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    accepted = "expected HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT (Ray Client), auto or local"
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ConfigError(f"{source} {address!r}: not a Ray address; {accepted}")
    return host, int(port)


def probe_address(address: str, source: str = "--address", timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a ConfigError within timeout_s unless a TCP connection to the Ray address opens."""
    if address.strip() in LOCAL_ADDRESSES:
        return
    host, port = parse_address(address, source)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ConfigError(f"{source} {address}: cannot reach a Ray cluster there ({reason}, {timeout_s:g} s limit); "
                          f"start one with `ray start --head --port {port}` on {host}, or check the address "
                          f"and firewall") from None
