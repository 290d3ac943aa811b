"""Where the SSIP socket lives: where Speech Dispatcher clients look for it.

libspeechd connects to `SPEECHD_ADDRESS` (`unix_socket:PATH`, or `unix_socket` for the default),
else to `$XDG_RUNTIME_DIR/speech-dispatcher/speechd.sock` (the user's cache directory stands in
for the runtime directory when it is unset).

Thread: any (pure functions). RT-safe: no.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ENV_ADDRESS", "default_ssip_path", "ssip_path_from_env"]

ENV_ADDRESS = "SPEECHD_ADDRESS"
SOCKET_DIR_NAME = "speech-dispatcher"
SOCKET_NAME = "speechd.sock"


def default_ssip_path(environ: Mapping[str, str]) -> Path:
    """Speech Dispatcher's default socket for this user.

    >>> str(default_ssip_path({"XDG_RUNTIME_DIR": "/run/user/1000"}))
    '/run/user/1000/speech-dispatcher/speechd.sock'
    >>> str(default_ssip_path({"HOME": "/home/u"}))
    '/home/u/.cache/speech-dispatcher/speechd.sock'
    """
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / SOCKET_DIR_NAME / SOCKET_NAME
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return Path(cache) / SOCKET_DIR_NAME / SOCKET_NAME


def ssip_path_from_env(environ: Mapping[str, str]) -> Path:
    """The socket `SPEECHD_ADDRESS` names, else the default one.

    >>> str(ssip_path_from_env({"SPEECHD_ADDRESS": "unix_socket:/tmp/s.sock"}))
    '/tmp/s.sock'

    Raises:
        ValueError: `SPEECHD_ADDRESS` asks for something other than a Unix socket.
    """
    address = environ.get(ENV_ADDRESS, "").strip()
    if not address:
        return default_ssip_path(environ)
    method, _, rest = address.partition(":")
    if method != "unix_socket":
        raise ValueError(
            f"{ENV_ADDRESS}={address!r}: only unix_socket[:PATH] is supported "
            "(AutoVoice does not listen on TCP)"
        )
    if not rest or rest == "default":
        return default_ssip_path(environ)
    return Path(rest).expanduser()
