"""Protocol messages: strict request validation with closed-enum codes, event round trips."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autovoice.daemon import cache, metrics, paths, playback, scheduler
from autovoice.daemon import protocol as p
from autovoice.daemon.protocol import requests as protocol_requests


def parse(obj, limit: int = 100) -> p.Request:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return p.parse_request(data, limit)


def code_of(obj, limit: int = 100) -> str:
    with pytest.raises(p.RequestError) as info:
        parse(obj, limit)
    return info.value.code


def test_speak_with_every_field():
    req = parse(
        {
            "cmd": "speak",
            "id": "a",
            "text": "Hi",
            "voice": "v",
            "speaker": 2,
            "rate": 2,
            "volume": 0.5,
            "priority": "important",
            "v": 1,
        }
    )
    assert req == p.Speak(
        text="Hi", id="a", voice="v", speaker=2, rate=2.0, volume=0.5, priority="important"
    )
    assert isinstance(req.rate, float)


@pytest.mark.parametrize("cmd", sorted(p.REQUESTS))
def test_every_command_round_trips(cmd):
    cls = p.REQUESTS[cmd]
    args = {
        p.Speak: {"text": "x"},
        p.Append: {"utterance": 1, "text": "x"},
        p.End: {"utterance": 2},
    }
    req = cls(**args.get(cls, {}))
    assert parse(req.to_event()) == req


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{", "bad_json"),
        (b"\xc3\x28", "invalid_utf8"),
        (b'"text"', "bad_request"),
        ({"cmd": 5}, "unknown_command"),
        ({"cmd": "fly"}, "unknown_command"),
        ({"id": 1}, "missing_field"),
        ({"cmd": "speak", "text": None}, "missing_field"),
        ({"cmd": "stop", "force": True}, "unknown_field"),
        ({"cmd": "speak", "text": ["a"]}, "bad_type"),
        ({"cmd": "speak", "text": "a", "rate": True}, "bad_type"),
        ({"cmd": "speak", "text": "a", "speaker": 1.5}, "bad_type"),
        ({"cmd": "speak", "text": "a", "volume": 5}, "bad_value"),
        ({"cmd": "cancel", "scope": "mine"}, "bad_value"),
        ({"cmd": "cancel", "utterance": 0}, "bad_value"),
        ({"cmd": "ping", "v": "1"}, "bad_type"),
        ({"cmd": "ping", "v": 0}, "unsupported_version"),
        ({"cmd": "speak", "text": "é" * 51}, "text_too_long"),
        (b'{"cmd": "speak", "text": "\\udc80"}', "invalid_utf8"),
    ],
)
def test_bad_requests_get_their_code(data, code):
    assert code_of(data) == code
    assert code in {c.value for c in p.ErrorCode}


def test_error_keeps_the_request_id():
    with pytest.raises(p.RequestError) as info:
        parse({"cmd": "speak", "id": 9, "text": "a", "rate": 0})
    event = p.Error.from_exception(info.value, info.value.request_id).to_event()
    assert event == {
        "v": 1,
        "event": "error",
        "code": "bad_value",
        "id": 9,
        "message": "rate: 0.0 is out of range (0.1 .. 10.0)",
        "retryable": False,
    }


def test_text_limit_counts_utf8_bytes():
    assert parse({"cmd": "speak", "text": "é" * 50}).text == "é" * 50  # 100 bytes


@given(st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8)))
def test_arbitrary_objects_never_crash(obj):
    try:
        parse(obj)
    except p.RequestError as exc:
        assert exc.code in {c.value for c in p.ErrorCode}


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash(data):
    try:
        p.parse_request(data, 100)
    except p.RequestError as exc:
        assert exc.code in {c.value for c in p.ErrorCode}


def test_events_round_trip_and_ignore_unknown_fields():
    for event in (
        p.Queued(utterance=3, id="x", position=2),
        p.FirstAudio(utterance=3, latency_ms=1.5, output_latency_ms=2.0, heard_ms=3.5),
        p.Done(utterance=3, audio_s=1.0, compute_s=0.1, rtf=0.1),
        p.Cancelled(utterance=3, reason="stop"),
        p.Ok(cmd="cancel", utterances=[1, 2]),
        p.StatusReply(status={"state": "idle"}),
    ):
        line = p.encode_event(event.to_event())
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert p.decode_event(line) == event
    newer = json.dumps({"v": 1, "event": "done", "utterance": 1, "future": True}).encode()
    assert p.decode_event(newer) == p.Done(utterance=1)


@pytest.mark.parametrize("module", [protocol_requests, cache, metrics, paths, playback, scheduler])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
