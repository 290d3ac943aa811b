"""Announce the Wyoming server on the local network (mDNS `_wyoming._tcp`), so Home Assistant
discovers it. Needs the `zeroconf` package, imported only when announcing.

Thread: event loop (the zeroconf package runs its own). RT-safe: no.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from autovoice.errors import AutoVoiceError

__all__ = ["SERVICE_TYPE", "Announcement", "local_address"]

_LOG = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
_MDNS_GROUP = "224.0.0.251"
_ANY = ("", "0.0.0.0", "::")


def local_address() -> str:
    """The IPv4 address this host reaches the mDNS group from (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((_MDNS_GROUP, 1))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


class Announcement:
    """`name._wyoming._tcp.local.` pointing at `host:port` while started.

    Args:
        port: The server's TCP port.
        name: The instance name shown in Home Assistant.
        host: The address the server listens on; a wildcard means `local_address()`.
    """

    def __init__(self, port: int, name: str, host: str | None = None) -> None:
        self.port = port
        self.name = name
        self.host = local_address() if host in (None, *_ANY) else str(host)
        self._zeroconf: Any = None
        self._info: Any = None

    async def start(self) -> None:
        """Register the service.

        Raises:
            AutoVoiceError: the zeroconf package is missing or the address is not IPv4.
        """
        try:
            from zeroconf import IPVersion
            from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf
        except ImportError as exc:
            raise AutoVoiceError(
                "--zeroconf needs the zeroconf package (pip install zeroconf)"
            ) from exc
        try:
            address = socket.inet_aton(socket.gethostbyname(self.host))
        except OSError as exc:
            raise AutoVoiceError(f"--zeroconf: cannot resolve {self.host!r}: {exc}") from exc
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            addresses=[address],
            port=self.port,
            properties={"program": "autovoice"},
        )
        self._zeroconf = AsyncZeroconf(interfaces=[self.host], ip_version=IPVersion.V4Only)
        await self._zeroconf.async_register_service(self._info)
        _LOG.info("wyoming: announced %s at %s:%d", self._info.name, self.host, self.port)

    async def close(self) -> None:
        """Withdraw the announcement."""
        if self._zeroconf is None:
            return
        zc, self._zeroconf = self._zeroconf, None
        try:
            await zc.async_unregister_service(self._info)
        finally:
            await zc.async_close()
