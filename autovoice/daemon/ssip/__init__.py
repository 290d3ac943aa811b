"""Speech Dispatcher's protocol (SSIP) for AutoVoice: `autovoice serve --ssip [PATH]` lets
`spd-say`, Orca and other Speech Dispatcher clients speak through the daemon (docs/SSIP.md).

Modules: `replies` (codes and texts), `codec` (CRLF lines, SPEAK data blocks), `session`
(per-client settings), `ssml` (SSML mode), `text` (CHAR/KEY/spelling/punctuation),
`commands` (command handlers), `server` (the listener), `paths` (where the socket lives).
"""

from autovoice.daemon.ssip.paths import default_ssip_path, ssip_path_from_env

__all__ = ["default_ssip_path", "ssip_path_from_env"]
