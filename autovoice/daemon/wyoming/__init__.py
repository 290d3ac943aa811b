"""The Wyoming protocol front-end (Home Assistant's local TTS): `autovoice serve --wyoming URI`.

A front-end over the daemon core's public API; the core never imports this package.
"""

from autovoice.daemon.wyoming.server import DEFAULT_PORT, WyomingOptions, WyomingServer, parse_uri

__all__ = ["DEFAULT_PORT", "WyomingOptions", "WyomingServer", "parse_uri"]
