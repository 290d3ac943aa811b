"""Which utterance speaks next: Speech Dispatcher's five priorities, stop, cancel, pause, resume.

The interaction rules follow SSIP's priority model (docs/PROTOCOL.md has the table):

================  ==========================================================================
arriving          effect
================  ==========================================================================
important         Interrupts (cancels) a current utterance that is not `important`; cancels
                  queued `notification` and `progress`; queued `message`/`text` wait (they
                  are postponed, not dropped). Importants are spoken in arrival order.
message           Waits for queued `important` and `message`. Cancels current and queued
                  `text`, `notification`, `progress`. Never interrupts itself.
text              Waits for `important` and `message`. Cancels current and queued `text`
                  (only the latest text is spoken), `notification`, `progress`.
notification      Dropped at once if anything of another priority is current or queued, or
                  while paused; otherwise cancels current and queued `notification` (only
                  the latest is spoken).
progress          Spoken at once when nothing is current or queued. Otherwise it is held as
                  the "last progress" (replacing, i.e. cancelling, an earlier held one) and
                  spoken with priority `message` once its turn comes, so the final
                  "100 %" is heard. Dropped while paused. Cancelled like `notification`.
================  ==========================================================================

Within a priority, utterances from different clients are served round-robin (the client
served longest ago goes first), and each client's utterances in the order they came, so one
client queueing many cannot starve the others.

Per-client pause (SSIP's `PAUSE <client>`, Speech Dispatcher's semantics): `pause_client` makes
the scheduler skip that client's queued utterances (they stay queued, under the rules above, as
in Speech Dispatcher), and if its utterance is the current one, sets its `hold_event`: the
player takes it off the output and hands it back with `park`, which keeps it aside as *held*.
A held utterance is out of the rules' reach (like Speech Dispatcher's paused list): no arrival
cancels it or waits for it. `resume_clients` puts held utterances back at the front of their
client's line (they cancel nothing; later arrivals treat them as queued). `pause`/`resume`
(without a client) hold the whole daemon, as before.

Thread: every method may be called from any thread (one lock guards the state). RT-safe: no.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque

from autovoice.daemon.utterance import Cancellation, CancelReason, Priority, Utterance

# The utterance types are re-exported: the servers and tests import them from here.
__all__ = ["CancelReason", "Cancellation", "Priority", "Scheduler", "Utterance"]


class Scheduler:
    """Queues utterances by priority and hands them, one at a time, to the player thread.

    Args:
        max_queued: Most utterances waiting at once; `submit` raises `OverflowError` beyond.

    Thread: any; `next_utterance` and `finish` are the player thread's. RT-safe: no.
    """

    def __init__(self, max_queued: int = 4096) -> None:
        self.max_queued = max_queued
        self._lock = threading.Condition(threading.Lock())
        self._queues: dict[Priority, list[Utterance]] = {p: [] for p in Priority}
        self._held_progress: Utterance | None = None
        self._current: Utterance | None = None
        self._paused = False
        self._paused_clients: set[int] = set()
        self._held: list[Utterance] = []
        self._closed = False
        self._poked = False
        self._serial = itertools.count(1)
        self._uids = itertools.count(1)
        self._last_served: dict[int, int] = {}

    # -- producers ---------------------------------------------------------------------------

    def new_uid(self) -> int:
        """A fresh utterance number. Thread: any."""
        with self._lock:
            return next(self._uids)

    def submit(self, utt: Utterance) -> Cancellation:
        """Apply the priority rules to a new utterance and queue it (or drop it).

        Raises:
            OverflowError: the queue holds `max_queued` utterances already.
            RuntimeError: the scheduler is closed (the daemon is shutting down).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            if self._depth() >= self.max_queued:
                raise OverflowError(f"{self.max_queued} utterances are queued already")
            decision = Cancellation()
            _RULES[utt.priority](self, utt, decision)
            if not utt.cancel_event.is_set():
                decision.position = self._position_of(utt)
            self._lock.notify_all()
            return decision

    def _rule_important(self, utt: Utterance, d: Cancellation) -> None:
        cur = self._live_current()
        if cur is not None and cur.effective is not Priority.IMPORTANT:
            self._cancel_current(d)
        self._cancel_queued(d, (Priority.NOTIFICATION, Priority.PROGRESS))
        self._queues[Priority.IMPORTANT].append(utt)

    def _rule_message(self, utt: Utterance, d: Cancellation) -> None:
        low = (Priority.TEXT, Priority.NOTIFICATION, Priority.PROGRESS)
        cur = self._live_current()
        if cur is not None and cur.effective in low:
            self._cancel_current(d)
        self._cancel_queued(d, low)
        self._queues[Priority.MESSAGE].append(utt)

    def _rule_text(self, utt: Utterance, d: Cancellation) -> None:
        low = (Priority.TEXT, Priority.NOTIFICATION, Priority.PROGRESS)
        cur = self._live_current()
        if cur is not None and cur.effective in low:
            self._cancel_current(d)
        self._cancel_queued(d, low)
        self._queues[Priority.TEXT].append(utt)

    def _rule_notification(self, utt: Utterance, d: Cancellation) -> None:
        others = [u for u in self._busy() if u.effective is not Priority.NOTIFICATION]
        if others or self._paused:
            utt._cancel(CancelReason.PRIORITY)
            d.removed.append(utt)
            return
        if self._live_current() is not None:
            self._cancel_current(d)
        self._cancel_queued(d, (Priority.NOTIFICATION,))
        self._queues[Priority.NOTIFICATION].append(utt)

    def _rule_progress(self, utt: Utterance, d: Cancellation) -> None:
        if self._paused:
            utt._cancel(CancelReason.PRIORITY)
            d.removed.append(utt)
            return
        if not self._busy():
            self._queues[Priority.PROGRESS].append(utt)
            return
        held = self._held_progress
        if held is not None:
            self._remove(held)
            held._cancel(CancelReason.PRIORITY)
            d.removed.append(held)
        utt.effective = Priority.MESSAGE
        self._held_progress = utt
        self._queues[Priority.MESSAGE].append(utt)

    # -- control -----------------------------------------------------------------------------

    def stop(self, client_id: int | None = None) -> Cancellation:
        """Cancel the current utterance (if `client_id` is given: only if it is that client's).

        With `client_id`, that client's held utterances (taken off the output by its pause:
        its "current" message while it is paused) are cancelled too.
        """
        with self._lock:
            out = Cancellation()
            cur = self._current
            if (
                cur is not None
                and not cur.cancel_event.is_set()
                and (client_id is None or cur.client_id == client_id)
            ):
                cur._cancel(CancelReason.STOP)
                out.interrupted = cur
            if client_id is not None:
                for u in [u for u in self._held if u.client_id == client_id]:
                    self._drop_held(u, CancelReason.STOP)
                    out.removed.append(u)
            return out

    def cancel(
        self,
        client_id: int | None = None,
        uid: int | None = None,
        reason: CancelReason = CancelReason.CANCEL,
    ) -> Cancellation:
        """Cancel the current and queued utterances that match.

        Args:
            client_id: Only this client's utterances (None = every client's).
            uid: Only the utterance with this number (None = all that match `client_id`).
            reason: Recorded on each cancelled utterance.

        """
        with self._lock:
            out = Cancellation()

            def matches(u: Utterance) -> bool:
                return (client_id is None or u.client_id == client_id) and (
                    uid is None or u.uid == uid
                )

            cur = self._current
            if cur is not None and not cur.cancel_event.is_set() and matches(cur):
                cur._cancel(reason)
                out.interrupted = cur
            for queue in self._queues.values():
                for u in [u for u in queue if matches(u)]:
                    self._remove(u)
                    u._cancel(reason)
                    out.removed.append(u)
            for u in [u for u in self._held if matches(u)]:
                self._drop_held(u, reason)
                out.removed.append(u)
            self._lock.notify_all()
            return out

    def pause_client(self, client_id: int) -> Utterance | None:
        """Hold one client's utterances until `resume_clients` (SSIP `PAUSE <client>`).

        Its queued utterances are skipped (they stay queued); its current one, if any, gets
        its `hold_event` set.

        Returns:
            The current utterance the player must take off the output (`Player.take_off`),
            or None.
        """
        with self._lock:
            self._paused_clients.add(client_id)
            cur = self._current
            if cur is None or cur.client_id != client_id or cur.cancel_event.is_set():
                return None
            cur.hold_event.set()
            return cur

    def resume_clients(self, client_id: int | None = None) -> list[Utterance]:
        """End `pause_client` for one client (None: every client).

        Its held utterances go back to the front of its line, in the order they were held,
        cancelling nothing.

        Returns:
            The utterances put back.
        """
        with self._lock:
            if client_id is None:
                self._paused_clients.clear()
            else:
                self._paused_clients.discard(client_id)
            back = [u for u in self._held if u.client_id not in self._paused_clients]
            for u in reversed(back):
                self._held.remove(u)
                self._queues[u.effective or u.priority].insert(0, u)
            self._lock.notify_all()
            return back

    def client_paused(self, client_id: int) -> bool:
        """Whether `pause_client` holds this client."""
        return client_id in self._paused_clients

    def park(self, utt: Utterance) -> bool:
        """The player took the current `utt` off the output (its client paused): keep it held.

        If its client was resumed meanwhile it goes straight back to the front of its line.

        Returns:
            False when `utt` was cancelled meanwhile (the player sends its final event).

        Thread: the player thread.
        """
        with self._lock:
            if self._current is utt:
                self._current = None
            utt.hold_event.clear()
            if utt.cancel_event.is_set():
                return False
            if utt.client_id in self._paused_clients:
                self._held.append(utt)
            else:
                self._queues[utt.effective or utt.priority].insert(0, utt)
            self._lock.notify_all()
            return True

    def pause(self) -> bool:
        """Hold: no new utterance starts until `resume`. Returns False if already paused."""
        with self._lock:
            was = self._paused
            self._paused = True
            return not was

    def resume(self) -> bool:
        """Continue after `pause`. Returns False if it was not paused."""
        with self._lock:
            was = self._paused
            self._paused = False
            self._lock.notify_all()
            return was

    def close(self) -> Cancellation:
        """Cancel everything (reason shutdown) and make `next_utterance` return None."""
        out = self.cancel(reason=CancelReason.SHUTDOWN)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        return out

    def poke(self) -> None:
        """Make the waiting (or the next) `next_utterance` return None once, so the player
        thread looks at its own state (a reload to apply, a shutdown) without polling."""
        with self._lock:
            self._poked = True
            self._lock.notify_all()

    # -- the player thread -------------------------------------------------------------------

    def next_utterance(self, timeout_s: float | None = None) -> Utterance | None:
        """Wait for the next utterance to speak and make it current.

        Returns:
            The utterance, or None on timeout, after a `poke`, or when closed.

        Thread: the player thread.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while True:
                if self._closed:
                    return None
                if self._poked:
                    self._poked = False
                    return None
                if not self._paused:
                    utt = self._pop_next()
                    if utt is not None:
                        self._current = utt
                        return utt
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._lock.wait(remaining)

    def finish(self, utt: Utterance) -> None:
        """The player is done with `utt` (played, cancelled or failed). Thread: player."""
        with self._lock:
            if self._current is utt:
                self._current = None
            self._lock.notify_all()

    # -- introspection -----------------------------------------------------------------------

    @property
    def current(self) -> Utterance | None:
        """The utterance being spoken, if any."""
        return self._current

    @property
    def paused(self) -> bool:
        """Whether playback is held."""
        return self._paused

    def queue_depth(self) -> int:
        """Utterances waiting, held ones included (not counting the current one)."""
        with self._lock:
            return self._depth()

    def active(self) -> list[Utterance]:
        """The current utterance and the waiting ones, in no particular order (one snapshot)."""
        with self._lock:
            out = [u for q in self._queues.values() for u in q] + list(self._held)
            if self._current is not None:
                out.append(self._current)
            return out

    def queued(self) -> list[Utterance]:
        """Waiting utterances in the order they would be spoken now, held ones last (status)."""
        with self._lock:
            order: list[Utterance] = []
            for p in Priority:
                order.extend(self._fair_order(self._queues[p]))
            return order + list(self._held)

    # -- internals (lock held) ---------------------------------------------------------------

    def _depth(self) -> int:
        return sum(len(q) for q in self._queues.values()) + len(self._held)

    def _live_current(self) -> Utterance | None:
        # The current utterance as the rules see it: not one being taken off by a pause.
        cur = self._current
        if cur is None or cur.cancel_event.is_set() or cur.hold_event.is_set():
            return None
        return cur

    def _busy(self) -> list[Utterance]:
        busy = [u for q in self._queues.values() for u in q]
        cur = self._live_current()
        if cur is not None:
            busy.append(cur)
        return busy

    def _drop_held(self, utt: Utterance, reason: CancelReason) -> None:
        self._held.remove(utt)
        utt._cancel(reason)
        utt.resume_state = None

    def _cancel_current(self, d: Cancellation) -> None:
        cur = self._live_current()
        if cur is not None:
            cur._cancel(CancelReason.PRIORITY)
            d.interrupted = cur

    def _cancel_queued(self, d: Cancellation, priorities: tuple[Priority, ...]) -> None:
        for queue in self._queues.values():
            for u in [u for u in queue if u.priority in priorities]:
                self._remove(u)
                u._cancel(CancelReason.PRIORITY)
                d.removed.append(u)

    def _remove(self, utt: Utterance) -> None:
        queue = self._queues[utt.effective or utt.priority]
        if utt in queue:
            queue.remove(utt)
        if self._held_progress is utt:
            self._held_progress = None

    def _fair_order(self, queue: list[Utterance]) -> list[Utterance]:
        # Round-robin over clients, the client served longest ago first; FIFO per client.
        per_client: dict[int, deque[Utterance]] = {}
        for u in queue:
            per_client.setdefault(u.client_id, deque()).append(u)
        heap = [(self._last_served.get(c, 0), q[0].uid, c) for c, q in per_client.items()]
        heapq.heapify(heap)
        serial = max(self._last_served.values(), default=0) + 1
        order: list[Utterance] = []
        while heap:
            _, _, client = heapq.heappop(heap)
            mine = per_client[client]
            order.append(mine.popleft())
            if mine:
                heapq.heappush(heap, (serial, mine[0].uid, client))
                serial += 1
        return order

    def _pop_next(self) -> Utterance | None:
        for p in Priority:
            queue = self._queues[p]
            if not queue:
                continue
            firsts: dict[int, Utterance] = {}
            for u in queue:
                if u.client_id not in self._paused_clients:
                    firsts.setdefault(u.client_id, u)
            if not firsts:
                continue
            pick = min(
                firsts.values(), key=lambda u: (self._last_served.get(u.client_id, 0), u.uid)
            )
            self._remove(pick)
            self._last_served[pick.client_id] = next(self._serial)
            if len(self._last_served) > 4096:
                self._prune_served()
            return pick
        return None

    def _prune_served(self) -> None:
        waiting = {u.client_id for q in self._queues.values() for u in q}
        self._last_served = {c: s for c, s in self._last_served.items() if c in waiting}

    def _position_of(self, utt: Utterance) -> int:
        order: list[Utterance] = []
        for p in Priority:
            order.extend(self._fair_order(self._queues[p]))
        return order.index(utt) if utt in order else 0


_RULES = {
    Priority.IMPORTANT: Scheduler._rule_important,
    Priority.MESSAGE: Scheduler._rule_message,
    Priority.TEXT: Scheduler._rule_text,
    Priority.NOTIFICATION: Scheduler._rule_notification,
    Priority.PROGRESS: Scheduler._rule_progress,
}
