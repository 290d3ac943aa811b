"""SSIP reply codes and texts, as Debian's Speech Dispatcher 0.11 sends them, and their encoding.

Every reply is one or more CRLF-terminated lines: data lines `NNN-value` followed by one final
line `NNN TEXT`. Codes 2xx are success, 3xx server-side failures, 4xx bad arguments, 5xx
malformed commands, 7xx asynchronous events.

>>> encode(OK_CLIENT_ID, ["7"])
b'245-7\\r\\n245 OK CLIENT ID SENT\\r\\n'

Thread: any (constants and pure functions). RT-safe: no.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Reply", "encode", "event"]

Reply = tuple[int, str]
"""A reply's code and text, e.g. `(208, "OK CLIENT NAME SET")`."""

OK_LANGUAGE_SET: Reply = (201, "OK LANGUAGE SET")
OK_PRIORITY_SET: Reply = (202, "OK PRIORITY SET")
OK_RATE_SET: Reply = (203, "OK RATE SET")
OK_PITCH_SET: Reply = (204, "OK PITCH SET")
OK_PUNCTUATION_SET: Reply = (205, "OK PUNCTUATION SET")
OK_CAP_LET_RECOGN_SET: Reply = (206, "OK CAP LET RECOGNITION SET")
OK_SPELLING_SET: Reply = (207, "OK SPELLING SET")
OK_CLIENT_NAME_SET: Reply = (208, "OK CLIENT NAME SET")
OK_VOICE_SET: Reply = (209, "OK VOICE SET")
OK_STOPPED: Reply = (210, "OK STOPPED")
OK_PAUSED: Reply = (211, "OK PAUSED")
OK_RESUMED: Reply = (212, "OK RESUMED")
OK_CANCELED: Reply = (213, "OK CANCELED")
OK_OUTPUT_MODULE_SET: Reply = (216, "OK OUTPUT MODULE SET")
OK_PAUSE_CONTEXT_SET: Reply = (217, "OK PAUSE CONTEXT SET")
OK_VOLUME_SET: Reply = (218, "OK VOLUME SET")
OK_SSML_MODE_SET: Reply = (219, "OK SSML MODE SET")
OK_NOTIFICATION_SET: Reply = (220, "OK NOTIFICATION SET")
OK_MESSAGE_QUEUED: Reply = (225, "OK MESSAGE QUEUED")
OK_MESSAGE_CANCELED: Reply = (227, "OK MESSAGE CANCELED")
OK_RECEIVING_DATA: Reply = (230, "OK RECEIVING DATA")
OK_BYE: Reply = (231, "HAPPY HACKING")
OK_CLIENT_ID: Reply = (245, "OK CLIENT ID SENT")
OK_HELP: Reply = (248, "OK HELP SENT")
OK_VOICE_LIST: Reply = (249, "OK VOICE LIST SENT")
OK_MODULE_LIST: Reply = (250, "OK MODULE LIST SENT")
OK_GET: Reply = (251, "OK GET RETURNED")
OK_INSIDE_BLOCK: Reply = (260, "OK INSIDE BLOCK")
OK_OUTSIDE_BLOCK: Reply = (261, "OK OUTSIDE BLOCK")
OK_PITCH_RANGE_SET: Reply = (263, "OK PITCH RANGE SET")

ERR_INTERNAL: Reply = (300, "ERR INTERNAL")
ERR_COULDNT_SET_PRIORITY: Reply = (301, "ERR COULDNT SET PRIORITY")
ERR_COULDNT_SET_LANGUAGE: Reply = (302, "ERR COULDNT SET LANGUAGE")
ERR_COULDNT_SET_RATE: Reply = (303, "ERR COULDNT SET RATE")
ERR_COULDNT_SET_PITCH: Reply = (304, "ERR COULDNT SET PITCH")
ERR_COULDNT_SET_PUNCT: Reply = (305, "ERR COULDNT SET PUNCT MODE")
ERR_COULDNT_SET_CAP_LET_RECOGN: Reply = (306, "ERR COULDNT SET CAP LET RECOGNITION")
ERR_COULDNT_SET_SPELLING: Reply = (308, "ERR COULDNT SET SPELLING")
ERR_COULDNT_SET_VOICE: Reply = (309, "ERR COULDNT SET VOICE")
ERR_COULDNT_SET_CLIENT_NAME: Reply = (311, "ERR COULDNT SET CLIENT_NAME")
ERR_COULDNT_SET_OUTPUT_MODULE: Reply = (312, "ERR COULDNT SET OUTPUT MODULE")
ERR_COULDNT_SET_PAUSE_CONTEXT: Reply = (313, "ERR COULDNT SET PAUSE CONTEXT")
ERR_COULDNT_SET_VOLUME: Reply = (314, "ERR COULDNT SET VOLUME")
ERR_COULDNT_SET_SSML_MODE: Reply = (315, "ERR COULDNT SET SSML MODE")
ERR_COULDNT_SET_NOTIFICATION: Reply = (316, "ERR COULDNT SET NOTIFICATION")
ERR_COULDNT_SET_DEBUGGING: Reply = (317, "ERR COULDNT SET DEBUGGING")
ERR_ALREADY_INSIDE_BLOCK: Reply = (330, "ERR ALREADY INSIDE BLOCK")
ERR_ALREADY_OUTSIDE_BLOCK: Reply = (331, "ERR ALREADY OUTSIDE BLOCK")
ERR_NOT_ALLOWED_INSIDE_BLOCK: Reply = (332, "ERR NOT ALLOWED INSIDE BLOCK")
ERR_COULDNT_SET_PITCH_RANGE: Reply = (340, "ERR COULDNT SET PITCH RANGE")
ERR_NOT_IMPLEMENTED: Reply = (380, "ERR NOT YET IMPLEMENTED")

