"""The daemon's listening sockets: inherited from the service manager (socket activation), or
bound here when started by hand, before the voice loads.

Socket activation: systemd (or `systemd-socket-activate`) binds the sockets and passes them as
fds 3, 4, ... with `LISTEN_PID` (this process), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES`
(their `FileDescriptorName=`s, colon-separated): `autovoice` is the native socket, `ssip`
Speech Dispatcher's. Either way a listener exists before the voice is loaded, so a client that
connects meanwhile waits in the socket's backlog, request and all, and is served once the
daemon accepts; nothing is refused or lost.

Bound here: the same checks as always (0700 directory, a stale socket replaced, a live one or a
second daemon refused through `<socket>.lock`), the socket made 0600. Inherited: the lock is
taken too (one daemon per socket), an over-permissive socket file is tightened to 0600, and the
file is left in place at exit (it belongs to the service manager).

Thread: the main thread (start-up and shutdown). RT-safe: no.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from autovoice.daemon.paths import SocketLock, prepare_socket_path
from autovoice.errors import AutoVoiceError

__all__ = [
    "NATIVE",
    "SSIP",
    "ActivationError",
    "Listener",
    "adopt",
    "bind",
    "inherited_sockets",
    "socket_path",
]

_LOG = logging.getLogger(__name__)

NATIVE = "autovoice"
"""`FileDescriptorName=` of the native protocol's socket."""
SSIP = "ssip"
"""`FileDescriptorName=` of the Speech Dispatcher (SSIP) socket."""
UNIT_NAMES = {"autovoice.socket": NATIVE, "autovoice-ssip.socket": SSIP}
"""systemd names an fd after its socket unit when the unit sets no `FileDescriptorName=`."""
LISTEN_FDS_START = 3
BACKLOG = socket.SOMAXCONN
"""Connections that may wait to be accepted (e.g. while the voice loads); capped by the kernel."""
ENV_NAMES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(AutoVoiceError):
    """The sockets the service manager passed cannot be used."""


@dataclass
class Listener:
    """A listening Unix stream socket and what to undo at exit.

    Attributes:
        sock: The listening socket (asyncio's server takes it over).
        path: Its file.
        inherited: Passed by the service manager (the file is left in place at exit).
        lock: `<path>.lock`, held while the daemon runs.
    """

    sock: socket.socket
    path: Path
    inherited: bool
    lock: SocketLock
    closed: bool = False

    def close(self) -> None:
        """Close the socket, remove the file if it was bound here, release the lock (once)."""
        if self.closed:
            return
        self.closed = True
        self.sock.close()
        if not self.inherited:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.lock.release()


def inherited_sockets(environ: MutableMapping[str, str]) -> dict[str, socket.socket]:
    """The listening sockets passed to this process, by name, and the variables removed.

    An fd without a name (`LISTEN_FDNAMES` unset, or `unknown`) is the native socket when it is
    the only one; an fd named after our socket units (systemd's default name) counts as theirs.
    Variables meant for another process (`LISTEN_PID` not ours) are ignored.

    Raises:
        ActivationError: an fd is not a listening Unix stream socket, a name repeats, or the
            variables are malformed.
    """
    pid, count = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    names = environ.get("LISTEN_FDNAMES", "")
    if not pid or not count:
        return {}
    if pid != str(os.getpid()):
        _LOG.debug("LISTEN_PID=%s is not this process; ignoring LISTEN_FDS", pid)
        return {}
    for name in ENV_NAMES:  # not for our children
        environ.pop(name, None)
    if not count.isdigit():
        raise ActivationError(f"LISTEN_FDS={count!r} is not a number")
    fd_names = names.split(":") if names else []
    found: dict[str, socket.socket] = {}
    for index in range(int(count)):
        fd = LISTEN_FDS_START + index
        name = fd_names[index] if index < len(fd_names) else "unknown"
        name = UNIT_NAMES.get(name, name)
        if name == "unknown" and int(count) == 1:
            name = NATIVE
        sock = _adopt(fd, name)
        if name in found:
            raise ActivationError(
                f"two inherited sockets are named {name!r} (one socket unit per socket, "
                f"FileDescriptorName={NATIVE} and FileDescriptorName={SSIP})"
            )
        if name not in (NATIVE, SSIP):
            _LOG.warning(
                "ignoring inherited fd %d named %r (expected %s or %s)", fd, name, NATIVE, SSIP
            )
            sock.close()
            continue
        found[name] = sock
    return found


def _adopt(fd: int, name: str) -> socket.socket:
    """The listening Unix stream socket at `fd` (close-on-exec from now on)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ActivationError(f"inherited fd {fd} ({name}) is not a socket: {exc}") from exc
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise ActivationError(
            f"inherited fd {fd} ({name}) is not a listening Unix stream socket "
            "(the socket unit needs ListenStream=/path)"
        )
    sock.set_inheritable(False)
    return sock


def socket_path(sock: socket.socket) -> Path:
    """The file an inherited socket is bound to.

    Raises:
        ActivationError: it has none (an abstract or unnamed socket).
    """
    name = sock.getsockname()
    if not isinstance(name, str) or not name.startswith("/"):
        raise ActivationError(f"inherited socket {name!r} has no path (use ListenStream=/path)")
    return Path(name)


def adopt(sock: socket.socket) -> Listener:
    """A listener for an inherited socket: its lock taken, its file made 0600.

    Raises:
        ActivationError: it has no file (an abstract or unnamed socket).
        SocketInUse: another daemon holds its lock.
    """
    path = socket_path(sock)
    lock = SocketLock(path)
    lock.acquire()
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            _LOG.warning("%s was mode %o; making it 0600", path, stat.S_IMODE(st.st_mode))
            os.chmod(path, 0o600)
    return Listener(sock, path, inherited=True, lock=lock)


def bind(path: Path, private_dir: bool) -> Listener:
    """Bind and listen on `path` (0600), after the usual checks.

    Raises:
        SocketInUse: a live daemon answers on `path`, holds its lock, or `path` is no socket.
        OSError: the directory or socket cannot be made.
    """
    prepare_socket_path(path, private_dir)
    lock = SocketLock(path)
    lock.acquire()
    try:
        prepare_socket_path(path, private_dir)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(BACKLOG)
    except BaseException:
        lock.release()
        raise
    return Listener(sock, path, inherited=False, lock=lock)
