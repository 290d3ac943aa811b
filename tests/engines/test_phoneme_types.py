"""Every phoneme_type piper-tts 1.8 knows gives Piper's own ids.

No voice of most of these kinds can be had offline, so each test makes a voice config with
that phoneme_type (Piper's default IPA id map, or its pinyin map) and compares the frontend
with `PiperVoice.phonemize` + `PiperVoice.phonemes_to_ids` on that same config (piper needs no
model for these two). Hebrew and Arabic use models bundled with piper-tts; Japanese and Thai
need piper-tts's optional packages (skipped with the reason when absent); Chinese (pinyin)
needs a g2pW model that piper downloads from the network, so only its ids and its failure at
load are tested here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from piper.config import PiperConfig
from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP
from piper.phonemize_chinese import PHONEME_TO_ID as PINYIN_ID_MAP
from piper.voice import PiperVoice

from autovoice.engines.frontend import Frontend
from autovoice.engines.phonemizers import PinyinPhonemizer
from autovoice.engines.voice import VoiceInfo, default_voice_path
from autovoice.errors import VoiceError
from tests.audio_fixtures import REPO_ROOT


def make_config(kind: str, espeak_voice: str = "", id_map=None) -> dict:
    return {
        "audio": {"sample_rate": 22050, "quality": "medium"},
        "espeak": {"voice": espeak_voice},
        "phoneme_type": kind,
        "num_symbols": 256,
        "num_speakers": 1,
        "phoneme_id_map": id_map or DEFAULT_PHONEME_ID_MAP,
    }


def both(raw: dict, model: Path = Path("/nonexistent/xx.onnx")) -> tuple[VoiceInfo, PiperVoice]:
    ours = VoiceInfo.from_config("xx", model, Path(f"{model}.json"), raw)
    theirs = PiperVoice(session=None, config=PiperConfig.from_dict(raw))
    return ours, theirs


def piper_ids(voice: PiperVoice, text: str) -> list[list[int]]:
    return [voice.phonemes_to_ids(p) for p in voice.phonemize(text) if p]


def check_units(frontend: Frontend, piper: PiperVoice, text: str) -> None:
    """Whole-sentence units equal Piper's; each symbol's ids sit where the frontend says."""
    units = list(frontend.units(text))
    assert [list(u.ids) for u in units] == piper_ids(piper, text)
    id_map = frontend.voice.phoneme_id_map
    for unit in units:
        starts = frontend._phonemizer.symbol_id_starts(unit.phonemes)
        for symbol, start in zip(unit.phonemes, starts, strict=True):
            if symbol in id_map:
                assert list(unit.ids[start : start + len(id_map[symbol])]) == id_map[symbol]


@pytest.fixture(scope="module")
def english() -> tuple[VoiceInfo, PiperVoice]:
    raw = json.loads(Path(f"{default_voice_path()}.json").read_text())
    return both(raw, default_voice_path())


@pytest.mark.parametrize(
    "text",
    [
        "Say [[ hˈɛloʊ ]] to me.",
        "[[ ˈæ ]] starts it. Then words, [[ wˈɜːld ]]",
        "Two [[ tˈuː ]][[ θɹˈiː ]] blocks! And after. [[ ɛnd ]]",
        "No raw blocks at all, here.",
    ],
)
def test_espeak_raw_phoneme_blocks(english, text: str) -> None:
    ours, piper = english
    frontend = Frontend(ours, max_unit_phonemes=2000)
    assert frontend.sentence_ids(text) == piper_ids(piper, text)


def test_espeak_arabic_is_diacritized_like_piper() -> None:
    ours, piper = both(make_config("espeak", "ar"))
    frontend = Frontend(ours, max_unit_phonemes=2000)
    text = "مرحبا بالعالم. كيف حالك اليوم؟ الجو جميل، والشمس مشرقة."
    assert frontend.sentence_ids(text) == piper_ids(piper, text)
    check_units(frontend, piper, text)


def test_text_type_is_one_sentence_of_codepoints() -> None:
    ours, piper = both(make_config("text"))
    frontend = Frontend(ours, max_unit_phonemes=2000)
    text = "hello, wörld. how are you?\nfine; thanks: really!"
    assert frontend.sentence_ids(text) == piper_ids(piper, text)
    check_units(frontend, piper, text)
    # long text is still cut into clause units, which together hold every codepoint
    units = list(Frontend(ours, max_unit_phonemes=12).units(text))
    assert len(units) > 2
    assert [p for u in units for p in u.phonemes] == piper.phonemize(text)[0]


@pytest.mark.parametrize(
    ("phoneme_type", "language", "text", "needs"),
    [
        ("hebrew", "he", "שלום עולם. מה שלומך היום? אני בסדר, תודה.", ()),
        (
            "japanese",
            "ja",
            "今日は良い天気ですね。明日、雨が降るでしょうか？東京へ行きます。",
            (("pyopenjtalk", "pip install 'piper-tts[ja]'"),),
        ),
        (
            "thai",
            "th",
            "สวัสดีครับ วันนี้อากาศดี 25 องศา. คุณสบายดีไหม?",
            (("tltk", "pip install 'piper-tts[th]'"), ("requests", "tltk imports requests")),
        ),
    ],
)
def test_piper_phonemizer_types_like_piper(
    phoneme_type: str, language: str, text: str, needs: tuple[tuple[str, str], ...]
) -> None:
    for module, reason in needs:
        pytest.importorskip(module, reason=reason)
    ours, piper = both(make_config(phoneme_type, language))
    frontend = Frontend(ours, max_unit_phonemes=2000)
    assert frontend.sentence_ids(text) == piper_ids(piper, text)
    check_units(frontend, piper, text)


def test_pinyin_ids_are_padded_per_syllable_like_piper() -> None:
    ours, piper = both(make_config("pinyin", "cmn", PINYIN_ID_MAP))
    phonemizer = PinyinPhonemizer(ours, phonemizer=None)  # ids only: g2pW is not to be had
    phonemes = ["n", "i", "3", "h", "ao", "3", "，", "sh", "i", "4", "j", "ie", "4", "。"]
    assert phonemizer.ids(phonemes) == piper.phonemes_to_ids(phonemes)
    ids = phonemizer.ids(phonemes)
    for symbol, start in zip(phonemes, phonemizer.symbol_id_starts(phonemes), strict=True):
        assert ids[start : start + len(PINYIN_ID_MAP[symbol])] == PINYIN_ID_MAP[symbol]


def test_pinyin_voice_without_its_phonemizer_fails_at_load(tmp_path: Path) -> None:
    raw = make_config("pinyin", "cmn", PINYIN_ID_MAP)
    ours, _ = both(raw, tmp_path / "zh_CN-x-medium.onnx")
    with pytest.raises(VoiceError) as failure:
        Frontend(ours)
    message = str(failure.value)
    assert "\n" not in message
    if importlib.util.find_spec("g2pw") is None:
        assert "pip install 'piper-tts[zh]'" in message
    else:
        assert "g2pW model" in message


def test_cli_names_what_to_install_in_one_line(tmp_path: Path) -> None:
    """A voice whose phonemizer is missing stops `synth` before its model is even read."""
    model = tmp_path / "zh_CN-x-medium.onnx"
    model.write_bytes(b"\0" * 4096)  # never loaded: the phonemizer check comes first
    Path(f"{model}.json").write_text(json.dumps(make_config("pinyin", "cmn", PINYIN_ID_MAP)))
    run = subprocess.run(
        [sys.executable, "-m", "autovoice", "synth", "--voice", str(model), "你好", "-o", "-"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert (
        len(lines) == 1
        and "pinyin" in lines[0]
        and ("pip install" in lines[0] or "g2pW" in lines[0])
    )


def test_espeak_vowel_clusters_are_merged_per_sentence_like_piper(english) -> None:
    ours, _ = english
    raw = dict(ours.raw_config)
    raw["phoneme_id_map"] = {**raw["phoneme_id_map"], "aɪ": [200], "oʊ": [201]}
    raw["vowel_clusters"] = [["a", "ɪ"], ["o", "ʊ"]]
    ours, piper = both(raw, default_voice_path())
    frontend = Frontend(ours, max_unit_phonemes=2000)
    text = "I know, my home is so nice. Go [[ aɪ ]] now!"
    expected = piper_ids(piper, text)
    assert any(200 in ids for ids in expected) and any(201 in ids for ids in expected)
    assert frontend.sentence_ids(text) == expected
    check_units(frontend, piper, text)


@pytest.mark.parametrize(
    ("kind", "espeak_voice", "text"),
    [
        ("text", "", "hello there, world."),
        ("espeak", "ar", "مرحبا بالعالم."),
        ("hebrew", "he", "שלום עולם."),
        ("japanese", "ja", "今日は良い天気です。"),
    ],
)
def test_a_voice_of_each_kind_loads_and_speaks(onnx_config, tmp_path, kind, espeak_voice, text):
    """The real default model under a config of another phoneme_type (same id map): the
    synthesizer loads it with that kind's phonemizer and speaks it."""
    if kind == "japanese":
        pytest.importorskip("pyopenjtalk", reason="pip install 'piper-tts[ja]'")
    from autovoice.engines import Synthesizer
    from tests.conftest import EXACT

    model = tmp_path / f"xx_XX-{kind}-medium.onnx"
    model.symlink_to(default_voice_path())
    raw = json.loads(Path(f"{default_voice_path()}.json").read_text())
    raw["phoneme_type"] = kind
    raw["espeak"] = {"voice": espeak_voice}
    Path(f"{model}.json").write_text(json.dumps(raw))
    synth = Synthesizer.load(onnx_config, voice=str(model), warm_up=False)
    try:
        _, piper = both(raw, model)
        assert synth.frontend.sentence_ids(text) == piper_ids(piper, text)
        audio = [chunk.samples for chunk in synth.speak(text, EXACT)]
        seconds = sum(len(a) for a in audio) / synth.sample_rate
        assert seconds > 0.2
    finally:
        synth.close()
