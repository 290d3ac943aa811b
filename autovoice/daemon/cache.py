"""A size-bounded LRU cache of synthesised audio for short, often repeated phrases.

Screen readers say "link", "button", "menu" all day: a repeat of the same text with the same
voice and settings is played from memory and starts at once.

Thread: any (one lock). RT-safe: no.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

__all__ = ["PhraseCache"]


class PhraseCache:
    """Least-recently-used cache of float32 audio, bounded in bytes.

    Args:
        capacity_bytes: Total size of the cached audio at most (0 disables the cache).
        max_chars: Only texts up to this many characters are cached.

    >>> cache = PhraseCache(capacity_bytes=1000, max_chars=10)
    >>> cache.put(("v", "Hi"), np.zeros(100, dtype=np.float32))
    True
    >>> cache.get(("v", "Hi")).shape, cache.hits, cache.misses
    ((100,), 1, 0)
    >>> cache.put(("v", "Hello"), np.zeros(300, dtype=np.float32))  # 1200 bytes: too big
    False
    """

    def __init__(self, capacity_bytes: int, max_chars: int) -> None:
        if capacity_bytes < 0 or max_chars < 0:
            raise ValueError("capacity_bytes and max_chars must be >= 0")
        self.capacity_bytes = int(capacity_bytes)
        self.max_chars = int(max_chars)
        self.hits = 0
        self.misses = 0
        self._bytes = 0
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def cacheable(self, text: str) -> bool:
        """Whether a text is short enough to be cached (and the cache is on)."""
        return self.capacity_bytes > 0 and 0 < len(text) <= self.max_chars

    def get(self, key: Hashable) -> np.ndarray | None:
        """The cached audio for `key` (read-only array), counting a hit or a miss."""
        with self._lock:
            audio = self._items.get(key)
            if audio is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return audio

    def put(self, key: Hashable, audio: np.ndarray) -> bool:
        """Store audio, evicting the least recently used entries. False if it cannot fit."""
        audio = np.array(audio, dtype=np.float32, copy=True).reshape(-1)
        audio.setflags(write=False)
        size = audio.nbytes
        if size > self.capacity_bytes:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            while self._items and self._bytes + size > self.capacity_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
            self._items[key] = audio
            self._bytes += size
            return True

    def clear(self) -> None:
        """Drop every entry (after a config reload changes voices or defaults)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        """Counters for `status`: hits, misses, entries, bytes, capacity_bytes."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._items),
                "bytes": self._bytes,
                "capacity_bytes": self.capacity_bytes,
            }
