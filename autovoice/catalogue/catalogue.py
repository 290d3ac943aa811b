"""The Piper voice catalogue: `voices.json` of a piper-voices layout, fetched and cached.

A catalogue is a base URL: `BASE/voices.json` maps each voice key ("en_US-lessac-medium") to its
language, quality, speakers and files, and each file is at `BASE/<its path>` (the layout of the
piper-voices repository that piper-tts's downloader uses; a mirror copies it, `file://` works
too). The parsed catalogue is cached in `$XDG_CACHE_HOME/autovoice/` and fetched again when it
is older than `MAX_AGE_S` or on `refresh`; when the fetch fails, a cached copy of any age is
used with a warning.

Entries whose key or file paths could write or read outside where they belong (absolute paths,
`..`, backslashes) are refused and left out, whatever else they say.

Thread: any. RT-safe: no (network and file I/O).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autovoice.errors import CatalogueError

__all__ = [
    "DEFAULT_CATALOGUE_URL",
    "MAX_AGE_S",
    "Catalogue",
    "CatalogueFile",
    "CatalogueVoice",
    "cache_dir_path",
    "fetch_catalogue",
    "file_url",
    "open_url",
    "parse_catalogue",
    "safe_name",
    "safe_relative_path",
]

_LOG = logging.getLogger(__name__)

DEFAULT_CATALOGUE_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main"
"""piper-tts 1.8's downloader's source (`piper.download_voices`)."""
MAX_AGE_S = 24 * 3600.0
"""A cached catalogue younger than this is used without asking the server."""
TIMEOUT_S = 30.0
"""Socket timeout of every request (connect and each read)."""
USER_AGENT = "autovoice (voice catalogue)"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class CatalogueFile:
    """One file of a voice: its path below the base URL, size and MD5 (hex, "" = unknown)."""

    path: str
    size: int
    md5: str


@dataclass(frozen=True)
class CatalogueVoice:
    """One voice of the catalogue.

    Attributes:
        key: Its name, e.g. "en_US-lessac-medium" (also its installed file name).
        language: Language code, e.g. "en_US".
        language_name: English name of the language and country, e.g. "English (United States)".
        quality: x_low, low, medium or high.
        num_speakers: Speakers of the voice.
        model: The `.onnx` file.
        config: The `.onnx.json` file.
        aliases: Older names of the voice.
    """

    key: str
    language: str
    language_name: str
    quality: str
    num_speakers: int
    model: CatalogueFile
    config: CatalogueFile
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Bytes to download."""
        return self.model.size + self.config.size


@dataclass(frozen=True)
class Catalogue:
    """A parsed catalogue.

    Attributes:
        base_url: Where files are (`file_url`).
        voices: Voice key -> voice, sorted by key.
        refused: "key: why" for each entry left out.
        fetched_at: Unix time the catalogue was fetched (from the cache file's time if cached).
        stale: True when a fetch failed and an old cached copy is used.
    """

    base_url: str
    voices: dict[str, CatalogueVoice]
    refused: list[str] = field(default_factory=list)
    fetched_at: float = 0.0
    stale: bool = False

    def get(self, name: str) -> CatalogueVoice | None:
        """The voice with this key or alias."""
        if name in self.voices:
            return self.voices[name]
        for voice in self.voices.values():
            if name in voice.aliases:
                return voice
        return None

    def by_language(self, code: str | None) -> list[CatalogueVoice]:
        """Voices whose language is `code` ("en_GB" or "en-GB") or a region of it ("en")."""
        if not code:
            return list(self.voices.values())
        wanted = code.replace("-", "_").lower()
        return [
            v
            for v in self.voices.values()
            if v.language.lower() == wanted or v.language.lower().split("_")[0] == wanted
        ]


