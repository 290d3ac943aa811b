"""The onnx engine's split-graph cache: a second start skips the split (and the onnx import)
and gives exactly the same audio; a changed voice, a damaged entry or an unwritable cache
directory never give wrong audio or a failed load."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from autovoice.engines.base import Scales
from autovoice.engines.onnx_backend import OnnxBackend
from autovoice.engines.onnx_cache import split_key
from autovoice.engines.voice import DEFAULT_VOICE, VoiceInfo, resolve_voice

SCALES = Scales(noise_scale=0.0, length_scale=1.0, noise_w=0.0, speaker_id=None)


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> VoiceInfo:
    """A private copy of the default voice (its files' times are part of the cache key)."""
    src = resolve_voice(DEFAULT_VOICE, None)
    d = tmp_path_factory.mktemp("voice")
    shutil.copy(src, d / src.name)
    shutil.copy(f"{src}.json", d / f"{src.name}.json")
    return VoiceInfo.load(d / src.name)


def speak(backend: OnnxBackend, voice: VoiceInfo) -> np.ndarray:
    ids = [i for ids in list(voice.phoneme_id_map.values())[:40] for i in ids]
    return backend.decode(np.asarray(backend.encode(ids, SCALES)))


def load(voice: VoiceInfo, cache_dir) -> OnnxBackend:
    return OnnxBackend.load(voice.model_path, voice.hop_samples, voice=voice, cache_dir=cache_dir)


def entries(cache_dir) -> list:
    return (
        [p for p in cache_dir.iterdir() if not p.name.startswith(".")] if cache_dir.exists() else []
    )


def test_a_cached_start_gives_the_same_audio(voice, tmp_path, caplog):
    cache = tmp_path / "cache"
    reference = speak(load(voice, None), voice)
    caplog.set_level("INFO", "autovoice.engines.onnx_backend")
    first = load(voice, cache)
    assert len(entries(cache)) == 1
    second = load(voice, cache)
    assert "cached split graphs of" in caplog.text
    np.testing.assert_array_equal(speak(first, voice), reference)
    np.testing.assert_array_equal(speak(second, voice), reference)


def test_a_cached_start_does_not_import_onnx(voice, tmp_path):
    cache = tmp_path / "cache"
    load(voice, cache)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from autovoice.engines.onnx_backend import OnnxBackend\n"
        "from autovoice.engines.voice import VoiceInfo\n"
        f"v = VoiceInfo.load({str(voice.model_path)!r})\n"
        f"OnnxBackend.load(v.model_path, v.hop_samples, voice=v, cache_dir=Path({str(cache)!r}))\n"
        "print('onnx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_a_changed_voice_file_misses(voice, tmp_path):
    versions = ("ort", "onnx", "checked")
    source = voice.model_path  # any file stands in for the splitter's source here
    before = split_key(voice.model_path, source, versions)
    config = voice.config_path
    config.write_text(config.read_text())  # same content, a new modification time
    assert split_key(voice.model_path, source, versions) != before
    assert split_key(voice.model_path, source, ("ort", "onnx", "unchecked")) != before


def test_a_damaged_entry_is_split_again(voice, tmp_path, caplog):
    cache = tmp_path / "cache"
    reference = speak(load(voice, cache), voice)
    (entry,) = entries(cache)
    prior = entry / "prior.onnx"
    size = prior.stat().st_size
    prior.write_bytes(prior.read_bytes()[: size // 2])  # truncated on disk
    caplog.set_level("WARNING", "autovoice.engines.onnx_backend")
    backend = load(voice, cache)
    assert "splitting again" in caplog.text
    np.testing.assert_array_equal(speak(backend, voice), reference)
    assert prior.stat().st_size == size  # the entry was written again


def test_an_unwritable_cache_directory_still_loads(voice, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    backend = load(voice, blocker / "cache")
    assert speak(backend, voice).size > 0
