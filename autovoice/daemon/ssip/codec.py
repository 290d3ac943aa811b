"""SSIP framing: CRLF-terminated lines, and the `SPEAK` data block ended by a lone `.`.

Lines end with CRLF; a bare LF is accepted too. Inside a data block a line that starts with a
dot has one dot more on the wire (`..x` means `.x`), and the line `.` ends the block.

>>> block = DataBlock(max_bytes=100)
>>> [block.add(line) for line in (b"Hello", b"..dot", b".")]
[False, False, True]
>>> block.text()
'Hello\\n.dot'

Thread: one connection's reader (the event loop). RT-safe: no.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataBlock", "LineSplitter", "Overflow"]


@dataclass(frozen=True)
class Overflow:
    """A line longer than the splitter's limit: it was dropped up to its end.

    Attributes:
        size_bytes: How many bytes were dropped.
    """

    size_bytes: int


class LineSplitter:
    """Cuts a byte stream into lines (CRLF or LF), bounding the length of a line.

    Args:
        max_line_bytes: Longest line kept; a longer one comes out as one `Overflow`.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        self.max_line_bytes = max_line_bytes
        self._buf = bytearray()
        self._dropped = 0

    def feed(self, data: bytes) -> list[bytes | Overflow]:
        """Add received bytes; return the complete lines (without their CRLF/LF)."""
        out: list[bytes | Overflow] = []
        self._buf += data
        start = 0
        while True:
            nl = self._buf.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(self._buf[start:nl])
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._dropped:
                out.append(Overflow(self._dropped + len(line)))
                self._dropped = 0
            elif len(line) > self.max_line_bytes:
                out.append(Overflow(len(line)))
            else:
                out.append(line)
        del self._buf[:start]
        if len(self._buf) > self.max_line_bytes:
            self._dropped += len(self._buf)
            self._buf.clear()
        return out

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished line (kept or being dropped)."""
        return len(self._buf) + self._dropped


@dataclass
class DataBlock:
    """The lines of one `SPEAK` data block, dot-unescaped, bounded in size.

    Args:
        max_bytes: Most bytes of text kept; beyond, the block is read to its end but
            `too_long` is set and the text is dropped.
    """

    max_bytes: int
    lines: list[bytes] = field(default_factory=list)
    size_bytes: int = 0
    too_long: bool = False

    def add(self, line: bytes | Overflow) -> bool:
        """Take one line; True when it was the terminating `.`."""
        if isinstance(line, Overflow):
            self.too_long = True
            self.lines.clear()
            return False
        if line == b".":
            return True
        if line.startswith(b".."):
            line = line[1:]
        self.size_bytes += len(line) + 1
        if self.size_bytes > self.max_bytes:
            self.too_long = True
            self.lines.clear()
        elif not self.too_long:
            self.lines.append(line)
        return False

    def text(self) -> str:
        """The block's text, lines joined with LF.

        Raises:
            UnicodeDecodeError: it is not valid UTF-8.
        """
        return b"\n".join(self.lines).decode("utf-8")
