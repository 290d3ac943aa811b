"""Index marks timed by where their words are heard, on the real daemon and virtual device.

The daemon runs without synthesis noise, so this process can make the same audio and read the
same word starts (`AudioChunk.word_starts`); the daemon's `first_audio` time (`at_s`, the
monotonic clock both processes share) then says when each word reached the device.
"""

from __future__ import annotations

import numpy as np
import pytest

from autovoice.audio_io.render import SILENCE_THRESHOLD
from autovoice.config import config_from_dict
from autovoice.daemon.ssip import ssml
from autovoice.engines import SpeakOptions, Synthesizer
from tests.ssip.conftest import SsipDaemon, start_ssip_daemon

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CONFIG = {"engine": "onnx", "synthesis": {"noise_scale": 0.0, "noise_w": 0.0}}
TEXT = (
    "Many people walked slowly along a narrow path, between tall green trees, toward a quiet "
    "lake where ducks were swimming, while children played happily beside their parents."
)
WORDS = TEXT.split()
MARKED = {3: "m3", 9: "m9", 14: "m14", 19: "m19", 23: "m23"}
"""Marks before these words (0-based), and one at the very end."""
EARLY_S = 0.03
"""A mark may come this much before its word's first audio (clock and rounding)."""
LATE_S = 0.1
"""... and this much after it (event loop, socket)."""


@pytest.fixture(scope="module")
def exact_daemon(pulse_server, tmp_path_factory) -> SsipDaemon:
    """A daemon with `--ssip` whose synthesis has no noise (its audio can be made again)."""
    daemon = start_ssip_daemon(tmp_path_factory.mktemp("ssip-marks"), pulse_server, CONFIG)
    yield daemon
    assert daemon.proc.stop() == 0, daemon.proc.log


def marked_ssml() -> str:
    parts = [f'<mark name="{MARKED[i]}"/>{w}' if i in MARKED else w for i, w in enumerate(WORDS)]
    return "<speak>" + " ".join(parts) + '<mark name="end"/></speak>'


def heard_after_first_sound_s(text: str) -> tuple[list[float], float]:
    """Seconds from the first sound of `text` to each of its words, and its length (s)."""
    synth = Synthesizer.load(config_from_dict(CONFIG), warm_up=False)
    try:
        chunks = list(synth.speak(text, SpeakOptions(rate=1.0, gain=1.0)))
    finally:
        synth.close()
    audio = np.concatenate([c.samples for c in chunks])
    loud = int(np.flatnonzero(np.abs(audio) > SILENCE_THRESHOLD)[0])
    starts = [s for c in chunks for s in c.word_starts]
    rate = synth.sample_rate
    return [(s - loud) / rate for s in starts], len(audio) / rate


def test_marks_come_when_their_words_are_heard(exact_daemon: SsipDaemon):
    d = exact_daemon
    message = ssml.parse(marked_ssml())
    words_s, length_s = heard_after_first_sound_s(message.text)
    assert len(words_s) == len(WORDS)
    with d.connect() as conn, d.subscribe() as sub:
        for line in ("SET SELF NOTIFICATION all on", "SET SELF SSML_MODE on"):
            assert conn.command(line).ok
        msg_id = int(conn.speak(marked_ssml()).lines[0])
        events = conn.events_of(msg_id, timeout_s=60)
        first = sub.next(lambda e: e.get("utterance") == msg_id and e["event"] == "first_audio")
    names = [e.mark for e in events if e.kind == "INDEX MARK"]
    assert [e.kind for e in events][0] == "BEGIN" and events[-1].kind == "END"
    assert names == [*MARKED.values(), "end"]
    at_s = float(first["at_s"])
    late = []
    for event in events:
        if event.kind != "INDEX MARK" or event.mark == "end":
            continue
        word = next(i for i, name in MARKED.items() if name == event.mark)
        heard_s = at_s + words_s[word]
        assert event.received_s >= heard_s - EARLY_S, (event.mark, event.received_s - heard_s)
        late.append(event.received_s - heard_s)
    print(f"marks after their words by {[round(x * 1e3) for x in late]} ms")
    assert max(late) < LATE_S
    # the end mark comes with the end, after the last word
    assert events[-2].received_s >= at_s + words_s[-1]
    assert events[-1].received_s >= at_s + 0.8 * length_s
