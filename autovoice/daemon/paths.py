"""Where the daemon's socket lives, and preparing it safely (0700 directory, 0600 socket,
stale-socket detection, one daemon per socket).

Thread: the event loop (start-up and shutdown only). RT-safe: no.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from autovoice.errors import AutoVoiceError

__all__ = ["SocketInUse", "SocketLock", "default_socket_path", "prepare_socket_path"]

_LOG = logging.getLogger(__name__)

SOCKET_DIR_NAME = "autovoice"
SOCKET_NAME = "autovoice.sock"
ENV_SOCKET = "AUTOVOICE_SOCKET"


class SocketInUse(AutoVoiceError):
    """Another daemon serves the socket, or the path is taken by something else.

    Attributes:
        path: The socket path.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def default_socket_path(environ: Mapping[str, str]) -> Path:
    """The socket path when none is given: $AUTOVOICE_SOCKET, else
    $XDG_RUNTIME_DIR/autovoice/autovoice.sock, else /tmp/autovoice-UID/autovoice.sock.

    >>> str(default_socket_path({"XDG_RUNTIME_DIR": "/run/user/1000"}))
    '/run/user/1000/autovoice/autovoice.sock'
    """
    if environ.get(ENV_SOCKET):
        return Path(environ[ENV_SOCKET])
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / SOCKET_DIR_NAME / SOCKET_NAME
    return Path(f"/tmp/autovoice-{os.getuid()}") / SOCKET_NAME


class SocketLock:
    """An exclusive `flock` on `<socket>.lock`, held for the daemon's lifetime.

    Two daemons started at once on one socket cannot both pass it, so the second refuses
    cleanly instead of stealing the socket.
    """

    def __init__(self, socket_path: Path) -> None:
        self.path = socket_path.with_name(socket_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            SocketInUse: another daemon holds it.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise SocketInUse(
                    str(self.path.with_suffix("")),
                    f"another autovoice daemon (pid {other}) is already serving this socket",
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and release the lock (harmless when not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


def prepare_socket_path(path: Path, private_dir: bool) -> None:
    """Make the directory (0700 when created or when `private_dir`) and clear a stale socket.

    Args:
        path: Where the socket will be bound.
        private_dir: Force the directory to mode 0700 (the default per-user location).

    Raises:
        SocketInUse: a live daemon answers on `path`, or `path` is not a socket.
        OSError: the directory cannot be made.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True)
        os.chmod(parent, 0o700)
    elif private_dir:
        st = parent.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(parent, 0o700)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketInUse(str(path), "exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        _LOG.warning("removing stale socket %s (no daemon answers on it)", path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    except OSError as exc:
        raise SocketInUse(str(path), f"cannot probe existing socket: {exc}") from exc
    finally:
        probe.close()
    raise SocketInUse(str(path), "another daemon is already listening on this socket")
