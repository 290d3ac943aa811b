"""`Voices`' rules with stand-in synthesizers: loads off the caller's thread, shared failures
and retries, cancel while waiting, the LRU bound and what it never evicts, reload."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from autovoice.config import AppConfig, config_from_dict
from autovoice.daemon.voices import Voices
from autovoice.engines.voice import default_voice_path
from autovoice.errors import VoiceError

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0
"""Generous bound on every wait (nothing here is timed)."""


@dataclass
class FakeSynth:
    name: str
    config: AppConfig
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class Loader:
    """`Voices`' `load`: each voice's load blocks until released; a name in `bad` fails."""

    bad: set[str] = field(default_factory=set)
    calls: list[tuple[str, threading.Thread]] = field(default_factory=list)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    started: threading.Condition = field(default_factory=threading.Condition)

    def gate(self, name: str) -> threading.Event:
        return self.gates.setdefault(name, threading.Event())

    def release(self, *names: str) -> None:
        for name in names:
            self.gate(name).set()

    def __call__(self, config: AppConfig, name: str) -> FakeSynth:
        with self.started:
            self.calls.append((name, threading.current_thread()))
            self.started.notify_all()
        assert self.gate(name).wait(WAIT_S)
        if name in self.bad:
            raise VoiceError(name, "model file is truncated (7 bytes)")
        return FakeSynth(name, config)

    def wait_started(self, name: str, count: int = 1) -> None:
        with self.started:
            assert self.started.wait_for(
                lambda: sum(n == name for n, _ in self.calls) >= count, WAIT_S
            )


@pytest.fixture
def config() -> AppConfig:
    return config_from_dict({"engine": "onnx"}, source="<tests>")


@pytest.fixture
def needed() -> list[str | None]:
    return []


@pytest.fixture
def loader() -> Loader:
    return Loader()


@pytest.fixture
def voices(config, needed, loader):
    v = Voices(config, FakeSynth("default", config), lambda: list(needed), loader, max_loaded=2)
    v.start()
    yield v
    loader.release(*loader.gates)
    v.close()


def never() -> bool:
    return False


def get_in_thread(voices: Voices, voice: str, since_s: float = 0.0, cancelled=never):
    """Run `voices.get` on another thread; returns (thread, result dict)."""
    out: dict = {}

    def body() -> None:
        try:
            out["synth"] = voices.get(voice, since_s, cancelled)
        except Exception as exc:
            out["error"] = exc

    t = threading.Thread(target=body, name="test-player")
    t.start()
    return t, out


def test_want_loads_on_the_loader_thread_and_get_waits_for_the_rest(voices, loader, needed):
    needed.append("a")
    voices.want("a", 0.0)
    loader.wait_started("a")
    assert voices.loading() == ["a"] and voices.loaded() == ["default"]
    t, out = get_in_thread(voices, "a")
    t.join(0.1)
    assert t.is_alive()  # waiting for the load
    loader.release("a")
    t.join(WAIT_S)
    assert out["synth"].name == "a"
    assert [(n, th.name) for n, th in loader.calls] == [("a", "autovoice-voice-loader")]
    assert voices.loaded() == ["default", "a"] and voices.loading() == []
    assert voices.get(None, 0.0, never).name == "default"


def test_cancel_while_waiting_returns_none_and_the_load_goes_on(voices, loader, needed):
    needed.append("a")
    cancel = threading.Event()
    t, out = get_in_thread(voices, "a", cancelled=cancel.is_set)
    loader.wait_started("a")
    cancel.set()
    t.join(WAIT_S)
    assert out == {"synth": None}
    loader.release("a")
    t2, out2 = get_in_thread(voices, "a")
    t2.join(WAIT_S)
    assert out2["synth"].name == "a" and len(loader.calls) == 1


def test_a_failed_load_is_shared_until_it_failed_then_tried_again(voices, loader, needed):
    loader.bad.add("bad")
    needed.append("bad")
    voices.want("bad", 1.0)
    voices.want("bad", 2.0)  # joins the load under way
    loader.wait_started("bad")
    loader.release("bad")
    for since_s in (1.0, 2.0):
        with pytest.raises(VoiceError, match="truncated"):
            voices.get("bad", since_s, never)
    assert len(loader.calls) == 1
    loader.bad.clear()
    loader.gate("bad").clear()
    t, out = get_in_thread(voices, "bad", since_s=float("inf"))  # asked after the failure
    loader.wait_started("bad", count=2)
    loader.release("bad")
    t.join(WAIT_S)
    assert out["synth"].name == "bad"


def test_the_lru_never_evicts_the_default_the_voice_in_use_or_a_needed_one(voices, loader, needed):
    loader.release("a", "b", "c")
    needed[:] = ["a", "b"]  # the voices of the queued and current utterances
    a = voices.get("a", 0.0, never)
    b = voices.get("b", 0.0, never)
    assert voices.loaded() == ["default", "a", "b"]  # over the bound of 2: "a" is still needed
    needed[:] = ["b", "c"]
    c = voices.get("c", 0.0, never)
    assert voices.loaded() == ["default", "b", "c"] and a.closed
    needed[:] = ["c"]
    voices.get(None, 0.0, never)
    assert voices.loaded() == ["c", "default"] and b.closed and not c.closed
    needed[:] = []
    assert voices.get("c", 0.0, never) is c  # in use, so kept even though nothing needs it
    assert voices.loaded() == ["default", "c"]


def test_reset_reloads_what_the_queue_needs_with_the_new_config(voices, loader, needed, config):
    loader.release("a")
    needed[:] = ["a", "b"]
    a = voices.get("a", 0.0, never)
    voices.want("b", 0.0)
    loader.wait_started("b")  # under way when the config is reloaded
    new_config = config_from_dict({"engine": "onnx", "synthesis": {"rate": 1.5}}, source="new")
    new_default = FakeSynth("default", new_config)
    voices.reset(new_config, new_default)
    assert a.closed and voices.loaded() == ["default"]
    assert voices.get(None, 0.0, never) is new_default
    loader.release("b")
    a2 = voices.get("a", 0.0, never)
    b2 = voices.get("b", 0.0, never)
    assert a2.config is new_config and b2.config is new_config
    assert [n for n, _ in loader.calls].count("b") == 2  # the old load was thrown away


def test_stop_ends_waits_and_loads_nothing_more(voices, loader, needed):
    needed[:] = ["a", "b"]
    voices.want("a", 0.0)
    voices.want("b", 0.0)
    loader.wait_started("a")
    t, out = get_in_thread(voices, "b")
    voices.stop()
    t.join(WAIT_S)
    assert out == {"synth": None} and voices.loading() == []
    loader.release("a", "b")
    assert [n for n, _ in loader.calls] == ["a"]


def test_other_names_of_the_default_voice_share_its_synthesizer(voices, loader, needed):
    """SSIP clients name voices as LIST SYNTHESIS_VOICES shows them ("en_US-joe-medium"), or by
    path, while the config says "default": no second copy may load."""
    path = default_voice_path()
    names = [path.name.removesuffix(".onnx"), str(path), str(path.resolve())]
    needed.extend(names)
    for name in names:
        voices.want(name, 0.0)
        assert voices.loading() == []
        assert voices.get(name, 0.0, never).name == "default"
    assert loader.calls == [] and voices.loaded() == ["default"]
    needed.append("a")
    voices.want("a", 0.0)  # any other name still loads
    loader.wait_started("a")


def acquire_in_thread(voices: Voices, voice: str, cancelled=never):
    """Run `voices.acquire` on another thread (a synthesis worker); returns (thread, result)."""
    out: dict = {}

    def body() -> None:
        try:
            out["synth"] = voices.acquire(voice, 0.0, cancelled)
        except Exception as exc:
            out["error"] = exc

    t = threading.Thread(target=body, name="test-worker")
    t.start()
    return t, out


def test_a_borrower_waits_for_its_load_which_nobody_else_needs(voices, loader, needed):
    # no queued utterance needs "a": the loader must not skip a load a borrower waits for
    t, out = acquire_in_thread(voices, "a")
    loader.wait_started("a")
    loader.release("a")
    t.join(WAIT_S)
    assert out["synth"].name == "a"
    assert voices.try_acquire("a") is out["synth"]
    assert voices.try_acquire("not-loaded") is None


def test_a_lent_voice_is_not_evicted_and_a_reload_closes_it_at_its_release(
    voices, loader, needed, config
):
    lent = voices.try_acquire(None)
    loader.release("a", "b", "c")
    t, out = acquire_in_thread(voices, "a")
    t.join(WAIT_S)
    borrowed = out["synth"]
    for name in ("b", "c"):  # beyond max_loaded=2: the LRU would evict "a" if it were free
        needed[:] = [name]  # the player's current utterance
        assert voices.get(name, 0.0, never).name == name
    assert "a" in voices.loaded() and not borrowed.closed
    voices.reset(config, FakeSynth("new-default", config))
    assert not borrowed.closed and not lent.closed  # still in use by their borrowers
    voices.release(borrowed)
    voices.release(lent)
    assert borrowed.closed and lent.closed