def cache_dir_path(environ: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CACHE_HOME/autovoice (XDG_CACHE_HOME defaults to ~/.cache).

    >>> str(cache_dir_path({"XDG_CACHE_HOME": "/c"}))
    '/c/autovoice'
    """
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME", "~"), ".cache")
    return Path(cache).expanduser() / "autovoice"


def safe_name(name: str) -> bool:
    """True for a voice key usable as a file name (letters, digits, `_ . + -`, no leading dot).

    >>> safe_name("en_US-lessac-medium"), safe_name("../x"), safe_name(".hidden")
    (True, False, False)
    """
    return bool(_NAME.match(name)) and ".." not in name


def safe_relative_path(path: str) -> str:
    """`path` if it is a plain relative path below the base URL.

    Raises:
        CatalogueError: absolute, `..` or `.` components, empty components, backslashes,
            control characters, a scheme or a query.
    """
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or any(ord(c) < 32 or c == "\x7f" for c in path)
        or any(part in ("", ".", "..") for part in path.split("/"))
        or ":" in path.split("/")[0]
        or "?" in path
        or "#" in path
    )
    if bad:
        raise CatalogueError(f"unsafe file path in the catalogue: {path!r}")
    return path


def file_url(base_url: str, path: str) -> str:
    """URL of a catalogue file (path components quoted).

    >>> file_url("http://h/base/", "en/a b.onnx")
    'http://h/base/en/a%20b.onnx'
    """
    return base_url.rstrip("/") + "/" + urllib.parse.quote(safe_relative_path(path))


def open_url(url: str, timeout_s: float = TIMEOUT_S) -> IO[bytes]:
    """Open a URL for reading (http, https, file).

    Raises:
        CatalogueError: one line: HTTP status, unreachable host, timeout.
    """
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise CatalogueError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise CatalogueError(f"{url}: cannot connect: {exc.reason}") from None
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        raise CatalogueError(f"{url}: {network_problem(exc)}") from None


def network_problem(exc: BaseException) -> str:
    """A short description of a failed read."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection dropped after {len(exc.partial)} bytes"
    return str(exc) or type(exc).__name__


def parse_catalogue(data: Any, base_url: str) -> Catalogue:
    """Build a `Catalogue` from a parsed `voices.json`; bad entries are refused, not fatal.

    Raises:
        CatalogueError: the document is not a JSON object.
    """
    if not isinstance(data, dict):
        raise CatalogueError(f"{base_url}/voices.json: not a voice catalogue (not an object)")
    voices: dict[str, CatalogueVoice] = {}
    refused: list[str] = []
    for key in sorted(data, key=str):
        try:
            voices[key] = _parse_voice(key, data[key])
        except CatalogueError as exc:
            refused.append(f"{key!r}: {exc}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            refused.append(f"{key!r}: malformed entry ({type(exc).__name__}: {exc})")
    for problem in refused:
        _LOG.info("catalogue entry refused: %s", problem)
    return Catalogue(base_url=base_url, voices=voices, refused=refused)


def _parse_voice(key: Any, entry: Any) -> CatalogueVoice:
    if not isinstance(key, str) or not safe_name(key):
        raise CatalogueError("unsafe voice name")
    files = entry["files"]
    model = config = None
    for path, facts in files.items():
        if path.endswith(".onnx.json"):
            config = CatalogueFile(safe_relative_path(path), *_facts(facts))
        elif path.endswith(".onnx"):
            model = CatalogueFile(safe_relative_path(path), *_facts(facts))
    if model is None or config is None:
        raise CatalogueError("no .onnx and .onnx.json among its files")
    language = entry.get("language") or {}
    code = str(language.get("code", "")) if isinstance(language, dict) else str(language)
    english = language.get("name_english", "") if isinstance(language, dict) else ""
    country = language.get("country_english", "") if isinstance(language, dict) else ""
    return CatalogueVoice(
        key=key,
        language=code,
        language_name=f"{english} ({country})" if english and country else str(english),
        quality=str(entry.get("quality", "")),
        num_speakers=int(entry.get("num_speakers", 1)),
        model=model,
        config=config,
        aliases=tuple(a for a in entry.get("aliases", []) if isinstance(a, str) and safe_name(a)),
    )


def _facts(facts: Any) -> tuple[int, str]:
    size = int(facts["size_bytes"])
    md5 = str(facts.get("md5_digest", "")).lower()
    if size < 0 or (md5 and not re.fullmatch(r"[0-9a-f]{32}", md5)):
        raise CatalogueError("bad size_bytes or md5_digest")
    return size, md5


def fetch_catalogue(
    base_url: str,
    cache_dir: Path,
    refresh: bool = False,
    max_age_s: float = MAX_AGE_S,
    timeout_s: float = TIMEOUT_S,
) -> Catalogue:
    """The catalogue at `base_url`, from the cache when fresh, else fetched (and cached).

    Raises:
        CatalogueError: it cannot be fetched and no cached copy exists, or it is not JSON.
    """
    cache = cache_dir / f"voices-{hashlib.sha1(base_url.encode()).hexdigest()[:12]}.json"
    cached_at = _mtime(cache)
    if not refresh and cached_at is not None and time.time() - cached_at < max_age_s:
        try:
            return _from_bytes(cache.read_bytes(), base_url, cached_at, str(cache))
        except (OSError, CatalogueError) as exc:
            _LOG.warning("ignoring the cached catalogue %s: %s", cache, exc)
    url = base_url.rstrip("/") + "/voices.json"
    try:
        with open_url(url, timeout_s) as response:
            body = response.read()
    except (CatalogueError, OSError, http.client.HTTPException) as exc:
        problem = exc if isinstance(exc, CatalogueError) else f"{url}: {network_problem(exc)}"
        if cached_at is None:
            raise CatalogueError(f"cannot fetch the voice catalogue: {problem}") from None
        _LOG.warning(
            "cannot fetch the voice catalogue (%s); using the copy of %s",
            problem,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(cached_at)),
        )
        catalogue = _from_bytes(cache.read_bytes(), base_url, cached_at, str(cache))
        return Catalogue(catalogue.base_url, catalogue.voices, catalogue.refused, cached_at, True)
    catalogue = _from_bytes(body, base_url, time.time(), url)
    _write_cache(cache, body)
    return catalogue


def _from_bytes(body: bytes, base_url: str, fetched_at: float, where: str) -> Catalogue:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{where}: not a voice catalogue (bad JSON: {exc})") from None
    parsed = parse_catalogue(data, base_url)
    return Catalogue(parsed.base_url, parsed.voices, parsed.refused, fetched_at)


def _write_cache(cache: Path, body: bytes) -> None:
    """Replace the cache file atomically; a cache that cannot be written is only logged."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".voices-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(tmp, cache)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        _LOG.warning("cannot cache the voice catalogue in %s: %s", cache.parent, exc)


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
