"""`autovoice serve`'s Wyoming options (`--wyoming URI`, `--zeroconf [NAME]`) and the
front-end they make, over the `wyoming:` config section.

Thread: main thread. RT-safe: no.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from autovoice.config import AppConfig

__all__ = ["add_serve_options", "front_end_factory"]


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add `--wyoming` and `--zeroconf` to the `serve` parser."""
    parser.add_argument(
        "--wyoming",
        metavar="URI",
        help="also serve Home Assistant's Wyoming TTS protocol on tcp://HOST:PORT (HA uses "
        "port 10200, e.g. tcp://0.0.0.0:10200) or unix://PATH (config: wyoming.uri)",
    )
    parser.add_argument(
        "--zeroconf",
        nargs="?",
        const="",
        metavar="NAME",
        help="announce the Wyoming server (mDNS _wyoming._tcp) so Home Assistant discovers "
        "it, as NAME (default: autovoice-<host name>; config: wyoming.zeroconf)",
    )


def front_end_factory(args: argparse.Namespace, config: AppConfig) -> Callable[[Any], Any] | None:
    """`make(daemon)` for the Wyoming front-end the options and config ask for, or None.

    Raises:
        ValueError: a bad URI, or `--zeroconf` without a Wyoming URI.
    """
    from autovoice.daemon.wyoming.server import WyomingOptions, WyomingServer, parse_uri

    wyoming = config.wyoming
    uri = getattr(args, "wyoming", None) or wyoming.uri
    zeroconf_arg = getattr(args, "zeroconf", None)
    if uri is None:
        if zeroconf_arg is not None:
            raise ValueError("--zeroconf announces the Wyoming server: give --wyoming URI too")
        return None
    parse_uri(uri)
    options = WyomingOptions(
        uri=uri,
        zeroconf=zeroconf_arg is not None or wyoming.zeroconf,
        zeroconf_name=zeroconf_arg or wyoming.zeroconf_name,
    )
    return lambda daemon: WyomingServer(daemon, options)
