"""Unit tests of the SSIP pieces without a daemon: framing, SSML, text forms, commands on a
fake backend, socket paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autovoice.daemon.scheduler import Priority
from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.codec import DataBlock, LineSplitter, Overflow
from autovoice.daemon.ssip.commands import Commands, VoiceEntry
from autovoice.daemon.ssip.paths import default_ssip_path, ssip_path_from_env
from autovoice.daemon.ssip.session import Session, rate_multiplier, volume_factor
from autovoice.daemon.ssip.ssml import Mark, parse
from autovoice.daemon.ssip.text import char_text, key_text, punctuate, spell

# -- framing -----------------------------------------------------------------------------------


@given(
    st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b)),
    st.lists(st.integers(1, 7), min_size=1),
)
def test_splitter_gives_the_same_lines_for_any_chunking(lines, cuts):
    stream = b"".join(line + b"\r\n" for line in lines)
    splitter = LineSplitter(64)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += splitter.feed(stream[pos : pos + step])
        pos, i = pos + step, i + 1
    assert out == lines


def test_splitter_accepts_lf_and_bounds_lines():
    splitter = LineSplitter(8)
    assert splitter.feed(b"a\nbb\r\n") == [b"a", b"bb"]
    assert splitter.feed(b"x" * 20) == []
    assert splitter.pending_bytes <= 28
    assert splitter.feed(b"yy\r\nok\r\n") == [Overflow(22), b"ok"]
    with pytest.raises(ValueError):
        LineSplitter(0)


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)))
def test_data_block_undoes_the_dot_escaping(lines):
    lines = [ln.replace("\r", "").replace("\n", "") for ln in lines]
    wire = [("." + ln if ln.startswith(".") else ln).encode() for ln in lines] + [b"."]
    block = DataBlock(max_bytes=1 << 20)
    done = [block.add(line) for line in wire]
    assert done == [False] * len(lines) + [True]
    assert block.text() == "\n".join(lines)


def test_data_block_too_long_is_read_to_its_end():
    block = DataBlock(max_bytes=10)
    assert not block.add(b"0123456789abc")
    assert not block.add(b"more")
    assert block.add(b".")
    assert block.too_long and block.lines == []


# -- SSML --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ssml", "text"),
    [
        ("<speak>Hello <emphasis>big</emphasis> world</speak>", "Hello big world"),
        ('<?xml version="1.0"?><!-- note --><speak>ok</speak>', "ok"),
        ("<speak>A &amp; B &lt;tag&gt;</speak>", "A & B <tag>"),
        ('<speak><sub alias="World Wide Web">WWW</sub></speak>', "World Wide Web"),
        ("<speak><desc>a cat</desc>Meow</speak>", "Meow"),
        ('<speak>Hi<break time="1s"/>there</speak>', "Hi. there"),
        ('<speak>Hi<break strength="weak"/>there</speak>', "Hi, there"),
        ('<speak>Hi<break time="0ms"/>there</speak>', "Hithere"),
        ("<speak><s>One</s><s>Two</s></speak>", "One.  Two. "),
        ('<say-as interpret-as="characters">ab</say-as>!', "A, B !"),
        ("no tags at all", "no tags at all"),
        ("broken <tag", "broken "),
        ("a < b", "a < b"),
        ("<speak>unclosed <voice name='x'>text", "unclosed text"),
    ],
)
def test_ssml_tags_are_never_read(ssml, text):
    assert parse(ssml).text == text


def test_ssml_marks_and_rate():
    msg = parse('<speak><mark name="a"/>One <mark name=\'b\'/>two<mark name="c"/></speak>')
    assert msg.pieces == [Mark("a"), "One ", Mark("b"), "two", Mark("c")]
    assert msg.marks == [(0, "a"), (4, "b"), (7, "c")]
    assert parse('<prosody rate="x-slow">a</prosody><prosody rate="fast">b</prosody>').rate == 0.5
    assert parse('<prosody rate="+50%">a</prosody>').rate == 1.5
    assert parse('<prosody rate="80%">a</prosody>').rate == 0.8
    assert parse('<prosody rate="2">a</prosody>').rate == 2.0
    assert parse('<prosody rate="warp">a</prosody>').rate is None
    assert parse('<desc><mark name="hidden"/></desc>x').marks == []


# -- text forms --------------------------------------------------------------------------------


def test_char_key_spell_punctuation():
    assert char_text("a") == "A"
    assert char_text("A", "none") == "A"
    assert char_text("A", "icon") == "capital A"
    assert char_text("?") == "question"
    assert char_text("é") == "É"
    assert key_text("control_alt_delete") == "control alt delete"
    assert key_text("kp-enter") == "keypad enter"
    assert key_text("_") == "underscore"
    assert spell("a b") == "A, space, B"
    assert punctuate("a@b", "none") == "a@b"
    assert punctuate("(x)", "most") == " left paren x right paren "
    with pytest.raises(ValueError):
        punctuate("x", "loud")


def test_rate_and_volume_maps():
    assert rate_multiplier(0) == 1.0
    assert rate_multiplier(50) == pytest.approx(3**0.5)
    assert volume_factor(-100) == 0.0 and volume_factor(100) == 2.0


# -- commands on a fake backend ----------------------------------------------------------------


class FakeBackend:
    def __init__(self) -> None:
        self.spoken: list[tuple[int, str, Priority, int | None]] = []
        self.controls: list[tuple[str, int, object]] = []
        self._sessions: dict[int, Session] = {}
        self._next = 100

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def speak(self, session, message, msg_id=None):
        msg_id = msg_id or self.new_id()
        self.spoken.append((session.client_id, message.text, session.priority, msg_id))
        return msg_id

    def stop(self, session, target):
        self.controls.append(("stop", session.client_id, target))

    cancel = pause = resume = stop

    def voices(self):
        return [VoiceEntry("en_US-joe-medium", "en-US"), VoiceEntry("de_DE-x-low", "de-DE")]

    def sessions(self):
        return self._sessions


@pytest.fixture
def cmd():
    backend = FakeBackend()
    commands = Commands(backend, max_text_bytes=1000)
    for cid in (1, 2):
        backend._sessions[cid] = Session(cid)
    return commands, backend


def _send(commands: Commands, session: Session, line: str) -> bytes:
    return commands.handle(session, line.encode()).reply


def test_set_all_and_set_client_id(cmd):
    commands, backend = cmd
    one, two = backend._sessions[1], backend._sessions[2]
    assert _send(commands, one, "SET ALL RATE 40") == r.encode(r.OK_RATE_SET)
    assert one.rate == two.rate == 40
    assert _send(commands, one, "SET 2 VOLUME -10") == r.encode(r.OK_VOLUME_SET)
    assert two.volume == -10 and one.volume == 0
    assert _send(commands, one, "SET 2 PRIORITY text") == r.encode(r.ERR_COULDNT_SET_PRIORITY)
    assert _send(commands, one, "SET 2 NOTIFICATION all on") == r.encode(
        r.ERR_COULDNT_SET_NOTIFICATION
    )


def test_speaking_commands_transform_the_text(cmd):
    commands, backend = cmd
    s = backend._sessions[1]
    _send(commands, s, "SET SELF CAP_LET_RECOGN spell")
    assert _send(commands, s, "CHAR Q") == r.encode(r.OK_MESSAGE_QUEUED, ["101"])
    _send(commands, s, "KEY shift_b")
    _send(commands, s, "SOUND_ICON message_sent")
    _send(commands, s, "SET SELF SPELLING on")
    commands.finish_speak(s, b"ok")
    _send(commands, s, "SET SELF SPELLING off")
    _send(commands, s, "SET SELF PUNCTUATION all")
    commands.finish_speak(s, b"Hi!")
    _send(commands, s, "SET SELF SSML_MODE on")
    _send(commands, s, "SET SELF PUNCTUATION none")
    commands.finish_speak(s, b"<speak>Tagged <mark name='x'/>text</speak>")
    texts = [t for _, t, _, _ in backend.spoken]
    assert texts == [
        "capital Q",
        "shift B",
        "message sent",
        "O, K",
        "Hi exclamation ",
        "Tagged text",
    ]


def test_block_collects_and_speaks_once(cmd):
    commands, backend = cmd
    s = backend._sessions[1]
    assert _send(commands, s, "BLOCK BEGIN") == r.encode(r.OK_INSIDE_BLOCK)
    first = commands.finish_speak(s, b"one")
    second = _send(commands, s, "CHAR a")
    assert first == second == r.encode(r.OK_MESSAGE_QUEUED, ["101"])
    assert backend.spoken == []
    assert _send(commands, s, "BLOCK END") == r.encode(r.OK_OUTSIDE_BLOCK)
    assert backend.spoken == [(1, "one\nA", Priority.TEXT, 101)]
    assert _send(commands, s, "BLOCK BEGIN") == r.encode(r.OK_INSIDE_BLOCK)
    assert _send(commands, s, "BLOCK END") == r.encode(r.OK_OUTSIDE_BLOCK)
    assert len(backend.spoken) == 1


def test_control_targets(cmd):
    commands, backend = cmd
    s = backend._sessions[1]
    for line in ("STOP ALL", "CANCEL self", "PAUSE 7", "RESUME all"):
        assert r.encode(r.ERR_PARAMETER_INVALID) != _send(commands, s, line)
    assert [t for _, _, t in backend.controls] == ["all", "self", 7, "all"]


def test_speak_text_limit_and_refusals(cmd):
    commands, backend = cmd
    s = backend._sessions[1]
    assert commands.finish_speak(s, None) == r.encode(r.ERR_PARAMETER_INVALID)

    def refuse(*a, **k):
        raise OverflowError("full")

    backend.speak = refuse
    assert commands.finish_speak(s, b"x") == r.encode(r.ERR_INTERNAL)


def test_get_synthesis_voice_follows_language(cmd):
    commands, backend = cmd
    s = backend._sessions[1]
    _send(commands, s, "SET SELF LANGUAGE de")
    assert _send(commands, s, "GET SYNTHESIS_VOICE") == r.encode(r.OK_GET, ["de_DE-x-low"])
    assert _send(commands, s, "LIST SYNTHESIS_VOICES de") == r.encode(
        r.OK_VOICE_LIST, ["de_DE-x-low\tde-DE\tnone"]
    )
    assert _send(commands, s, "LIST SYNTHESIS_VOICES en-US none") == r.encode(
        r.OK_VOICE_LIST, ["en_US-joe-medium\ten-US\tnone"]
    )


def test_a_bug_in_a_handler_is_answered():
    class Broken(FakeBackend):
        def voices(self):
            raise KeyError("boom")

    commands = Commands(Broken(), 100)
    assert commands.handle(Session(1), b"LIST SYNTHESIS_VOICES").reply == r.encode(r.ERR_INTERNAL)


# -- paths -------------------------------------------------------------------------------------


def test_socket_paths():
    assert default_ssip_path({"XDG_RUNTIME_DIR": "/run/user/5"}) == Path(
        "/run/user/5/speech-dispatcher/speechd.sock"
    )
    env = {"XDG_RUNTIME_DIR": "/r", "SPEECHD_ADDRESS": "unix_socket:/tmp/x.sock"}
    assert ssip_path_from_env(env) == Path("/tmp/x.sock")
    assert ssip_path_from_env({"XDG_RUNTIME_DIR": "/r", "SPEECHD_ADDRESS": "unix_socket"}) == Path(
        "/r/speech-dispatcher/speechd.sock"
    )
    with pytest.raises(ValueError, match="unix_socket"):
        ssip_path_from_env({"SPEECHD_ADDRESS": "inet_socket:localhost:6560"})
