"""SSML for SSIP's `SSML_MODE on`: tags are interpreted or dropped, never read aloud.

Honoured: `<mark name>` (an index mark between the text pieces), `<break time|strength>` (a
comma or full stop, by length), `<prosody rate>` (the message's rate: the first one found),
`<say-as interpret-as="characters|spell-out">` (spelled), `<sub alias>` (the alias is read),
`<p>`/`<s>` (sentence breaks). Every other element is dropped, its text kept; comments,
processing instructions and doctype vanish; entities are decoded. Malformed markup never
fails: whatever looks like a tag is removed.

>>> doc = parse('<speak>Hello <mark name="m1"/>world<break time="1s"/>again</speak>')
>>> doc.pieces
['Hello ', Mark(name='m1'), 'world. again']
>>> parse('<prosody rate="150%">fast &amp; loud</prosody>').rate
1.5

Thread: any (pure functions). RT-safe: no.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from autovoice.daemon.ssip.text import spell

__all__ = ["Mark", "Message", "parse", "plain"]

_TAG = re.compile(r"<(!--.*?--|[?!][^>]*|/?[A-Za-z][^<>]*?/?)>", re.S)
_ATTR = re.compile(r"([A-Za-z_][\w:.-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_NAME = re.compile(r"/?\s*([A-Za-z][\w:.-]*)")
_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$", re.I)
_RATE_WORDS = {
    "x-slow": 0.5,
    "slow": 0.75,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.35,
    "x-fast": 1.75,
}
LONG_BREAK_MS = 300.0
"""A `<break>` at least this long becomes a full stop; a shorter one a comma."""
_STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 200,
    "medium": 250,
    "strong": 500,
    "x-strong": 1000,
}
_SKIP_CONTENT = ("desc",)
_SPELL = ("characters", "spell-out", "letters", "verbatim")


@dataclass(frozen=True)
class Mark:
    """An index mark: reported as a `700 INDEX MARK` event when speech reaches it."""

    name: str


@dataclass
class Message:
    """A parsed message: text pieces and marks in order, and the rate it asks for.

    Attributes:
        pieces: Strings and `Mark`s in reading order.
        rate: Rate multiplier from `<prosody rate>` (None: not given).
    """

    pieces: list[str | Mark] = field(default_factory=list)
    rate: float | None = None

    @property
    def text(self) -> str:
        """The text to speak, marks removed."""
        return "".join(p for p in self.pieces if isinstance(p, str))

    @property
    def marks(self) -> list[tuple[int, str]]:
        """(character offset in `text`, name) of each mark, in order."""
        out, pos = [], 0
        for p in self.pieces:
            if isinstance(p, Mark):
                out.append((pos, p.name))
            else:
                pos += len(p)
        return out


def plain(text: str) -> Message:
    """A message of plain text (SSML mode off): read as it is."""
    return Message([text] if text else [])


def parse(text: str) -> Message:
    """Interpret SSML (a `<speak>` root is optional); never raises."""
    msg = Message()
    stack: list[tuple[str, str]] = []  # (element, what it changed: skip/spell/'')
    skip = 0  # depth inside elements whose content is not read
    spelling = 0
    pos = 0

    def add(s: str) -> None:
        if not s or skip:
            return
        if spelling:
            s = spell(s.strip()) + " " if s.strip() else s
        if msg.pieces and isinstance(msg.pieces[-1], str):
            msg.pieces[-1] += s
        else:
            msg.pieces.append(s)

    for m in _TAG.finditer(text):
        add(html.unescape(text[pos : m.start()]))
        pos = m.end()
        body = m.group(1)
        if body.startswith(("!", "?")):
            continue
        closing = body.startswith("/")
        empty = body.endswith("/")
        nm = _NAME.match(body)
        name = nm.group(1).lower().split(":")[-1] if nm else ""
        attrs = {
            a.group(1).lower(): html.unescape(a.group(2) or a.group(3) or "")
            for a in _ATTR.finditer(body)
        }
        if closing:
            if any(entry == name for entry, _ in stack):
                while stack:
                    entry, kind = stack.pop()
                    if kind == "skip":
                        skip = max(0, skip - 1)
                    elif kind == "spell":
                        spelling = max(0, spelling - 1)
                    if entry == name:
                        break
            if name in ("p", "s"):
                _sentence_break(msg, skip)
            continue
        if name == "mark":
            if not skip and attrs.get("name") is not None:
                msg.pieces.append(Mark(attrs["name"]))
        elif name == "break":
            _break(msg, attrs, skip)
        elif name == "prosody" and msg.rate is None and "rate" in attrs:
            msg.rate = _rate(attrs["rate"])
        elif name == "sub" and not empty:
            add(attrs.get("alias", ""))
        elif name in ("p", "s") and not empty:
            _sentence_break(msg, skip)
        if empty:
            continue
        kind = ""
        if name == "say-as" and attrs.get("interpret-as", "").lower() in _SPELL:
            kind, spelling = "spell", spelling + 1
        elif name in _SKIP_CONTENT or name == "sub":
            kind, skip = "skip", skip + 1
        stack.append((name, kind))
    add(html.unescape(_strip_broken(text[pos:])))
    return msg


def _strip_broken(tail: str) -> str:
    # A '<' that never closes is read as text; an unterminated tag-like rest is dropped.
    return re.sub(r"<[A-Za-z/!?][^>]*$", "", tail)


def _sentence_break(msg: Message, skip: int) -> None:
    if skip:
        return
    text = msg.text.rstrip()
    if text and text[-1] not in ".!?":
        msg.pieces.append(". ")
    elif text:
        msg.pieces.append(" ")
    _merge(msg)


def _break(msg: Message, attrs: dict[str, str], skip: int) -> None:
    if skip:
        return
    ms = _STRENGTH_MS.get(attrs.get("strength", "medium").lower(), 250)
    t = _TIME.match(attrs.get("time", ""))
    if t:
        ms = float(t.group(1)) * (1000.0 if (t.group(2) or "ms").lower() == "s" else 1.0)
    if ms <= 0:
        return
    text = msg.text.rstrip()
    if not text:
        return
    if ms >= LONG_BREAK_MS:
        msg.pieces.append(". " if text[-1] not in ".!?" else " ")
    else:
        msg.pieces.append(", " if text[-1] not in ",.!?;:" else " ")
    _merge(msg)


def _merge(msg: Message) -> None:
    if len(msg.pieces) >= 2 and isinstance(msg.pieces[-1], str) and isinstance(msg.pieces[-2], str):
        last = msg.pieces.pop()
        prev = msg.pieces[-1].rstrip() if last.strip() else msg.pieces[-1]
        msg.pieces[-1] = prev + last


def _rate(value: str) -> float | None:
    v = value.strip().lower()
    if v in _RATE_WORDS:
        return _RATE_WORDS[v]
    try:
        if v.endswith("%"):
            num = v[:-1]
            if num.startswith(("+", "-")):
                return max(0.1, 1.0 + float(num) / 100.0)
            return max(0.1, float(num) / 100.0)
        return max(0.1, float(v))
    except ValueError:
        return None
