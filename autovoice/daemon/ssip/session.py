"""One SSIP client's settings (what `SET SELF ...` changes and `GET` reads) and how they map onto
AutoVoice's per-request options.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autovoice.daemon.scheduler import Priority

__all__ = ["NOTIFICATION_TYPES", "VOICE_TYPES", "Session", "rate_multiplier", "volume_factor"]

NOTIFICATION_TYPES = ("begin", "end", "cancel", "pause", "resume", "index_marks")
"""Event types a client may switch on (`all` means every one of them)."""
VOICE_TYPES = (
    "MALE1",
    "MALE2",
    "MALE3",
    "FEMALE1",
    "FEMALE2",
    "FEMALE3",
    "CHILD_MALE",
    "CHILD_FEMALE",
)
"""SSIP's generic voice types (`LIST VOICES`, `SET SELF VOICE_TYPE`)."""
PUNCTUATION_MODES = ("none", "some", "most", "all")
"""`SET SELF PUNCTUATION` values."""
CAP_LET_RECOGN_MODES = ("none", "spell", "icon")
"""`SET SELF CAP_LET_RECOGN` values."""
OUTPUT_MODULE = "autovoice"
"""The one output module AutoVoice reports."""
DEFAULT_PRIORITY = Priority.TEXT
"""Speech Dispatcher's default priority for a new client."""
RATE_RANGE_FACTOR = 3.0
"""SSIP rate +100 speaks this many times faster than 0; -100 this many times slower."""
MAX_VOLUME_FACTOR = 2.0
"""SSIP volume +100 multiplies the configured gain by this; 0 keeps it; -100 is silence."""


def rate_multiplier(rate: int) -> float:
    """SSIP rate (-100 .. 100) -> speaking-rate multiplier (1/3 .. 3, exponential).

    >>> rate_multiplier(0), rate_multiplier(100), round(rate_multiplier(-100), 4)
    (1.0, 3.0, 0.3333)
    """
    return float(RATE_RANGE_FACTOR ** (rate / 100.0))


def pitch_factor(pitch: int) -> float:
    """SSIP pitch (-100 .. 100) -> pitch factor, half an octave each way (exponential).

    >>> pitch_factor(0), round(pitch_factor(100), 4), round(pitch_factor(-100), 4)
    (1.0, 1.4142, 0.7071)
    """
    return float(2.0 ** (pitch / 200.0))


def volume_factor(volume: int) -> float:
    """SSIP volume (-100 .. 100) -> gain multiplier: -100 -> 0, 0 -> 1, 100 -> 2 (linear).

    >>> volume_factor(-100), volume_factor(-50), volume_factor(0), volume_factor(100)
    (0.0, 0.5, 1.0, 2.0)
    """
    if volume <= 0:
        return (volume + 100) / 100.0
    return 1.0 + (MAX_VOLUME_FACTOR - 1.0) * volume / 100.0


@dataclass
class Session:
    """Settings and state of one SSIP connection.

    Attributes:
        client_id: Daemon-wide connection number (shared with native connections), what
            `HISTORY GET CLIENT_ID` returns and events carry.
        user, application, component: From `SET SELF CLIENT_NAME user:app:component`.
        priority: Priority of the messages it sends next.
        rate, pitch, pitch_range, volume: -100 .. 100 (0 = the voice's default).
        language: Language code as set (default: the daemon voice's, e.g. `en-US`).
        synthesis_voice: Voice name chosen with `SET SELF SYNTHESIS_VOICE` (None = by language).
        voice_type: Generic voice type (stored; AutoVoice's voices have no such variants).
        output_module: Always `autovoice`.
        punctuation: none | some | most | all: which punctuation is read aloud.
        spelling: Spell messages letter by letter.
        cap_let_recogn: none | spell | icon: how a capital letter in `CHAR` is announced.
        ssml_mode: Messages are SSML (tags are interpreted, never read).
        pause_context: Stored only (AutoVoice resumes where it paused).
        notifications: Event types this client receives.
        in_block: Between `BLOCK BEGIN` and `BLOCK END`.
        block_id: Message id announced for the block's messages (they are spoken as one).
        block: Messages (`ssml.Message`) collected inside the block.
    """

    client_id: int
    language: str = "en-US"
    user: str = "unknown"
    application: str = "unknown"
    component: str = "unknown"
    priority: Priority = DEFAULT_PRIORITY
    rate: int = 0
    pitch: int = 0
    pitch_range: int = 0
    volume: int = 0
    synthesis_voice: str | None = None
    voice_type: str = "MALE1"
    output_module: str = OUTPUT_MODULE
    punctuation: str = "none"
    spelling: bool = False
    cap_let_recogn: str = "none"
    ssml_mode: bool = False
    pause_context: int = 0
    notifications: set[str] = field(default_factory=set)
    in_block: bool = False
    block_id: int | None = None
    block: list = field(default_factory=list)

    @property
    def name(self) -> str:
        """`user:application:component`."""
        return f"{self.user}:{self.application}:{self.component}"

    def wants(self, kind: str) -> bool:
        """Whether events of `kind` (one of `NOTIFICATION_TYPES`) are switched on."""
        return kind in self.notifications
