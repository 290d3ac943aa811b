"""What SSIP's `CHAR`, `KEY`, `SOUND_ICON`, spelling and punctuation modes turn into: plain text
for the voice to read.

>>> char_text("A", "spell"), char_text("space", "none"), key_text("shift_kp-enter")
('capital A', 'space', 'shift keypad enter')
>>> spell("Hi!")
'H, I, exclamation'
>>> punctuate("a@b, c.", "some")
'a at b, c.'
>>> punctuate("Hi, you.", "all")
'Hi comma you dot '

Thread: any (pure functions). RT-safe: no.
"""

from __future__ import annotations

import re

__all__ = ["char_text", "icon_text", "key_text", "punctuate", "spell"]

SYMBOL_NAMES = {
    " ": "space",
    "!": "exclamation",
    '"': "quote",
    "#": "number",
    "$": "dollar",
    "%": "percent",
    "&": "and",
    "'": "apostrophe",
    "(": "left paren",
    ")": "right paren",
    "*": "star",
    "+": "plus",
    ",": "comma",
    "-": "dash",
    ".": "dot",
    "/": "slash",
    ":": "colon",
    ";": "semicolon",
    "<": "less",
    "=": "equals",
    ">": "greater",
    "?": "question",
    "@": "at",
    "[": "left bracket",
    "\\": "backslash",
    "]": "right bracket",
    "^": "caret",
    "_": "underscore",
    "`": "grave",
    "{": "left brace",
    "|": "bar",
    "}": "right brace",
    "~": "tilde",
    "\n": "new line",
    "\t": "tab",
}
"""How a symbol is read when it is spelled or its punctuation level asks for it."""

PUNCTUATION_LEVELS = {
    "none": "",
    "some": "#$%&*+/<=>@\\^_|~`[]{}",
    "most": "#$%&*+/<=>@\\^_|~`[]{}\"'():;-",
    "all": "#$%&*+/<=>@\\^_|~`[]{}\"'():;-,.!?",
}
"""Symbols read aloud at each `SET SELF PUNCTUATION` level."""

KEY_WORDS = {
    "kp": "keypad",
    "pgup": "page up",
    "pgdown": "page down",
    "esc": "escape",
    "bs": "backspace",
    "del": "delete",
    "ins": "insert",
    "ctrl": "control",
    "super": "super",
}
"""Abbreviations in SSIP key names, spelled out."""


def char_text(char: str, cap_let_recogn: str = "none") -> str:
    """What to say for `CHAR <char>` (`space` is the space character's name).

    A letter is upper-cased so the voice reads its name; with `cap_let_recogn` spell or icon
    (there are no sound icons) a capital letter is announced as "capital X".
    """
    if char.lower() == "space" or char == " ":
        return "space"
    if len(char) == 1:
        if char.isalpha():
            capital = char.isupper() and char.lower() != char
            up = char.upper()
            return f"capital {up}" if capital and cap_let_recogn in ("spell", "icon") else up
        if char in SYMBOL_NAMES:
            return SYMBOL_NAMES[char]
    return char


def key_text(key: str) -> str:
    """What to say for `KEY <name>`: `control_alt_delete` -> "control alt delete"."""
    if len(key) == 1:
        return char_text(key)
    words = []
    for part in key.split("_"):
        for piece in part.split("-") if len(part) > 1 else [part]:
            if not piece:
                continue
            if len(piece) == 1:
                words.append(char_text(piece))
            else:
                words.append(KEY_WORDS.get(piece.lower(), piece.lower()))
    return " ".join(words) or key


def icon_text(name: str) -> str:
    """What to say for `SOUND_ICON <name>` (AutoVoice has no sound files): the icon's name."""
    return name.replace("_", " ").replace("-", " ").strip() or name


def spell(text: str) -> str:
    """Spell `text` character by character ("Hi" -> "H, I")."""
    names = [char_text(c) for c in text if not (c.isspace() and c not in " \n\t")]
    return ", ".join(n for n in names if n)


def punctuate(text: str, mode: str) -> str:
    """Replace the symbols that punctuation level `mode` reads aloud by their names.

    Raises:
        ValueError: `mode` is not none, some, most or all.
    """
    try:
        symbols = PUNCTUATION_LEVELS[mode]
    except KeyError:
        raise ValueError(
            f"punctuation mode must be one of none, some, most, all: {mode!r}"
        ) from None
    if not symbols:
        return text
    out = "".join(f" {SYMBOL_NAMES[c]} " if c in symbols else c for c in text)
    return re.sub(r" {2,}", " ", out)
