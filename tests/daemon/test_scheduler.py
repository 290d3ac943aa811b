"""The scheduler's priority table, stop/cancel/pause, fairness, and the one-final-event rule."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autovoice.daemon.scheduler import CancelReason, Priority, Scheduler, Utterance

IMP, M, T, N, P = (
    Priority.IMPORTANT,
    Priority.MESSAGE,
    Priority.TEXT,
    Priority.NOTIFICATION,
    Priority.PROGRESS,
)


class Rig:
    """A scheduler plus helpers that name utterances by text."""

    def __init__(self) -> None:
        self.s = Scheduler()
        self.removed: list[str] = []
        self.interrupted: list[str] = []

    def add(self, text: str, priority: Priority = M, client: int = 1) -> Utterance:
        utt = Utterance(self.s.new_uid(), text, priority, client_id=client)
        c = self.s.submit(utt)
        self.removed += [u.text for u in c.removed]
        if c.interrupted:
            self.interrupted.append(c.interrupted.text)
        return utt

    def start(self) -> str:
        utt = self.s.next_utterance(timeout_s=0)
        assert utt is not None
        return utt.text

    def finish(self) -> None:
        self.s.finish(self.s.current)

    def order(self) -> list[str]:
        return [u.text for u in self.s.queued()]


def test_message_queues_in_order_and_never_interrupts_itself():
    r = Rig()
    r.add("a")
    assert r.start() == "a"
    r.add("b")
    r.add("c")
    assert r.interrupted == [] and r.order() == ["b", "c"]


def test_important_interrupts_others_and_postpones_message_and_text():
    r = Rig()
    r.add("m1")
    r.start()
    r.add("m2")
    r.add("t", T)
    r.add("n", N)  # dropped at once: others are busy
    r.add("i", IMP)
    assert r.interrupted == ["m1"]
    assert r.removed == ["n"]
    assert r.order() == ["i", "m2", "t"]


def test_important_cancels_queued_notification_and_progress():
    r = Rig()
    r.s.pause()
    r.s.resume()
    r.add("p", P)  # nothing busy: queued
    assert r.order() == ["p"]
    r.add("i", IMP)
    assert r.removed == ["p"] and r.order() == ["i"]


def test_important_is_never_interrupted():
    r = Rig()
    r.add("i1", IMP)
    r.start()
    for text, pr in (("i2", IMP), ("m", M), ("t", T)):
        r.add(text, pr)
    assert r.interrupted == []
    assert r.order() == ["i2", "m", "t"]


def test_message_cancels_text_notification_progress():
    r = Rig()
    r.add("t1", T)
    r.start()
    r.add("m", M)
    assert r.interrupted == ["t1"]
    r.finish()
    r.start()  # m speaks
    r.add("t2", T)
    r.add("m2", M)
    assert r.removed == ["t2"] and r.order() == ["m2"]


def test_text_replaces_text():
    r = Rig()
    r.add("t1", T)
    r.start()
    r.add("t2", T)
    r.add("t3", T)
    assert r.interrupted == ["t1"] and r.removed == ["t2"] and r.order() == ["t3"]


def test_notification_replaces_notification_but_yields_to_everything_else():
    r = Rig()
    r.add("n1", N)
    r.start()
    r.add("n2", N)
    assert r.interrupted == ["n1"] and r.order() == ["n2"]
    r.add("t", T)
    assert r.removed == ["n2"] and r.order() == ["t"]
    r.add("n3", N)
    assert r.removed[-1] == "n3"


def test_progress_keeps_only_the_last_and_speaks_it_as_message():
    r = Rig()
    r.add("10%", P)
    r.start()
    r.add("20%", P)
    r.add("30%", P)
    assert r.interrupted == [] and r.removed == ["20%"] and r.order() == ["30%"]
    held = r.s.queued()[0]
    assert held.effective is M
    r.add("m", M)  # message cancels held progress (SSIP: progress waiting is cancelled)
    assert r.removed[-1] == "30%" and r.order() == ["m"]


def test_paused_drops_notification_and_progress_and_holds_the_rest():
    r = Rig()
    r.s.pause()
    r.add("m")
    r.add("n", N)
    r.add("p", P)
    assert r.removed == ["n", "p"]
    assert r.s.next_utterance(timeout_s=0.01) is None
    r.s.resume()
    assert r.start() == "m"


def test_stop_and_cancel():
    r = Rig()
    r.add("a", client=1)
    r.add("b", client=2)
    r.add("c", client=1)
    r.start()
    c = r.s.stop(client_id=2)
    assert c.interrupted is None
    c = r.s.stop()
    assert c.interrupted.text == "a" and c.interrupted.cancel_reason is CancelReason.STOP
    c = r.s.cancel(client_id=1)
    assert [u.text for u in c.removed] == ["c"]
    uid_b = r.s.queued()[0].uid
    c = r.s.cancel(uid=uid_b)
    assert [u.text for u in c.all] == ["b"] and r.s.queue_depth() == 0


def test_paused_client_is_skipped_and_its_current_one_held_out_of_the_rules():
    r = Rig()
    r.add("a1", T, client=1)
    assert r.start() == "a1"
    held = r.s.pause_client(1)
    assert held is not None and held.text == "a1" and held.hold_event.is_set()
    assert r.s.client_paused(1) and not r.s.client_paused(2)
    # While it is being taken off, arrivals neither cancel it nor wait for it.
    r.add("a2", M, client=1)
    r.add("b1", T, client=2)
    assert r.interrupted == [] and r.removed == []
    assert r.s.park(held) and not held.hold_event.is_set() and r.s.current is None
    assert r.start() == "b1"  # a2 (message) is skipped: its client is paused
    r.finish()
    r.add("b2", T, client=2)  # a text cancels queued texts, not the held one
    assert r.removed == [] and r.start() == "b2"
    r.finish()
    assert r.s.next_utterance(timeout_s=0.01) is None
    assert {u.text for u in r.s.active()} == {"a1", "a2"} and r.s.queue_depth() == 2
    assert [u.text for u in r.s.resume_clients(1)] == ["a1"]
    assert r.start() == "a2"  # message before text; a1 waits at the front of its line
    r.finish()
    assert r.start() == "a1"


def test_paused_clients_queued_messages_stay_under_the_rules():
    r = Rig()
    r.add("b", M, client=2)
    assert r.start() == "b"
    r.add("a", T, client=1)
    assert r.s.pause_client(1) is None  # nothing of client 1 is speaking
    r.add("c", M, client=3)  # a message cancels queued texts, a paused client's too
    assert r.removed == ["a"]


def test_stop_cancel_and_park_of_held_utterances():
    r = Rig()
    r.add("a1", client=1)
    r.add("a2", client=1)
    assert r.start() == "a1"
    a1 = r.s.pause_client(1)
    assert r.s.park(a1)
    assert r.s.stop().all == []  # the daemon-wide stop ends only what is current
    c = r.s.stop(client_id=1)
    assert [u.text for u in c.removed] == ["a1"] and a1.cancel_reason is CancelReason.STOP
    assert [u.text for u in r.s.queued()] == ["a2"]
    r.s.resume_clients()
    assert r.start() == "a2"
    a2 = r.s.pause_client(1)
    a2.resume_state = "where it was"
    r.s.park(a2)
    c = r.s.cancel(client_id=1)
    assert c.removed == [a2] and a2.resume_state is None and r.s.queue_depth() == 0
    # Cancelled while being taken off: park says so and keeps nothing.
    r.add("a3", client=1)
    r.s.resume_clients(1)
    assert r.start() == "a3"
    a3 = r.s.pause_client(1)
    r.s.cancel(client_id=1)
    assert not r.s.park(a3) and r.s.queue_depth() == 0
    # Resumed before it was parked: straight back into the queue.
    r.s.resume_clients()
    r.add("a4", client=1)
    assert r.start() == "a4"
    a4 = r.s.pause_client(1)
    r.s.resume_clients(1)
    assert r.s.park(a4) and r.start() == "a4"


def test_clients_are_served_round_robin():
    r = Rig()
    for i in range(3):
        r.add(f"a{i}", client=1)
    r.add("b0", client=2)
    r.add("c0", client=3)
    got = []
    while r.s.queue_depth():
        got.append(r.start())
        r.finish()
    assert got == ["a0", "b0", "c0", "a1", "a2"]


def test_close_wakes_the_player_and_refuses_new_work():
    s = Scheduler()
    result = []
    t = threading.Thread(target=lambda: result.append(s.next_utterance(timeout_s=10)))
    t.start()
    s.close()
    t.join(2)
    assert result == [None]
    with pytest.raises(RuntimeError):
        s.submit(Utterance(1, "x", M))


def test_queue_limit():
    s = Scheduler(max_queued=2)
    s.submit(Utterance(1, "a", M))
    s.submit(Utterance(2, "b", M))
    with pytest.raises(OverflowError):
        s.submit(Utterance(3, "c", M))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(list(Priority)), st.integers(1, 3)),
        st.tuples(st.sampled_from(["start", "finish", "stop", "cancel", "pause", "resume"])),
        st.tuples(
            st.sampled_from(["pause_client", "resume_client", "stop_client", "cancel_client"]),
            st.integers(1, 3),
        ),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_every_utterance_ends_exactly_once(script):
    """Whatever happens, each utterance is spoken, or cancelled, exactly once."""
    s = Scheduler()
    ended: dict[int, str] = {}
    added: list[Utterance] = []

    def end(utt: Utterance, how: str) -> None:
        assert utt.uid not in ended, f"{utt.uid} ended twice"
        ended[utt.uid] = how

    def apply(c) -> None:
        for u in c.removed:
            end(u, "cancelled")  # the caller settles removed ones
        # the interrupted one is ended by the player (below, on finish)

    for op in script:
        if op[0] == "add":
            utt = Utterance(s.new_uid(), "x", op[1], client_id=op[2])
            added.append(utt)
            apply(s.submit(utt))
        elif op[0] == "start" and s.current is None:
            s.next_utterance(timeout_s=0)
        elif op[0] == "finish" and s.current is not None:
            cur = s.current
            end(cur, "cancelled" if cur.cancel_event.is_set() else "done")
            s.finish(cur)
        elif op[0] == "stop":
            apply(s.stop())
        elif op[0] == "cancel":
            apply(s.cancel())
        elif op[0] == "pause":
            s.pause()
        elif op[0] == "resume":
            s.resume()
        elif op[0] == "pause_client":
            held = s.pause_client(op[1])
            if held is not None and not s.park(held):  # what the player does
                end(held, "cancelled")
        elif op[0] == "resume_client":
            s.resume_clients(op[1])
        elif op[0] == "stop_client":
            apply(s.stop(client_id=op[1]))
        elif op[0] == "cancel_client":
            apply(s.cancel(client_id=op[1]))
    s.resume()
    s.resume_clients()
    while True:
        cur = s.current or s.next_utterance(timeout_s=0)
        if cur is None:
            break
        end(cur, "cancelled" if cur.cancel_event.is_set() else "done")
        s.finish(cur)
    assert sorted(ended) == sorted(u.uid for u in added)
