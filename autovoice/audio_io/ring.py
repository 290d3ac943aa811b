"""A lock-free single-producer/single-consumer ring buffer of mono float32 frames.

The writer is the thread that produces audio (the inference thread, through
`AudioOutput.write`); the reader is the PortAudio callback. Positions are unbounded Python
integers counting frames since creation; the array index is the position modulo the capacity, so
wrap-around is plain arithmetic and `write_pos - read_pos` is always the fill level.

Each side only ever assigns its own position (`_write_pos` by the writer, `_read_pos` by the
reader), and publishes it after the data it covers is in place. Under CPython an attribute
assignment is atomic, so no lock is needed.

`clear()` is requested by the writer and carried out by the reader: the writer records the
position to skip to (its current write position) and then bumps a generation counter; the reader
notices the new generation at its next `read_into` and jumps its read position forward. The writer
never touches the read position and never overwrites frames the reader may still be copying.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer", "ring_indices"]


def ring_indices(pos: int, count: int, capacity: int) -> tuple[int, int, int]:
    """Split `count` frames starting at absolute position `pos` into at most two array spans.

    Args:
        pos: Absolute frame position (>= 0).
        count: Number of frames (0 <= count <= capacity).
        capacity: Ring size in frames (> 0).

    Returns:
        `(start, first, second)`: the array index of the first frame, the number of frames
        from `start` up to the end of the array, and the number that wrap to index 0.

    Thread: any. RT-safe: yes.

    >>> ring_indices(6, 4, 8)
    (6, 2, 2)
    >>> ring_indices(16, 3, 8)
    (0, 3, 0)
    """
    start = pos % capacity
    first = min(count, capacity - start)
    return start, first, count - first


class RingBuffer:
    """Lock-free SPSC ring of mono float32 frames over one preallocated numpy array.

    Writer: exactly one thread (the producer: `write`, `clear`). Reader: exactly one thread
    (the PortAudio callback: `read_into`, `peek_into`, `skip`). Counters and the `*_frames`
    properties may be read from any thread (they are snapshots).

    Args:
        capacity_frames: Size of the ring in frames (> 0).

    Raises:
        ValueError: If `capacity_frames` is not a positive integer.

    Thread: see above. RT-safe: `read_into`, `peek_into` and `skip` yes; the rest no.

    >>> ring = RingBuffer(4)
    >>> ring.write(np.arange(6, dtype=np.float32))
    4
    >>> out = np.empty(3, dtype=np.float32)
    >>> ring.read_into(out), out.tolist()
    (3, [0.0, 1.0, 2.0])
    """

    def __init__(self, capacity_frames: int) -> None:
        if isinstance(capacity_frames, bool) or not isinstance(capacity_frames, int):
            raise TypeError(f"capacity_frames must be an int, got {capacity_frames!r}")
        if capacity_frames <= 0:
            raise ValueError(f"capacity_frames must be > 0, got {capacity_frames}")
        self.capacity_frames = capacity_frames
        self._buf = np.zeros(capacity_frames, dtype=np.float32)
        # Writer-owned.
        self._write_pos = 0
        self._clear_target = 0
        self._clear_gen = 0
        # Reader-owned.
        self._read_pos = 0
        self._clear_seen = 0
        # Counters (each has one owner side).
        self.frames_written = 0  # writer
        self.frames_read = 0  # reader: frames copied out (fade-out frames included)
        self.frames_discarded = 0  # reader: frames skipped by clear()/skip()
        self.underrun_reads = 0  # reader: read_into calls that could not fill `out`
        self.silence_frames = 0  # reader: zero frames inserted by read_into
        self.high_water_frames = 0  # writer: highest fill level seen after a write
        self.last_faded = 0  # reader: faded frames at the start of the last read_into

    # ----------------------------------------------------------------- shared views
    @property
    def write_pos(self) -> int:
        """Absolute position of the next frame the writer will store. Thread: any."""
        return self._write_pos

    @property
    def read_pos(self) -> int:
        """Absolute position of the next frame the reader will copy out. Thread: any."""
        return self._read_pos

    @property
    def available_frames(self) -> int:
        """Frames stored and not yet read (a pending clear is not subtracted). Thread: any."""
        return self._write_pos - self._read_pos

    @property
    def free_frames(self) -> int:
        """Frames the writer can store now. Thread: any; exact on the writer thread."""
        return self.capacity_frames - (self._write_pos - self._read_pos)

    @property
    def clear_pending(self) -> bool:
        """True while a `clear()` has been requested but not yet carried out by the reader."""
        return self._clear_gen != self._clear_seen

    # ----------------------------------------------------------------- writer side
    def write(self, samples: np.ndarray) -> int:
        """Store as many leading frames of `samples` as fit; never blocks.

        Args:
            samples: 1-D array of frames (converted to float32 if needed).

        Returns:
            The number of frames stored (0 when full).

        Thread: writer only. RT-safe: no (may convert dtype).
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        wpos = self._write_pos
        count = min(len(samples), self.capacity_frames - (wpos - self._read_pos))
        if count <= 0:
            return 0
        start, first, second = ring_indices(wpos, count, self.capacity_frames)
        self._buf[start : start + first] = samples[:first]
        if second:
            self._buf[:second] = samples[first:count]
        self._write_pos = wpos + count  # publish after the data is in place
        self.frames_written += count
        fill = self._write_pos - self._read_pos
        if fill > self.high_water_frames:
            self.high_water_frames = fill
        return count

    def clear(self) -> None:
        """Ask the reader to drop everything written so far (frames written later are kept).

        The reader performs the drop at its next `read_into`/`peek_into`/`skip`, so the free
        space comes back within one callback block.

        Thread: writer only. RT-safe: no.
        """
        self._clear_target = self._write_pos
        self._clear_gen += 1  # publish after the target

    # ----------------------------------------------------------------- reader side
    def _apply_clear(self, fade: np.ndarray | None = None, out: np.ndarray | None = None) -> int:
        """Carry out a pending clear; optionally fade out the head of the dropped frames.

        Returns the number of faded frames written to the start of `out`.
        Thread: reader only. RT-safe: yes.
        """
        gen = self._clear_gen
        if gen == self._clear_seen:
            return 0
        target = self._clear_target  # read after gen: at least as new as generation `gen`
        self._clear_seen = gen
        rpos = self._read_pos
        if target <= rpos:
            return 0
        faded = 0
        if fade is not None and out is not None:
            faded = min(target - rpos, len(fade), len(out))
            if faded:
                self._copy_out(rpos, out[:faded])
                out[:faded] *= fade[:faded]
                self.frames_read += faded
        self.frames_discarded += target - rpos - faded
        self._read_pos = target
        return faded

    def _copy_out(self, pos: int, out: np.ndarray) -> None:
        start, first, second = ring_indices(pos, len(out), self.capacity_frames)
        out[:first] = self._buf[start : start + first]
        if second:
            out[first:] = self._buf[:second]

    def read_into(self, out: np.ndarray, fade: np.ndarray | None = None) -> int:
        """Copy up to `len(out)` frames into `out` and zero-fill the rest.

        Carries out a pending `clear()` first. When `fade` (a preallocated descending gain ramp)
        is given and a clear is pending, the first `len(fade)` dropped frames are played faded
        out instead of cut, so a stop does not click.

        Args:
            out: Preallocated 1-D float32 array (may be a strided view).
            fade: Optional preallocated gain ramp applied to dropped frames.

        Returns:
            Frames taken from the ring (faded frames included); the rest of `out` is zeros.

        Thread: reader only. RT-safe: yes (no allocation of sample data, no locks, no logging).
        """
        n = len(out)
        faded = self._apply_clear(fade, out)
        self.last_faded = faded
        rpos = self._read_pos
        count = min(n - faded, self._write_pos - rpos)
        if count > 0:
            self._copy_out(rpos, out[faded : faded + count])
            self._read_pos = rpos + count  # publish after copying out
            self.frames_read += count
        else:
            count = 0
        got = faded + count
        if got < n:
            out[got:] = 0.0
            self.underrun_reads += 1
            self.silence_frames += n - got
        return got

    def peek_into(self, out: np.ndarray) -> int:
        """Copy up to `len(out)` frames into `out` without consuming them; zero-fill the rest.

        Returns:
            Frames copied.

        Thread: reader only. RT-safe: yes.
        """
        self._apply_clear()
        count = min(len(out), self._write_pos - self._read_pos)
        if count > 0:
            self._copy_out(self._read_pos, out[:count])
        else:
            count = 0
        out[count:] = 0.0
        return count

    def skip(self, count: int) -> int:
        """Consume up to `count` frames without copying them; returns how many were skipped.

        Thread: reader only. RT-safe: yes.
        """
        self._apply_clear()
        count = max(0, min(count, self._write_pos - self._read_pos))
        self._read_pos += count
        self.frames_discarded += count
        return count

    def reset_counters(self) -> None:
        """Zero the counters. Thread: any, while neither side is running. RT-safe: no."""
        self.frames_written = self.frames_read = self.frames_discarded = 0
        self.underrun_reads = self.silence_frames = self.high_water_frames = 0

    def __repr__(self) -> str:
        return (
            f"RingBuffer(capacity_frames={self.capacity_frames}, "
            f"available_frames={self.available_frames})"
        )
