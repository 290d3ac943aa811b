"""A piper-voices layout served by http.server on 127.0.0.1 from a thread, with faults on
demand: a missing file (404), a connection dropped mid-file, a hook run before a file is sent.
The download code under test talks to it over a real TCP socket."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP


def voice_config(language: str = "en_US", quality: str = "low") -> bytes:
    """A small but valid Piper voice config."""
    return json.dumps(
        {
            "audio": {"sample_rate": 16000, "quality": quality},
            "espeak": {"voice": language.split("_")[0]},
            "language": {"code": language},
            "phoneme_type": "espeak",
            "num_symbols": 256,
            "num_speakers": 1,
            "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        }
    ).encode()


def entry_for(key: str, files: dict[str, bytes], **extra) -> dict:
    """A voices.json entry listing `files` (path -> content) with their sizes and MD5s."""
    language = key.split("-")[0]
    return {
        "key": key,
        "name": key.split("-")[1] if "-" in key else key,
        "language": {
            "code": language,
            "family": language.split("_")[0],
            "name_english": "Test",
            "country_english": "Nowhere",
        },
        "quality": key.rsplit("-", 1)[-1],
        "num_speakers": 1,
        "speaker_id_map": {},
        "files": {
            path: {"size_bytes": len(body), "md5_digest": hashlib.md5(body).hexdigest()}
            for path, body in files.items()
        },
        "aliases": [],
        **extra,
    }


class Mirror:
    """The served tree: `files` (path -> bytes) plus `voices.json` from `catalogue`."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.catalogue: dict[str, dict] = {}
        self.drop_after: dict[str, int] = {}
        """path -> bytes sent before the connection is closed (Content-Length says more)."""
        self.before_send: dict[str, Callable[[], None]] = {}
        """path -> called before the file is sent."""
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_voice(self, key: str, model: bytes, config: bytes | None = None, **extra) -> dict:
        """Serve a voice under the piper-voices layout; returns its catalogue entry."""
        lang = key.split("-")[0]
        base = f"{lang.split('_')[0]}/{lang}/{key.split('-')[1]}/{key.rsplit('-', 1)[-1]}/{key}"
        files = {f"{base}.onnx": model, f"{base}.onnx.json": config or voice_config(lang)}
        self.files.update(files)
        self.catalogue[key] = entry_for(key, files, **extra)
        return self.catalogue[key]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/piper-voices"

    def start(self) -> Mirror:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0].removeprefix("/piper-voices/")
                mirror.requests.append(path)
                if path == "voices.json":
                    body = json.dumps(mirror.catalogue).encode()
                elif path in mirror.files:
                    body = mirror.files[path]
                else:
                    self.send_error(404)
                    return
                if path in mirror.before_send:
                    mirror.before_send[path]()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = mirror.drop_after.get(path)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="test-mirror", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def tree(root: Path) -> set[str]:
    """Every file below `root`, relative."""
    return {str(Path(d, f).relative_to(root)) for d, _, fs in os.walk(root) for f in fs}
