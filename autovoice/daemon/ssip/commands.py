"""SSIP command handling: one command line (or one finished `SPEAK` block) in, one reply out.

Commands are case-insensitive; arguments are separated by spaces. Each handler validates its
arguments the way Speech Dispatcher does and answers with its reply code; whatever AutoVoice
does not implement is answered with an error code, never with silence. Speaking, stopping and
listing go through a `Backend` (the daemon's scheduler and voices; a fake one in unit tests).

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from autovoice.daemon.scheduler import Priority
from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.session import (
    CAP_LET_RECOGN_MODES,
    NOTIFICATION_TYPES,
    OUTPUT_MODULE,
    PUNCTUATION_MODES,
    VOICE_TYPES,
    Session,
)
from autovoice.daemon.ssip.ssml import Message, parse, plain
from autovoice.daemon.ssip.text import char_text, icon_text, key_text, punctuate, spell

__all__ = ["Backend", "Commands", "Outcome", "VoiceEntry", "pick_voice"]

_LOG = logging.getLogger(__name__)

Target = str | int
"""`all`, `self`, or a message / client number."""


@dataclass(frozen=True)
class VoiceEntry:
    """One line of `LIST SYNTHESIS_VOICES`: name, language (BCP 47), variant."""

    name: str
    language: str
    variant: str = "none"


@dataclass(frozen=True)
class Outcome:
    """What the connection does after a command.

    Attributes:
        reply: Bytes to send (one complete reply).
        receive_data: Switch to reading a `SPEAK` data block.
        close: Close the connection after sending `reply` (QUIT).
    """

    reply: bytes
    receive_data: bool = False
    close: bool = False


class Backend(Protocol):
    """What SSIP commands need of the daemon."""

    def new_id(self) -> int:
        """A fresh message number (daemon-wide, shared with native utterances)."""
        ...

    def speak(self, session: Session, message: Message, msg_id: int | None = None) -> int:
        """Queue `message` with the session's priority and settings; return its message id.

        Raises:
            OverflowError: the queue is full. RuntimeError: the daemon is shutting down.
        """
        ...

    def stop(self, session: Session, target: Target) -> None: ...
    def cancel(self, session: Session, target: Target) -> None: ...
    def pause(self, session: Session, target: Target) -> None: ...
    def resume(self, session: Session, target: Target) -> None: ...
    def voices(self) -> list[VoiceEntry]: ...
    def sessions(self) -> dict[int, Session]: ...


class _Fail(Exception):
    """Internal: answer with this reply."""

    def __init__(self, reply: r.Reply) -> None:
        super().__init__(reply[1])
        self.reply = reply


_PRIORITIES = {p.value: p for p in Priority}
_BLOCKED_IN_BLOCK = {"STOP", "CANCEL", "PAUSE", "RESUME", "HISTORY"}
_HISTORY_UNSUPPORTED = {"GET", "CURSOR", "SAY", "SORT", "SET", "SEARCH"}


class Commands:
    """Dispatches SSIP commands for the sessions of one daemon.

    Args:
        backend: The daemon side (scheduler, voices, other sessions).
        max_text_bytes: Longest message accepted in a `SPEAK` block.
    """

    def __init__(self, backend: Backend, max_text_bytes: int) -> None:
        self.backend = backend
        self.max_text_bytes = max_text_bytes
        self._handlers: dict[str, Callable[[Session, list[str]], Outcome]] = {
            "SPEAK": self._speak,
            "CHAR": self._char,
            "KEY": self._key,
            "SOUND_ICON": self._sound_icon,
            "STOP": self._control(backend.stop, r.OK_STOPPED),
            "CANCEL": self._control(backend.cancel, r.OK_CANCELED),
            "PAUSE": self._control(backend.pause, r.OK_PAUSED),
            "RESUME": self._control(backend.resume, r.OK_RESUMED),
            "SET": self._set,
            "GET": self._get,
            "LIST": self._list,
            "HISTORY": self._history,
            "BLOCK": self._block,
            "HELP": self._help,
            "QUIT": self._quit,
        }

    # -- entry points ------------------------------------------------------------------------

    def handle(self, session: Session, line: bytes) -> Outcome:
        """Answer one command line (without its CRLF)."""
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return Outcome(r.encode(r.ERR_INVALID_ENCODING))
        words = text.split()
        if not words:
            return Outcome(r.encode(r.ERR_INVALID_COMMAND))
        name = words[0].upper()
        handler = self._handlers.get(name)
        if handler is None:
            return Outcome(r.encode(r.ERR_INVALID_COMMAND))
        if session.in_block and name in _BLOCKED_IN_BLOCK:
            return Outcome(r.encode(r.ERR_NOT_ALLOWED_INSIDE_BLOCK))
        try:
            return handler(session, words[1:])
        except _Fail as fail:
            return Outcome(r.encode(fail.reply))
        except Exception:  # a bug must not go unanswered or take the connection down
            _LOG.exception("SSIP command %r failed", name)
            return Outcome(r.encode(r.ERR_INTERNAL))

    def finish_speak(self, session: Session, data: bytes | None) -> bytes:
        """Answer the end of a `SPEAK` data block.

        Args:
            data: The unescaped text as bytes, or None when it was over `max_text_bytes`.
        """
        if data is None:
            return r.encode(r.ERR_PARAMETER_INVALID)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return r.encode(r.ERR_INVALID_ENCODING)
        if not text.strip():
            return r.encode(r.OK_MESSAGE_CANCELED)
        message = parse(text) if session.ssml_mode else plain(text)
        return self._queue(session, self._transform(session, message))

    # -- speaking ----------------------------------------------------------------------------

    def _speak(self, session: Session, args: list[str]) -> Outcome:
        return Outcome(r.encode(r.OK_RECEIVING_DATA), receive_data=True)

    def _char(self, session: Session, args: list[str]) -> Outcome:
        char = _arg(args, 0)
        return Outcome(self._queue(session, plain(char_text(char, session.cap_let_recogn))))

    def _key(self, session: Session, args: list[str]) -> Outcome:
        return Outcome(self._queue(session, plain(key_text(_arg(args, 0)))))

    def _sound_icon(self, session: Session, args: list[str]) -> Outcome:
        return Outcome(self._queue(session, plain(icon_text(_arg(args, 0)))))

    def _transform(self, session: Session, message: Message) -> Message:
        if not session.spelling and session.punctuation == "none":
            return message
        pieces: list = []
        for piece in message.pieces:
            if isinstance(piece, str):
                piece = spell(piece) if session.spelling else punctuate(piece, session.punctuation)
            pieces.append(piece)
        return Message(pieces, message.rate)

    def _queue(self, session: Session, message: Message) -> bytes:
        if session.in_block:
            if session.block_id is None:
                session.block_id = self.backend.new_id()
            session.block.append(message)
            return r.encode(r.OK_MESSAGE_QUEUED, [str(session.block_id)])
        try:
            msg_id = self.backend.speak(session, message)
        except (OverflowError, RuntimeError) as exc:
            _LOG.warning("SSIP message refused: %s", exc)
            return r.encode(r.ERR_INTERNAL)
        return r.encode(r.OK_MESSAGE_QUEUED, [str(msg_id)])

    # -- stop, cancel, pause, resume ---------------------------------------------------------

    def _control(self, action: Callable[[Session, Target], None], ok: r.Reply):
        def handler(session: Session, args: list[str]) -> Outcome:
            action(session, _target(_arg(args, 0)))
            return Outcome(r.encode(ok))

        return handler

    # -- blocks ------------------------------------------------------------------------------

    def _block(self, session: Session, args: list[str]) -> Outcome:
        what = _arg(args, 0).upper()
        if what == "BEGIN":
            if session.in_block:
                raise _Fail(r.ERR_ALREADY_INSIDE_BLOCK)
            session.in_block, session.block, session.block_id = True, [], None
            return Outcome(r.encode(r.OK_INSIDE_BLOCK))
        if what == "END":
            if not session.in_block:
                raise _Fail(r.ERR_ALREADY_OUTSIDE_BLOCK)
            block, block_id = session.block, session.block_id
            session.in_block, session.block, session.block_id = False, [], None
            if block and block_id is not None:
                pieces: list = []
                for message in block:
                    if pieces:
                        pieces.append("\n")
                    pieces.extend(message.pieces)
                rate = next((m.rate for m in block if m.rate is not None), None)
                try:
                    self.backend.speak(session, Message(pieces, rate), msg_id=block_id)
                except (OverflowError, RuntimeError) as exc:
                    _LOG.warning("SSIP block refused: %s", exc)
                    raise _Fail(r.ERR_INTERNAL) from None
            return Outcome(r.encode(r.OK_OUTSIDE_BLOCK))
        raise _Fail(r.ERR_PARAMETER_INVALID)

    # -- SET ---------------------------------------------------------------------------------

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

    # -- GET, LIST, HISTORY, HELP, QUIT ------------------------------------------------------

    def _get(self, session: Session, args: list[str]) -> Outcome:
        if not args:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        what = args[0].upper()
        values = {
            "RATE": session.rate,
            "PITCH": session.pitch,
            "PITCH_RANGE": session.pitch_range,
            "VOLUME": session.volume,
            "LANGUAGE": session.language,
            "OUTPUT_MODULE": session.output_module,
            "VOICE_TYPE": session.voice_type,
            "SYNTHESIS_VOICE": session.synthesis_voice or self._voice_for(session),
            "PUNCTUATION": session.punctuation,
            "SPELLING": "on" if session.spelling else "off",
            "CAP_LET_RECOGN": session.cap_let_recogn,
            "SSML_MODE": "on" if session.ssml_mode else "off",
            "PRIORITY": session.priority.value,
        }
        if what not in values:
            raise _Fail(r.ERR_PARAMETER_INVALID)
        return Outcome(r.encode(r.OK_GET, [str(values[what])]))

    def _voice_for(self, session: Session) -> str:
        voices = self.backend.voices()
        picked = pick_voice(voices, session.language)
        return picked or (voices[0].name if voices else "")

    def _list(self, session: Session, args: list[str]) -> Outcome:
        if not args:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        what = args[0].upper()
        if what == "VOICES":
            return Outcome(r.encode(r.OK_VOICE_LIST, VOICE_TYPES))
        if what == "OUTPUT_MODULES":
            return Outcome(r.encode(r.OK_MODULE_LIST, [OUTPUT_MODULE]))
        if what == "SYNTHESIS_VOICES":
            voices = self.backend.voices()
            if len(args) > 1:
                lang = args[1].lower().replace("_", "-")
                voices = [
                    v
                    for v in voices
                    if v.language.lower() == lang or v.language.lower().split("-")[0] == lang
                ]
            if len(args) > 2:
                voices = [v for v in voices if v.variant.lower() == args[2].lower()]
            lines = [f"{v.name}\t{v.language}\t{v.variant}" for v in voices]
            return Outcome(r.encode(r.OK_VOICE_LIST, lines))
        raise _Fail(r.ERR_PARAMETER_INVALID)

    def _history(self, session: Session, args: list[str]) -> Outcome:
        if len(args) < 2:
            raise _Fail(r.ERR_MISSING_PARAMETER)
        sub, what = args[0].upper(), args[1].upper()
        if sub == "GET" and what == "CLIENT_ID":
            return Outcome(r.encode(r.OK_CLIENT_ID, [str(session.client_id)]))
        if sub in _HISTORY_UNSUPPORTED:
            raise _Fail(r.ERR_NOT_IMPLEMENTED)
        raise _Fail(r.ERR_PARAMETER_INVALID)

    def _help(self, session: Session, args: list[str]) -> Outcome:
        return Outcome(r.encode(r.OK_HELP, r.HELP_LINES))

    def _quit(self, session: Session, args: list[str]) -> Outcome:
        return Outcome(r.encode(r.OK_BYE), close=True)


_SETTERS: dict[str, tuple[Callable[[Commands, Session, list[str]], r.Reply], r.Reply, bool]] = {
    "PRIORITY": (Commands._set_priority, r.ERR_COULDNT_SET_PRIORITY, True),
    "RATE": (Commands._set_rate, r.ERR_COULDNT_SET_RATE, False),
    "PITCH": (Commands._set_pitch, r.ERR_COULDNT_SET_PITCH, False),
    "PITCH_RANGE": (Commands._set_pitch_range, r.ERR_COULDNT_SET_PITCH_RANGE, False),
    "VOLUME": (Commands._set_volume, r.ERR_COULDNT_SET_VOLUME, False),
    "LANGUAGE": (Commands._set_language, r.ERR_COULDNT_SET_LANGUAGE, False),
    "SYNTHESIS_VOICE": (Commands._set_synthesis_voice, r.ERR_COULDNT_SET_VOICE, False),
    "VOICE_TYPE": (Commands._set_voice_type, r.ERR_COULDNT_SET_VOICE, False),
    "OUTPUT_MODULE": (Commands._set_output_module, r.ERR_COULDNT_SET_OUTPUT_MODULE, False),
    "PUNCTUATION": (Commands._set_punctuation, r.ERR_COULDNT_SET_PUNCT, False),
    "CAP_LET_RECOGN": (Commands._set_cap_let_recogn, r.ERR_COULDNT_SET_CAP_LET_RECOGN, False),
    "SPELLING": (Commands._set_spelling, r.ERR_COULDNT_SET_SPELLING, False),
    "SSML_MODE": (Commands._set_ssml_mode, r.ERR_COULDNT_SET_SSML_MODE, True),
    "PAUSE_CONTEXT": (Commands._set_pause_context, r.ERR_COULDNT_SET_PAUSE_CONTEXT, False),
    "NOTIFICATION": (Commands._set_notification, r.ERR_COULDNT_SET_NOTIFICATION, True),
    "DEBUG": (Commands._set_debug, r.ERR_COULDNT_SET_DEBUGGING, True),
}
"""SET parameter -> (setter, reply when the target cannot take it, self only)."""


def pick_voice(voices: list[VoiceEntry], language: str) -> str | None:
    """The first voice for `language` (exact tag, else same primary language), or None.

    >>> pick_voice([VoiceEntry("a", "en-GB"), VoiceEntry("b", "en-US")], "en_us")
    'b'
    >>> pick_voice([VoiceEntry("a", "en-GB")], "en"), pick_voice([VoiceEntry("a", "en-GB")], "C")
    ('a', None)
    """
    lang = language.lower().replace("_", "-")
    for voice in voices:
        if voice.language.lower() == lang:
            return voice.name
    for voice in voices:
        if voice.language.lower().split("-")[0] == lang.split("-")[0]:
            return voice.name
    return None


def _arg(args: list[str], i: int) -> str:
    if len(args) <= i:
        raise _Fail(r.ERR_MISSING_PARAMETER)
    return args[i]


def _target(word: str) -> Target:
    low = word.lower()
    if low in ("all", "self"):
        return low
    if low.isdigit():
        return int(low)
    raise _Fail(r.ERR_PARAMETER_INVALID)


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
