"""The AutoVoice daemon: Unix-socket protocol, scheduler, player thread, client and CLI.

The server side (`autovoice.daemon.server`) is imported only by `autovoice serve`; importing
this package or the client loads neither the engines nor the audio stack.
"""

from autovoice.daemon.client import AsyncClient, Client, DaemonUnavailable, SpeakResult

__all__ = ["AsyncClient", "Client", "DaemonUnavailable", "SpeakResult"]
