"""SSIP's `SET` command: a session parameter (rate, voice, punctuation, ...) for this session,
another one or all, validated the way Speech Dispatcher does, with its reply codes.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Callable

from autovoice.daemon.scheduler import Priority
from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.command_types import Backend, Outcome, _Fail
from autovoice.daemon.ssip.session import (
    CAP_LET_RECOGN_MODES,
    NOTIFICATION_TYPES,
    OUTPUT_MODULE,
    PUNCTUATION_MODES,
    VOICE_TYPES,
    Session,
)

__all__ = ["SetCommand"]

_PRIORITIES = {p.value: p for p in Priority}


class SetCommand:
    """The `SET` handler of `Commands` (`autovoice.daemon.ssip.commands`), which inherits it."""

    backend: Backend

    def _set(self, session: Session, args: list[str]) -> Outcome:
        if len(args) < 2:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        scope, param, values = args[0].lower(), args[1].upper(), args[2:]
        if param == "CLIENT_NAME":
            return self._set_client_name(session, scope, args)
        setter = _SETTERS.get(param)
        if setter is None:
            raise _Fail(r.ERR_INVALID_COMMAND)
        fn, fail_reply, self_only = setter
        if session.in_block and param == "PRIORITY":
            raise _Fail(r.ERR_NOT_ALLOWED_INSIDE_BLOCK)
        if not values:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        targets = self._targets(session, scope, fail_reply, self_only)
        reply = r.OK_GET
        for target in targets:
            reply = fn(self, target, values)
        return Outcome(r.encode(reply))

    def _targets(
        self, session: Session, scope: str, fail_reply: r.Reply, self_only: bool
    ) -> list[Session]:
        if scope == "self":
            return [session]
        if scope == "all":
            if self_only:
                raise _Fail(fail_reply)
            return list(self.backend.sessions().values())
        if scope.isdigit():
            other = self.backend.sessions().get(int(scope))
            if self_only or other is None:
                raise _Fail(fail_reply)
            return [other]
        raise _Fail(r.ERR_PARAMETER_INVALID)

    def _set_client_name(self, session: Session, scope: str, args: list[str]) -> Outcome:
        if session.in_block:
            raise _Fail(r.ERR_NOT_ALLOWED_INSIDE_BLOCK)
        if len(args) < 3:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        if scope != "self" or len(args) != 3:
            raise _Fail(r.ERR_COULDNT_SET_CLIENT_NAME)
        value = args[2]
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        parts = value.split(":")
        if len(parts) != 3 or not all(parts):
            raise _Fail(r.ERR_COULDNT_SET_CLIENT_NAME)
        session.user, session.application, session.component = parts
        return Outcome(r.encode(r.OK_CLIENT_NAME_SET))

    def _set_priority(self, s: Session, values: list[str]) -> r.Reply:
        priority = _PRIORITIES.get(values[0].lower())
        if priority is None:
            raise _Fail(r.ERR_UNKNOWN_PRIORITY)
        s.priority = priority
        return r.OK_PRIORITY_SET

    def _set_rate(self, s: Session, values: list[str]) -> r.Reply:
        s.rate = _number(values[0], r.ERR_RATE_TOO_HIGH, r.ERR_RATE_TOO_LOW)
        return r.OK_RATE_SET

    def _set_pitch(self, s: Session, values: list[str]) -> r.Reply:
        s.pitch = _number(values[0], r.ERR_PITCH_TOO_HIGH, r.ERR_PITCH_TOO_LOW)
        return r.OK_PITCH_SET

    def _set_pitch_range(self, s: Session, values: list[str]) -> r.Reply:
        s.pitch_range = _number(values[0], r.ERR_PITCH_RANGE_TOO_HIGH, r.ERR_PITCH_RANGE_TOO_LOW)
        return r.OK_PITCH_RANGE_SET

    def _set_volume(self, s: Session, values: list[str]) -> r.Reply:
        s.volume = _number(values[0], r.ERR_VOLUME_TOO_HIGH, r.ERR_VOLUME_TOO_LOW)
        return r.OK_VOLUME_SET

    def _set_language(self, s: Session, values: list[str]) -> r.Reply:
        s.language = values[0]
        s.synthesis_voice = None
        return r.OK_LANGUAGE_SET

    def _set_synthesis_voice(self, s: Session, values: list[str]) -> r.Reply:
        wanted = " ".join(values)
        for voice in self.backend.voices():
            if voice.name.lower() == wanted.lower():
                s.synthesis_voice = voice.name
                return r.OK_VOICE_SET
        raise _Fail(r.ERR_COULDNT_SET_VOICE)

    def _set_voice_type(self, s: Session, values: list[str]) -> r.Reply:
        voice_type = values[0].upper()
        if voice_type not in VOICE_TYPES:
            raise _Fail(r.ERR_COULDNT_SET_VOICE)
        s.voice_type = voice_type
        return r.OK_VOICE_SET

    def _set_output_module(self, s: Session, values: list[str]) -> r.Reply:
        if values[0].lower() != OUTPUT_MODULE:
            raise _Fail(r.ERR_COULDNT_SET_OUTPUT_MODULE)
        return r.OK_OUTPUT_MODULE_SET

    def _set_punctuation(self, s: Session, values: list[str]) -> r.Reply:
        s.punctuation = _choice(values[0], PUNCTUATION_MODES)
        return r.OK_PUNCTUATION_SET

    def _set_cap_let_recogn(self, s: Session, values: list[str]) -> r.Reply:
        s.cap_let_recogn = _choice(values[0], CAP_LET_RECOGN_MODES)
        return r.OK_CAP_LET_RECOGN_SET

    def _set_spelling(self, s: Session, values: list[str]) -> r.Reply:
        s.spelling = _on_off(values[0])
        return r.OK_SPELLING_SET

    def _set_ssml_mode(self, s: Session, values: list[str]) -> r.Reply:
        s.ssml_mode = _on_off(values[0])
        return r.OK_SSML_MODE_SET

    def _set_pause_context(self, s: Session, values: list[str]) -> r.Reply:
        try:
            s.pause_context = int(values[0])
        except ValueError:
            raise _Fail(r.ERR_NOT_A_NUMBER) from None
        return r.OK_PAUSE_CONTEXT_SET

    def _set_notification(self, s: Session, values: list[str]) -> r.Reply:
        if len(values) < 2:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        kind = values[0].lower()
        if kind != "all" and kind not in NOTIFICATION_TYPES:
            raise _Fail(r.ERR_COULDNT_SET_NOTIFICATION)
        on = _on_off(values[1], r.ERR_PARAMETER_INVALID)
        kinds = set(NOTIFICATION_TYPES) if kind == "all" else {kind}
        s.notifications = s.notifications | kinds if on else s.notifications - kinds
        return r.OK_NOTIFICATION_SET

    def _set_debug(self, s: Session, values: list[str]) -> r.Reply:
        raise _Fail(r.ERR_COULDNT_SET_DEBUGGING)


_SETTERS: dict[str, tuple[Callable[[SetCommand, Session, list[str]], r.Reply], r.Reply, bool]] = {
    "PRIORITY": (SetCommand._set_priority, r.ERR_COULDNT_SET_PRIORITY, True),
    "RATE": (SetCommand._set_rate, r.ERR_COULDNT_SET_RATE, False),
    "PITCH": (SetCommand._set_pitch, r.ERR_COULDNT_SET_PITCH, False),
    "PITCH_RANGE": (SetCommand._set_pitch_range, r.ERR_COULDNT_SET_PITCH_RANGE, False),
    "VOLUME": (SetCommand._set_volume, r.ERR_COULDNT_SET_VOLUME, False),
    "LANGUAGE": (SetCommand._set_language, r.ERR_COULDNT_SET_LANGUAGE, False),
    "SYNTHESIS_VOICE": (SetCommand._set_synthesis_voice, r.ERR_COULDNT_SET_VOICE, False),
    "VOICE_TYPE": (SetCommand._set_voice_type, r.ERR_COULDNT_SET_VOICE, False),
    "OUTPUT_MODULE": (SetCommand._set_output_module, r.ERR_COULDNT_SET_OUTPUT_MODULE, False),
    "PUNCTUATION": (SetCommand._set_punctuation, r.ERR_COULDNT_SET_PUNCT, False),
    "CAP_LET_RECOGN": (SetCommand._set_cap_let_recogn, r.ERR_COULDNT_SET_CAP_LET_RECOGN, False),
    "SPELLING": (SetCommand._set_spelling, r.ERR_COULDNT_SET_SPELLING, False),
    "SSML_MODE": (SetCommand._set_ssml_mode, r.ERR_COULDNT_SET_SSML_MODE, True),
    "PAUSE_CONTEXT": (SetCommand._set_pause_context, r.ERR_COULDNT_SET_PAUSE_CONTEXT, False),
    "NOTIFICATION": (SetCommand._set_notification, r.ERR_COULDNT_SET_NOTIFICATION, True),
    "DEBUG": (SetCommand._set_debug, r.ERR_COULDNT_SET_DEBUGGING, True),
}
"""SET parameter -> (setter, reply when the target cannot take it, self only)."""


def _number(word: str, too_high: r.Reply, too_low: r.Reply) -> int:
    try:
        value = int(word)
    except ValueError:
        raise _Fail(r.ERR_NOT_A_NUMBER) from None
    if value > 100:
        raise _Fail(too_high)
    if value < -100:
        raise _Fail(too_low)
    return value


def _on_off(word: str, bad: r.Reply = r.ERR_NOT_ON_OFF) -> bool:
    low = word.lower()
    if low not in ("on", "off"):
        raise _Fail(bad)
    return low == "on"


def _choice(word: str, choices: tuple[str, ...]) -> str:
    low = word.lower()
    if low not in choices:
        raise _Fail(r.ERR_PARAMETER_INVALID)
    return low
