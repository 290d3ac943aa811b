"""The `info` answer to `describe`: AutoVoice as one TTS program with every voice it can use.

Voice names are the ones `autovoice voices` shows (the `.onnx` file's stem, e.g.
`en_US-joe-medium`); Home Assistant sends them back in `synthesize`'s `voice.name`.

Thread: any (pure functions). RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from autovoice import __version__

__all__ = ["PROGRAM_NAME", "build_info", "voice_for_language"]

PROGRAM_NAME = "autovoice"
_ATTRIBUTION = Attribution(name="AutoVoice", url="https://github.com/rhasspy/piper")
_VOICE_ATTRIBUTION = Attribution(name="Piper voices", url="https://github.com/rhasspy/piper")


def build_info(voices: Sequence[Mapping[str, Any]]) -> Info:
    """The `info` event's content.

    Args:
        voices: The daemon's voices (`Daemon.voices()`: name, language, speakers, quality,
            path; the daemon's own voice first).
    """
    tts_voices = [
        TtsVoice(
            name=v["name"],
            attribution=_VOICE_ATTRIBUTION,
            installed=True,
            description=_describe(v),
            version=None,
            languages=[v["language"]],
            speakers=[TtsVoiceSpeaker(name=s) for s in v["speakers"]] or None,
        )
        for v in voices
    ]
    program = TtsProgram(
        name=PROGRAM_NAME,
        attribution=_ATTRIBUTION,
        installed=True,
        description="AutoVoice: local real-time neural text to speech (Piper voices)",
        version=__version__,
        voices=tts_voices,
        supports_synthesize_streaming=True,
    )
    return Info(tts=[program])


def voice_for_language(voices: Sequence[Mapping[str, Any]], language: str) -> str | None:
    """The first voice for `language` ("en_US", or just "en"), or None.

    Exact codes win over a voice whose code only starts with the language.
    """
    wanted = language.replace("-", "_").lower()
    for v in voices:
        if v["language"].lower() == wanted:
            return v["name"]
    for v in voices:
        if v["language"].lower().split("_")[0] == wanted.split("_")[0]:
            return v["name"]
    return None


def _describe(voice: Mapping[str, Any]) -> str:
    quality = voice.get("quality") or ""
    return f"{voice['name']} ({quality})" if quality else voice["name"]