ERR_NO_SUCH_CLIENT: Reply = (402, "ERR NO SUCH CLIENT")
ERR_UNKNOWN_PRIORITY: Reply = (408, "ERR UNKNOWN PRIORITY")
ERR_RATE_TOO_HIGH: Reply = (409, "ERR RATE TOO HIGH")
ERR_RATE_TOO_LOW: Reply = (410, "ERR RATE TOO LOW")
ERR_PITCH_TOO_HIGH: Reply = (411, "ERR PITCH TOO HIGH")
ERR_PITCH_TOO_LOW: Reply = (412, "ERR PITCH TOO LOW")
# Speech Dispatcher 0.11 sends these two codes with the texts "ERR PITCH TOO HIGH/LOW" (a
# copy-paste slip in its source); clients only read the code, so the texts here are corrected.
ERR_VOLUME_TOO_HIGH: Reply = (413, "ERR VOLUME TOO HIGH")
ERR_VOLUME_TOO_LOW: Reply = (414, "ERR VOLUME TOO LOW")
ERR_PITCH_RANGE_TOO_HIGH: Reply = (415, "ERR PITCH RANGE TOO HIGH")
ERR_PITCH_RANGE_TOO_LOW: Reply = (416, "ERR PITCH RANGE TOO LOW")

ERR_INVALID_COMMAND: Reply = (500, "ERR INVALID COMMAND")
ERR_INVALID_ENCODING: Reply = (501, "ERR INVALID ENCODING")
ERR_MISSING_PARAMETER: Reply = (510, "ERR MISSING PARAMETER")
ERR_NOT_A_NUMBER: Reply = (511, "ERR PARAMETER NOT A NUMBER")
ERR_NOT_ON_OFF: Reply = (513, "ERR PARAMETER NOT ON OR OFF")
ERR_PARAMETER_INVALID: Reply = (514, "ERR PARAMETER INVALID")

EVENT_INDEX_MARK: Reply = (700, "INDEX MARK")
EVENT_BEGIN: Reply = (701, "BEGIN")
EVENT_END: Reply = (702, "END")
EVENT_CANCELED: Reply = (703, "CANCELED")
EVENT_PAUSED: Reply = (704, "PAUSED")
EVENT_RESUMED: Reply = (705, "RESUMED")

HELP_LINES = (
    "  SPEAK           -- say text ",
    "  KEY             -- say a combination of keys ",
    "  CHAR            -- say a character ",
    "  SOUND_ICON      -- execute a sound icon ",
    "  SET             -- set a parameter ",
    "  GET             -- get a current parameter ",
    "  LIST            -- list available arguments ",
    "  HISTORY         -- commands related to history ",
    "  QUIT            -- close the connection ",
)
"""`HELP`'s data lines, byte for byte as Speech Dispatcher sends them."""


def encode(reply: Reply, lines: Iterable[str] = ()) -> bytes:
    """One reply: each of `lines` as `NNN-line`, then `NNN TEXT`, CRLF-terminated, UTF-8.

    Data lines must not contain CR or LF (they are replaced by spaces).
    """
    code, text = reply
    out = [f"{code}-{_one_line(line)}\r\n" for line in lines]
    out.append(f"{code} {text}\r\n")
    return "".join(out).encode("utf-8")


def event(reply: Reply, msg_id: int, client_id: int, mark: str | None = None) -> bytes:
    """One 7xx event: `NNN-msg_id`, `NNN-client_id`, for 700 the mark name, then `NNN TEXT`.

    >>> event(EVENT_INDEX_MARK, 3, 1, "m1")
    b'700-3\\r\\n700-1\\r\\n700-m1\\r\\n700 INDEX MARK\\r\\n'
    """
    lines = [str(msg_id), str(client_id)]
    if mark is not None:
        lines.append(mark)
    return encode(reply, lines)


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")
