"""Per-client pause (Speech Dispatcher's semantics) on the real daemon: `PAUSE self` holds only
that client's messages while the other clients go on being spoken, and `RESUME self` continues
the paused message without a second BEGIN or a repeated index mark.
"""

from __future__ import annotations

import time

import pytest

from autovoice.daemon.ssip.testing import SsipConnection
from autovoice.daemon.testing import RawConnection
from tests.ssip.conftest import SsipDaemon, final_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MARKED = (
    '<speak><mark name="m0"/>The first sentence is spoken before anybody pauses anything. '
    '<mark name="m1"/>The second sentence comes next, and it takes a little while to say. '
    '<mark name="m2"/>A third sentence follows the second one, with a few more words. '
    '<mark name="m3"/>The fourth sentence keeps the voice busy for a while longer. '
    '<mark name="m4"/>And the fifth sentence ends the whole message.<mark name="end"/></speak>'
)
MARKS = ["m0", "m1", "m2", "m3", "m4", "end"]
LONG = (
    "A long message that keeps the voice busy for a good while, so that the other messages "
    "have to wait for it, or interrupt it, or pause it, as the test requires. It goes on."
)


def _setup(*conns: SsipConnection, priority: str = "text") -> None:
    for conn in conns:
        assert conn.command("SET SELF NOTIFICATION all on").ok
        assert conn.command(f"SET SELF PRIORITY {priority}").ok


def _finals(sub: RawConnection, *uids: int, timeout_s: float = 30.0) -> dict[int, dict]:
    """The final native events of `uids`, whatever order they come in."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = {
            e["utterance"]: e
            for e in sub.received
            if e.get("utterance") in uids and e["event"] in ("done", "cancelled", "error")
        }
        if len(got) == len(uids):
            return got
        sub.read(max(0.0, deadline - time.monotonic()))


def _quiet(conn: SsipConnection, quiet_s: float = 0.3) -> None:
    """No event arrives for `conn` within `quiet_s`."""
    with pytest.raises(TimeoutError):
        conn.next_event(quiet_s)


def test_pause_self_lets_others_speak_and_resume_continues(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as a, d.connect() as b, d.subscribe() as sub:
        _setup(a, b)
        assert a.command("SET SELF SSML_MODE on").ok
        a_msg = int(a.speak(MARKED).lines[0])
        events = a.events_of(a_msg, until="INDEX MARK")
        assert [(e.kind, e.mark) for e in events] == [("BEGIN", None), ("INDEX MARK", "m0")]
        assert a.command("PAUSE SELF").code == 211
        events += a.events_of(a_msg, until="PAUSED")
        # Another client's text is spoken while a is paused, and does not cancel a's message.
        b_msg = int(b.speak("Another client speaks while the first one is paused.").lines[0])
        assert [e.kind for e in b.events_of(b_msg)] == ["BEGIN", "END"]
        _quiet(a)
        assert a.command("RESUME SELF").code == 212
        events += a.events_of(a_msg, until="END", timeout_s=60)
        kinds = [e.kind for e in events]
        assert [k for k in kinds if k != "INDEX MARK"] == ["BEGIN", "PAUSED", "RESUMED", "END"]
        assert kinds.index("RESUMED") == kinds.index("PAUSED") + 1  # no mark while paused
        assert [e.mark for e in events if e.kind == "INDEX MARK"] == MARKS  # each one once
        # Natively too: one started, one first_audio, then done (b's came in between).
        assert final_of(sub, a_msg)["event"] == "done"
        native = [e["event"] for e in sub.received if e.get("utterance") == a_msg]
        assert native == ["queued", "started", "first_audio", "done"]
        finals = [e["utterance"] for e in sub.received if e["event"] == "done" and "utterance" in e]
        assert finals.index(b_msg) < finals.index(a_msg)


def test_pause_holds_a_queued_message_while_others_speak(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as a, d.connect() as b:
        _setup(a, b, priority="message")
        b_long = int(b.speak(LONG).lines[0])
        assert b.next_event(30).kind == "BEGIN"
        a_msg = int(a.speak("The first client's message waits in the queue.").lines[0])
        assert a.command("PAUSE SELF").code == 211
        b_next = int(b.speak("The second client goes on.").lines[0])
        # Without the pause, a's message (served round-robin) would come before b_next.
        assert b.command("STOP SELF").code == 210
        assert [e.kind for e in b.events_of(b_long)] == ["CANCELED"]
        assert [e.kind for e in b.events_of(b_next)] == ["BEGIN", "END"]
        _quiet(a)  # held: not begun, not paused (it never spoke), not cancelled
        assert a.command("RESUME SELF").code == 212
        assert [e.kind for e in a.events_of(a_msg)] == ["BEGIN", "END"]


def test_stop_and_cancel_while_paused(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as a, d.connect() as b, d.subscribe() as sub:
        _setup(a, priority="message")
        _setup(b)
        first = int(a.speak(LONG).lines[0])
        assert a.next_event(30).kind == "BEGIN"
        assert a.command("PAUSE SELF").code == 211
        assert [e.kind for e in a.events_of(first, until="PAUSED")] == ["PAUSED"]
        # STOP ends the paused message normally.
        assert a.command("STOP SELF").code == 210
        assert [e.kind for e in a.events_of(first)] == ["CANCELED"]
        assert final_of(sub, first)["reason"] == "stop"
        # Still paused: a new message is held, and b's text is spoken meanwhile (a paused
        # client's message, of a higher priority, does not hold it up).
        held = int(a.speak("Held while paused.").lines[0])
        b_msg = int(b.speak("The other client is not paused.").lines[0])
        assert [e.kind for e in b.events_of(b_msg)] == ["BEGIN", "END"]
        _quiet(a)
        # CANCEL drops the held one.
        assert a.command("CANCEL SELF").code == 213
        assert [e.kind for e in a.events_of(held)] == ["CANCELED"]
        assert final_of(sub, held)["reason"] == "cancel"
        assert a.command("RESUME SELF").code == 212
        _quiet(a)
        after = int(a.speak("Resumed and speaking again.").lines[0])
        assert [e.kind for e in a.events_of(after)] == ["BEGIN", "END"]


def test_a_paused_client_that_disconnects_loses_its_held_messages(ssip_daemon: SsipDaemon):
    d = ssip_daemon
    with d.connect() as b, d.subscribe() as sub:
        _setup(b)
        with d.connect() as a:
            _setup(a, priority="message")
            first = int(a.speak(LONG).lines[0])
            assert a.next_event(30).kind == "BEGIN"
            second = int(a.speak("Queued behind the first.").lines[0])
            assert a.command("PAUSE SELF").code == 211
            assert a.next_event(5).kind == "PAUSED"
        # The connection is gone: its held messages are dropped, nothing of it is spoken.
        finals = _finals(sub, first, second)
        assert [finals[u]["event"] for u in (first, second)] == ["cancelled", "cancelled"]
        started = [e.get("utterance") for e in sub.received if e["event"] == "started"]
        assert second not in started
        b_msg = int(b.speak("The daemon goes on for the others.").lines[0])
        assert [e.kind for e in b.events_of(b_msg)] == ["BEGIN", "END"]
