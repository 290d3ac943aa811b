"""The voices a running process can use, rescanned when the voices directory changes.

`autovoice voices install` adds a voice by renaming its files into the voices directory, which
changes the modification time of the directory it lands in. `VoiceRegistry.voices` stats the
voices directory and every directory below it (a few `stat` calls) and rescans only when one of
them changed, or changed less than `RACY_NS` before the last scan (a second change within the
file system's timestamp granularity would leave the mtime as it was); a voice's `.onnx.json`
is read again only when its files changed. So a running
daemon lists and finds a newly installed voice without a restart, and listing costs little.

Thread: any (one lock). RT-safe: no (file I/O).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from autovoice.engines.voice import VoiceInfo, find_voices, voices_dir_path

__all__ = ["VoiceRegistry"]

_LOG = logging.getLogger(__name__)

RACY_NS = 2_000_000_000
"""Directories modified less than this long before a scan are scanned again next time."""
_Stamp = tuple[int, int, int, int]
"""(model mtime_ns, model size, config mtime_ns, config size): when to read a voice again."""


class VoiceRegistry:
    """The default voice plus the voices in one voices directory, kept current cheaply.

    Args:
        voices_dir: The config's `voices_dir` (None = the default directory, see
            `voices_dir_path`).
    """

    def __init__(self, voices_dir: str | Path | None) -> None:
        self.directory = voices_dir_path(voices_dir)
        self._setting = voices_dir
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int], ...] | None = None
        self._voices: list[VoiceInfo] = []
        self._read: dict[Path, tuple[_Stamp, VoiceInfo | None]] = {}
        self.scans = 0
        """How many times the directory was rescanned (for tests and `status`)."""

    def voices(self) -> list[VoiceInfo]:
        """Every usable voice (the default first); broken voices are logged and left out."""
        with self._lock:
            signature = self._dir_signature()
            if signature != self._signature or self._changed_files():
                self._rescan()
                # A directory changed within the file system's timestamp granularity of now may
                # change again without a new mtime: trust such a signature only once it is old.
                recent = time.time_ns() - RACY_NS
                racy = any(mtime >= recent for _, mtime in signature)
                self._signature = None if racy else signature
            return list(self._voices)

    def find(self, name: str) -> VoiceInfo | None:
        """The voice named `name` (its file name without `.onnx`), or None. A miss rescans
        first (through `voices`), so a voice installed a moment ago is found."""
        for voice in self.voices():
            if voice.name == name:
                return voice
        return None

    def names(self) -> list[str]:
        """The usable voices' names (the default first)."""
        return [voice.name for voice in self.voices()]

    def _dir_signature(self) -> tuple[tuple[str, int], ...]:
        """(path, mtime_ns) of the voices directory and each directory below it."""
        found: list[tuple[str, int]] = []
        stack = [str(self.directory)]
        while stack:
            path = stack.pop()
            try:
                found.append((path, os.stat(path).st_mtime_ns))
                with os.scandir(path) as entries:
                    stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=True))
            except OSError:
                continue
        return tuple(sorted(found))

    def _changed_files(self) -> bool:
        """True when a known voice's files were replaced in place (same names, new content)."""
        return any(_stamp(path) != stamp for path, (stamp, _) in self._read.items())

    def _rescan(self) -> None:
        self.scans += 1
        read: dict[Path, tuple[_Stamp, VoiceInfo | None]] = {}
        voices: list[VoiceInfo] = []
        for path in find_voices(self._setting):
            stamp = _stamp(path)
            known = self._read.get(path)
            if known is not None and known[0] == stamp:
                info = known[1]
            else:
                try:
                    info = VoiceInfo.load(path)
                except Exception as exc:  # one broken voice must not hide the others
                    _LOG.warning("skipping voice %s: %s", path, exc)
                    info = None
            read[path] = (stamp, info)
            if info is not None:
                voices.append(info)
        self._read = read
        self._voices = voices


def _stamp(model: Path) -> _Stamp:
    try:
        m = os.stat(model)
        c = os.stat(f"{model}.json")
    except OSError:
        return (-1, -1, -1, -1)
    return (m.st_mtime_ns, m.st_size, c.st_mtime_ns, c.st_size)
