"""Per-request synthesis options (None = the configured default)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SpeakOptions"]


@dataclass(frozen=True)
class SpeakOptions:
    """Options of one request; each None falls back to the config, then to the voice.

    Attributes:
        rate: Speaking rate multiplier (2.0 = twice as fast), 0.1 .. 10.
        noise_scale: Prior noise, 0 .. 2 (0 = deterministic).
        noise_w: Duration noise, 0 .. 2 (0 = deterministic).
        gain: Linear gain on the output, 0 .. 4.
        speaker: Speaker id or name for multi-speaker voices.
    """

    rate: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    gain: float | None = None
    speaker: int | str | None = None

    def __post_init__(self) -> None:
        for name, low, high in (
            ("rate", 0.1, 10.0),
            ("noise_scale", 0.0, 2.0),
            ("noise_w", 0.0, 2.0),
            ("gain", 0.0, 4.0),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not low <= value <= high:
                raise ValueError(f"{name}={value} is out of range (accepted: {low} .. {high})")
