"""SSIP at the byte level: a raw socket drives the real daemon through every command, including
malformed ones, and checks reply codes, texts, events and their order.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from autovoice.daemon.ssip.testing import SsipConnection
from tests.audio_fixtures import REPO_ROOT
from tests.ssip.conftest import MAX_TEXT_BYTES, SsipDaemon, final_of, next_queued

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LONG = (
    "A long message that keeps the voice busy for a good while, so that the other messages "
    "have to wait for it, or interrupt it, or pause it, as the test requires. It goes on."
)

# (what is sent, exact reply) -- texts as Debian's Speech Dispatcher 0.11 sends them.
EXCHANGES = [
    (b"SET SELF CLIENT_NAME user:tests:main", b"208 OK CLIENT NAME SET\r\n"),
    (b'SET SELF CLIENT_NAME "user:tests:quoted"', b"208 OK CLIENT NAME SET\r\n"),
    (b"SET SELF CLIENT_NAME nocolons", b"311 ERR COULDNT SET CLIENT_NAME\r\n"),
    (b"SET SELF CLIENT_NAME a:b:c:d", b"311 ERR COULDNT SET CLIENT_NAME\r\n"),
    (b"SET ALL CLIENT_NAME a:b:c", b"311 ERR COULDNT SET CLIENT_NAME\r\n"),
    (b"SET SELF CLIENT_NAME", b"510 ERR MISSING PARAMETER\r\n"),
    (b"set self rate 20", b"203 OK RATE SET\r\n"),
    (b"GET RATE", b"251-20\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF RATE +30", b"203 OK RATE SET\r\n"),
    (b"SET SELF RATE 101", b"409 ERR RATE TOO HIGH\r\n"),
    (b"SET SELF RATE -101", b"410 ERR RATE TOO LOW\r\n"),
    (b"SET SELF RATE fast", b"511 ERR PARAMETER NOT A NUMBER\r\n"),
    (b"SET SELF RATE 2.5", b"511 ERR PARAMETER NOT A NUMBER\r\n"),
    (b"SET SELF RATE", b"510 ERR MISSING PARAMETER\r\n"),
    (b"SET SELF RATE 0", b"203 OK RATE SET\r\n"),
    (b"SET SELF PITCH 50", b"204 OK PITCH SET\r\n"),
    (b"SET SELF PITCH 200", b"411 ERR PITCH TOO HIGH\r\n"),
    (b"SET SELF PITCH -200", b"412 ERR PITCH TOO LOW\r\n"),
    (b"GET PITCH", b"251-50\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF PITCH_RANGE 10", b"263 OK PITCH RANGE SET\r\n"),
    (b"SET SELF PITCH_RANGE 101", b"415 ERR PITCH RANGE TOO HIGH\r\n"),
    (b"SET SELF PITCH_RANGE -101", b"416 ERR PITCH RANGE TOO LOW\r\n"),
    (b"GET PITCH_RANGE", b"251-10\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF VOLUME -20", b"218 OK VOLUME SET\r\n"),
    (b"SET SELF VOLUME 101", b"413 ERR VOLUME TOO HIGH\r\n"),
    (b"SET SELF VOLUME -101", b"414 ERR VOLUME TOO LOW\r\n"),
    (b"SET SELF VOLUME loud", b"511 ERR PARAMETER NOT A NUMBER\r\n"),
    (b"GET VOLUME", b"251--20\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF VOLUME 0", b"218 OK VOLUME SET\r\n"),
    (b"SET SELF PRIORITY message", b"202 OK PRIORITY SET\r\n"),
    (b"SET SELF PRIORITY URGENT", b"408 ERR UNKNOWN PRIORITY\r\n"),
    (b"SET ALL PRIORITY text", b"301 ERR COULDNT SET PRIORITY\r\n"),
    (b"GET PRIORITY", b"251-message\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF PRIORITY Text", b"202 OK PRIORITY SET\r\n"),
    (b"GET LANGUAGE", b"251-en-US\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF LANGUAGE C", b"201 OK LANGUAGE SET\r\n"),
    (b"SET SELF LANGUAGE en", b"201 OK LANGUAGE SET\r\n"),
    (b"GET LANGUAGE", b"251-en\r\n251 OK GET RETURNED\r\n"),
    (b"GET SYNTHESIS_VOICE", b"251-en_US-joe-medium\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF SYNTHESIS_VOICE en_US-joe-medium", b"209 OK VOICE SET\r\n"),
    (b"SET SELF SYNTHESIS_VOICE no-such-voice", b"309 ERR COULDNT SET VOICE\r\n"),
    (b"SET SELF VOICE_TYPE female1", b"209 OK VOICE SET\r\n"),
    (b"GET VOICE_TYPE", b"251-FEMALE1\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF VOICE_TYPE robot", b"309 ERR COULDNT SET VOICE\r\n"),
    (b"SET SELF OUTPUT_MODULE autovoice", b"216 OK OUTPUT MODULE SET\r\n"),
    (b"SET SELF OUTPUT_MODULE espeak-ng", b"312 ERR COULDNT SET OUTPUT MODULE\r\n"),
    (b"GET OUTPUT_MODULE", b"251-autovoice\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF PUNCTUATION most", b"205 OK PUNCTUATION SET\r\n"),
    (b"SET SELF PUNCTUATION loads", b"514 ERR PARAMETER INVALID\r\n"),
    (b"GET PUNCTUATION", b"251-most\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF PUNCTUATION none", b"205 OK PUNCTUATION SET\r\n"),
    (b"SET SELF SPELLING on", b"207 OK SPELLING SET\r\n"),
    (b"SET SELF SPELLING maybe", b"513 ERR PARAMETER NOT ON OR OFF\r\n"),
    (b"GET SPELLING", b"251-on\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF SPELLING off", b"207 OK SPELLING SET\r\n"),
    (b"SET SELF CAP_LET_RECOGN spell", b"206 OK CAP LET RECOGNITION SET\r\n"),
    (b"SET SELF CAP_LET_RECOGN beep", b"514 ERR PARAMETER INVALID\r\n"),
    (b"GET CAP_LET_RECOGN", b"251-spell\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF SSML_MODE on", b"219 OK SSML MODE SET\r\n"),
    (b"SET SELF SSML_MODE yes", b"513 ERR PARAMETER NOT ON OR OFF\r\n"),
    (b"GET SSML_MODE", b"251-on\r\n251 OK GET RETURNED\r\n"),
    (b"SET SELF SSML_MODE off", b"219 OK SSML MODE SET\r\n"),
    (b"SET SELF PAUSE_CONTEXT 2", b"217 OK PAUSE CONTEXT SET\r\n"),
    (b"SET SELF PAUSE_CONTEXT x", b"511 ERR PARAMETER NOT A NUMBER\r\n"),
    (b"SET SELF NOTIFICATION begin on", b"220 OK NOTIFICATION SET\r\n"),
    (b"SET SELF NOTIFICATION INDEX_MARKS ON", b"220 OK NOTIFICATION SET\r\n"),
    (b"SET SELF NOTIFICATION all off", b"220 OK NOTIFICATION SET\r\n"),
    (b"SET SELF NOTIFICATION words on", b"316 ERR COULDNT SET NOTIFICATION\r\n"),
    (b"SET SELF NOTIFICATION end maybe", b"514 ERR PARAMETER INVALID\r\n"),
    (b"SET SELF NOTIFICATION end", b"510 ERR MISSING PARAMETER\r\n"),
    (b"SET SELF DEBUG on", b"317 ERR COULDNT SET DEBUGGING\r\n"),
    (b"SET SELF LOUDNESS 3", b"500 ERR INVALID COMMAND\r\n"),
    (b"SET ALL RATE 0", b"203 OK RATE SET\r\n"),
    (b"SET 999999 RATE 10", b"303 ERR COULDNT SET RATE\r\n"),
    (b"SET OTHERS RATE 10", b"514 ERR PARAMETER INVALID\r\n"),
    (b"SET SELF", b"510 ERR MISSING PARAMETER\r\n"),
    (b"SET", b"510 ERR MISSING PARAMETER\r\n"),
    (b"GET", b"510 ERR MISSING PARAMETER\r\n"),
    (b"GET COLOUR", b"514 ERR PARAMETER INVALID\r\n"),
    (
        b"LIST VOICES",
        b"249-MALE1\r\n249-MALE2\r\n249-MALE3\r\n249-FEMALE1\r\n249-FEMALE2\r\n249-FEMALE3\r\n"
        b"249-CHILD_MALE\r\n249-CHILD_FEMALE\r\n249 OK VOICE LIST SENT\r\n",
    ),
    (b"LIST OUTPUT_MODULES", b"250-autovoice\r\n250 OK MODULE LIST SENT\r\n"),
    (
        b"LIST SYNTHESIS_VOICES",
        b"249-en_US-joe-medium\ten-US\tnone\r\n249 OK VOICE LIST SENT\r\n",
    ),
    (
        b"LIST SYNTHESIS_VOICES en",
        b"249-en_US-joe-medium\ten-US\tnone\r\n249 OK VOICE LIST SENT\r\n",
    ),
    (b"LIST SYNTHESIS_VOICES de", b"249 OK VOICE LIST SENT\r\n"),
    (b"LIST MODULES", b"514 ERR PARAMETER INVALID\r\n"),
    (b"LIST", b"510 ERR MISSING PARAMETER\r\n"),
    (b"HISTORY GET CLIENT_LIST", b"380 ERR NOT YET IMPLEMENTED\r\n"),
    (b"HISTORY SAY 1", b"380 ERR NOT YET IMPLEMENTED\r\n"),
    (b"HISTORY FORGET 1", b"514 ERR PARAMETER INVALID\r\n"),
    (b"HISTORY GET", b"510 ERR MISSING PARAMETER\r\n"),
    (b"HISTORY", b"510 ERR MISSING PARAMETER\r\n"),
    (b"STOP", b"510 ERR MISSING PARAMETER\r\n"),
    (b"STOP everybody", b"514 ERR PARAMETER INVALID\r\n"),
    (b"STOP SELF", b"210 OK STOPPED\r\n"),
    (b"STOP 999999", b"210 OK STOPPED\r\n"),
    (b"CANCEL", b"510 ERR MISSING PARAMETER\r\n"),
    (b"CANCEL self", b"213 OK CANCELED\r\n"),
    (b"CANCEL x1", b"514 ERR PARAMETER INVALID\r\n"),
    (b"PAUSE", b"510 ERR MISSING PARAMETER\r\n"),
    (b"PAUSE SELF", b"211 OK PAUSED\r\n"),
    (b"RESUME", b"510 ERR MISSING PARAMETER\r\n"),
    (b"RESUME SELF", b"212 OK RESUMED\r\n"),
    (b"CHAR", b"510 ERR MISSING PARAMETER\r\n"),
    (b"KEY", b"510 ERR MISSING PARAMETER\r\n"),
    (b"SOUND_ICON", b"510 ERR MISSING PARAMETER\r\n"),
    (b"BLOCK", b"510 ERR MISSING PARAMETER\r\n"),
    (b"BLOCK MIDDLE", b"514 ERR PARAMETER INVALID\r\n"),
    (b"BLOCK END", b"331 ERR ALREADY OUTSIDE BLOCK\r\n"),
    (b"FLY AWAY", b"500 ERR INVALID COMMAND\r\n"),
    (b"", b"500 ERR INVALID COMMAND\r\n"),
    (b"   ", b"500 ERR INVALID COMMAND\r\n"),
    (b"GET RA\xffTE", b"501 ERR INVALID ENCODING\r\n"),
    (b"SPEAK\r\n.", b"230 OK RECEIVING DATA\r\n227 OK MESSAGE CANCELED\r\n"),
    (b"SPEAK\r\n \r\n.", b"230 OK RECEIVING DATA\r\n227 OK MESSAGE CANCELED\r\n"),
    (b"SPEAK\r\nbad \xff bytes\r\n.", b"230 OK RECEIVING DATA\r\n501 ERR INVALID ENCODING\r\n"),
]


def _exchange(conn: SsipConnection, sent: bytes, expected: bytes) -> None:
    conn.send(sent + b"\r\n")
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(expected) and time.monotonic() < deadline:
        got += conn.read_all(0.05)
    got += conn.read_all(0.02)
    assert got == expected, f"{sent!r}: expected {expected!r}, got {got!r}"


def test_every_command_and_malformed_input(ssip_daemon: SsipDaemon):
    with ssip_daemon.connect() as conn:
        for sent, expected in EXCHANGES:
            _exchange(conn, sent, expected)
        help_reply = conn.command("HELP")
        assert help_reply.code == 248 and help_reply.text == "OK HELP SENT"
        assert [line.split()[0] for line in help_reply.lines] == [
            "SPEAK", "KEY", "CHAR", "SOUND_ICON", "SET", "GET", "LIST", "HISTORY", "QUIT",
        ]  # fmt: skip
        client_id = conn.command("HISTORY GET CLIENT_ID")
        assert client_id.code == 245 and client_id.lines[0].isdigit()
        _exchange(conn, b"QUIT", b"231 HAPPY HACKING\r\n")
        with pytest.raises(ConnectionError):
            conn.reply(2)


def test_speak_events_in_order_with_dot_unescaping(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as conn, d.subscribe() as sub:
        assert conn.command("SET SELF NOTIFICATION all on").code == 220
        client = int(conn.command("HISTORY GET CLIENT_ID").lines[0])
        # Lines starting with a dot go dot-escaped on the wire (see test_units for the text).
        reply = conn.speak("First line.\n.Dotted second line.\n..two dots")
        assert (reply.code, reply.text) == (225, "OK MESSAGE QUEUED")
        msg_id = int(reply.lines[0])
        queued = next_queued(sub)
        assert queued["utterance"] == msg_id
        events = conn.events_of(msg_id)
        assert [e.kind for e in events] == ["BEGIN", "END"]
        assert {(e.msg_id, e.client_id) for e in events} == {(msg_id, client)}
        assert final_of(sub, msg_id, timeout_s=1)["event"] == "done"


def test_events_only_when_switched_on(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as conn, d.subscribe() as sub:
        assert conn.command("SET SELF NOTIFICATION end on").code == 220
        msg_id = int(conn.speak("Only the end.").lines[0])
        assert [e.kind for e in conn.events_of(msg_id)] == ["END"]
        assert conn.command("SET SELF NOTIFICATION end off").code == 220
        msg_id = int(conn.speak("No events at all.").lines[0])
        assert final_of(sub, msg_id)["event"] == "done"
        assert conn.read_all(0.2) == b""


def test_ssml_index_marks_in_order_and_timed(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    ssml = (
        '<speak><mark name="start"/>One, two, three, four, five, six, seven. '
        '<mark name="middle"/>Eight, nine, ten, eleven, twelve, thirteen.'
        '<break time="400ms"/>Done.<mark name="end"/></speak>'
    )
    with d.connect() as conn:
        for line in ("SET SELF NOTIFICATION all on", "SET SELF SSML_MODE on"):
            assert conn.command(line).ok
        msg_id = int(conn.speak(ssml).lines[0])
        events = conn.events_of(msg_id, timeout_s=30)
    kinds = [(e.kind, e.mark) for e in events]
    assert kinds == [
        ("BEGIN", None),
        ("INDEX MARK", "start"),
        ("INDEX MARK", "middle"),
        ("INDEX MARK", "end"),
        ("END", None),
    ]
    begin, start, middle, end, done = (e.received_s for e in events)
    assert start - begin < 0.1
    # The middle mark comes while the message is being spoken, not at its start or end.
    assert 0.2 * (done - begin) < middle - begin < 0.85 * (done - begin)
    assert done - end < 0.1


def test_priorities_and_cancel_events(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as a, d.connect() as b, d.subscribe() as sub:
        for conn in (a, b):
            assert conn.command("SET SELF NOTIFICATION all on").ok
        assert a.command("SET SELF PRIORITY text").ok
        long_id = int(a.speak(LONG).lines[0])
        assert a.next_event(30).kind == "BEGIN"
        # A notification while a text speaks is dropped at once: only 703.
        assert b.command("SET SELF PRIORITY notification").ok
        dropped = int(b.speak("Dropped notification.").lines[0])
        assert [e.kind for e in b.events_of(dropped)] == ["CANCELED"]
        # An important message interrupts the text: 703 for it, then the important speaks.
        assert b.command("SET SELF PRIORITY important").ok
        important = int(b.speak("Important.").lines[0])
        assert [e.kind for e in a.events_of(long_id)] == ["CANCELED"]
        assert [e.kind for e in b.events_of(important)] == ["BEGIN", "END"]
        assert final_of(sub, long_id)["reason"] == "priority"


def test_stop_cancel_pause_resume_targets(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as a, d.connect() as b, d.subscribe() as sub:
        for conn in (a, b):
            assert conn.command("SET SELF NOTIFICATION all on").ok
            assert conn.command("SET SELF PRIORITY message").ok
        a_id = int(a.command("HISTORY GET CLIENT_ID").lines[0])
        first = int(a.speak(LONG).lines[0])
        second = int(a.speak("Queued behind it.").lines[0])
        assert a.next_event(30).kind == "BEGIN"
        # Another client's STOP SELF and PAUSE SELF do not touch a's message.
        assert b.command("STOP SELF").code == 210
        assert b.command("PAUSE SELF").code == 211
        with pytest.raises(TimeoutError):
            a.next_event(0.3)  # no 704 PAUSED: a's message was not b's to pause
        # PAUSE <client id> pauses a's message; 704 then 705 on RESUME.
        assert b.command(f"PAUSE {a_id}").code == 211
        assert [(e.kind, e.msg_id) for e in [a.next_event(5)]] == [("PAUSED", first)]
        time.sleep(0.3)
        assert b.command("RESUME ALL").code == 212
        assert [(e.kind, e.msg_id) for e in [a.next_event(5)]] == [("RESUMED", first)]
        # STOP <client id> ends only the current message; the queued one then speaks.
        assert b.command(f"STOP {a_id}").code == 210
        assert [e.kind for e in a.events_of(first)] == ["CANCELED"]
        assert final_of(sub, first)["reason"] == "stop"
        assert a.next_event(30).kind == "BEGIN"
        # CANCEL ALL drops everything.
        assert b.command("CANCEL ALL").code == 213
        assert [e.kind for e in a.events_of(second)] == ["CANCELED"]


def test_block_is_spoken_as_one_message(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as conn:
        assert conn.command("SET SELF NOTIFICATION all on").ok
        assert conn.command("BLOCK BEGIN").code == 260
        assert conn.command("BLOCK BEGIN").code == 330
        for line in (
            "SET SELF PRIORITY text",
            "SET SELF CLIENT_NAME a:b:c",
            "STOP ALL",
            "CANCEL SELF",
            "PAUSE ALL",
            "RESUME ALL",
            "HISTORY GET CLIENT_ID",
        ):
            assert conn.command(line).code == 332, line  # fmt: skip
        assert conn.command("SET SELF RATE 10").code == 203
        first = conn.speak("First part of the block.")
        second = conn.command("CHAR x")
        assert first.code == second.code == 225 and first.lines == second.lines
        assert conn.read_all(0.3) == b"", "a block speaks only at BLOCK END"
        assert conn.command("BLOCK END").code == 261
        msg_id = int(first.lines[0])
        assert [e.kind for e in conn.events_of(msg_id)] == ["BEGIN", "END"]


def test_limits_framing_and_still_speaking(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as conn:
        # Over the text limit: the block is read to its end, then refused.
        big = "word " * (MAX_TEXT_BYTES // 5 + 10)
        assert conn.speak(big).code == 514
        # A command line over the limit is refused without losing the connection.
        conn.send(b"SET SELF RATE " + b"1" * (MAX_TEXT_BYTES + 100) + b"\r\n")
        assert conn.reply().code == 500
        # LF-only lines, and a command split into single bytes.
        conn.send(b"SET SELF NOTIFICATION all on\n")
        assert conn.reply().code == 220
        for byte in b"SET SELF RATE 5\r\n":
            conn.send(bytes([byte]))
        assert conn.reply().code == 203
        # Pipelined commands are answered in order.
        conn.send(b"GET RATE\r\nGET VOLUME\r\nSPEAK\r\nStill speaking.\r\n.\r\n")
        replies = [conn.reply() for _ in range(4)]
        assert [r.code for r in replies] == [251, 251, 230, 225]
        msg_id = int(replies[3].lines[0])
        assert [e.kind for e in conn.events_of(msg_id)] == ["BEGIN", "END"]


def test_many_clients_and_disconnects(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with d.connect() as conn:
                assert conn.command(f"SET SELF CLIENT_NAME user:c{i}:main").code == 208
                assert conn.command("SET SELF PRIORITY progress").code == 202
                assert conn.command("HISTORY GET CLIENT_ID").code == 245
                if i % 2:
                    conn.send(b"SPEAK\r\nhalf a message")  # and hang up mid-block
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    # The daemon still speaks for a new client.
    with d.connect() as conn:
        assert conn.command("SET SELF NOTIFICATION end on").ok
        msg_id = int(conn.speak("Still here.").lines[0])
        assert [e.kind for e in conn.events_of(msg_id)] == ["END"]


def test_serve_ssip_takes_speechd_address_and_refuses_a_live_socket(ssip_daemon, tmp_path):
    d = ssip_daemon
    env = dict(d.audio.env, SPEECHD_ADDRESS=f"unix_socket:{d.ssip_path}")
    cmd = [sys.executable, "-m", "autovoice", "serve", "--socket", str(tmp_path / "b.sock")]
    bad = subprocess.run(
        [*cmd, "--ssip"],
        env=dict(env, SPEECHD_ADDRESS="inet_socket:127.0.0.1:6560"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unix_socket" in bad.stderr, bad.stderr
    second = subprocess.run(
        [*cmd, "--ssip", "--config", str(d.proc.args[1])],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1, second.stderr
    assert str(d.ssip_path) in second.stderr.splitlines()[-1], second.stderr
    assert not (tmp_path / "b.sock").exists()
    # The first daemon still answers on its SSIP socket.
    with d.connect() as conn:
        assert conn.command("HISTORY GET CLIENT_ID").code == 245
