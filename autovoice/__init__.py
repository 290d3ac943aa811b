"""AutoVoice: a local, real-time neural text-to-speech daemon."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "__version__"]

if TYPE_CHECKING:
    from autovoice.daemon.client import AsyncClient, Client


def __getattr__(name: str) -> Any:
    """`autovoice.Client` / `autovoice.AsyncClient`, imported on first use."""
    if name in ("Client", "AsyncClient"):
        from autovoice.daemon import client

        return getattr(client, name)
    raise AttributeError(f"module 'autovoice' has no attribute {name!r}")
