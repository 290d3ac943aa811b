"""Voice loading and discovery with the real default voice; broken voices fail at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from autovoice.config import config_from_dict
from autovoice.engines import Synthesizer, list_voices
from autovoice.engines.voice import VoiceInfo, default_voice_path, resolve_voice
from autovoice.errors import VoiceError


def copy_voice(tmp_path: Path, name: str = "en_US-copy-medium") -> Path:
    src = default_voice_path()
    dst = tmp_path / f"{name}.onnx"
    dst.symlink_to(src)
    shutil.copy(f"{src}.json", f"{dst}.json")
    return dst


def test_default_voice_facts() -> None:
    voice = VoiceInfo.load(default_voice_path())
    assert voice.name == "en_US-joe-medium"
    assert (voice.language, voice.sample_rate, voice.num_speakers) == ("en_US", 22050, 1)
    assert voice.quality == "medium" and voice.espeak_voice == "en-us"
    assert voice.speaker_id(None) is None
    with pytest.raises(VoiceError, match="single-speaker"):
        voice.speaker_id(3)


def test_voices_dir_listing_and_resolution(tmp_path: Path) -> None:
    copy = copy_voice(tmp_path)
    (tmp_path / "orphan.onnx").write_bytes(b"x" * 2000)  # no .json: not a voice
    config = config_from_dict({"voices_dir": str(tmp_path)})
    names = [v.name for v in list_voices(config)]
    assert names == ["en_US-joe-medium", "en_US-copy-medium"]
    assert resolve_voice("en_US-copy-medium", str(tmp_path)) == copy
    assert resolve_voice(str(copy), None) == copy
    with pytest.raises(VoiceError, match="no such voice"):
        resolve_voice("nobody", str(tmp_path))


def test_multi_speaker_resolution(tmp_path: Path) -> None:
    path = copy_voice(tmp_path)
    raw = json.loads(Path(f"{path}.json").read_text())
    raw.update(num_speakers=3, speaker_id_map={"ann": 0, "bob": 1, "cy": 2})
    voice = VoiceInfo.from_config("multi", path, Path(f"{path}.json"), raw)
    assert voice.speaker_id("bob") == 1
    assert voice.speaker_id(2) == 2
    assert voice.speaker_id(None) == 0
    with pytest.raises(VoiceError, match="unknown speaker 'dan'"):
        voice.speaker_id("dan")
    with pytest.raises(VoiceError, match="out of range 0..2"):
        voice.speaker_id(7)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing_model", "model file not found"),
        ("missing_json", "voice config not found"),
        ("tiny_model", "truncated"),
        ("truncated_model", "not a readable ONNX model"),
        ("bad_json", "cannot read voice config"),
        ("not_piper_json", "not a Piper voice config"),
        ("ids_beyond_model", "config and model do not match"),
        ("speakers_mismatch", "config and model do not match"),
    ],
)
def test_broken_voice_fails_at_load(tmp_path: Path, damage: str, message: str) -> None:
    src = default_voice_path()
    model = tmp_path / "broken.onnx"
    config = Path(f"{model}.json")
    raw = json.loads(Path(f"{src}.json").read_text())
    if damage != "missing_model":
        if damage == "tiny_model":
            model.write_bytes(b"\x08\x01")
        elif damage == "truncated_model":
            model.write_bytes(src.read_bytes()[:5_000_000])
        else:
            model.symlink_to(src)
    if damage == "bad_json":
        config.write_text("{not json")
    elif damage == "not_piper_json":
        config.write_text('{"hello": 1}')
    elif damage != "missing_json":
        if damage == "ids_beyond_model":
            raw["phoneme_id_map"]["@"] = [999]
        if damage == "speakers_mismatch":
            raw["num_speakers"] = 4
        config.write_text(json.dumps(raw))
    settings = config_from_dict({"voice": str(model), "engine": "onnx"})
    with pytest.raises(VoiceError, match=message):
        Synthesizer.load(settings, warm_up=False)
