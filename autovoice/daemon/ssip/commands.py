"""SSIP command handling: one command line (or one finished `SPEAK` block) in, one reply out.

Commands are case-insensitive; arguments are separated by spaces. Each handler validates its
arguments the way Speech Dispatcher does and answers with its reply code; whatever AutoVoice
does not implement is answered with an error code, never with silence. Speaking, stopping and
listing go through a `Backend` (the daemon's scheduler and voices; a fake one in unit tests).
`SET` lives in `set_command`, what the handlers share in `command_types`.

Thread: the event loop. RT-safe: no.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from autovoice.daemon.ssip import replies as r
from autovoice.daemon.ssip.command_types import Backend, Outcome, Target, VoiceEntry, _Fail
from autovoice.daemon.ssip.session import OUTPUT_MODULE, VOICE_TYPES, Session
from autovoice.daemon.ssip.set_command import SetCommand
from autovoice.daemon.ssip.ssml import Message, parse, plain
from autovoice.daemon.ssip.text import char_text, icon_text, key_text, punctuate, spell

__all__ = ["Backend", "Commands", "Outcome", "VoiceEntry", "pick_voice"]

_LOG = logging.getLogger(__name__)
_BLOCKED_IN_BLOCK = {"STOP", "CANCEL", "PAUSE", "RESUME", "HISTORY"}
_HISTORY_UNSUPPORTED = {"GET", "CURSOR", "SAY", "SORT", "SET", "SEARCH"}


class Commands(SetCommand):
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
