#!/usr/bin/env bash
# Install AutoVoice and everything it needs on Debian/Ubuntu, then speak one sentence.
#   bash scripts/setup.sh            # system packages, .venv with autovoice[torch,dev], speak
#   bash scripts/setup.sh --no-speak # the same without the sentence (used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."

SPEAK=1
[[ "${1:-}" == "--no-speak" ]] && SPEAK=0

# System packages: PortAudio (audio output); PulseAudio, JACK and ALSA tools (virtual audio
# devices for the tests); speech-dispatcher (spd-say, for the SSIP tests); espeak-ng (benchmark peer).
PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils
          speech-dispatcher espeak-ng)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing system packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# The CPU build of PyTorch 2.13.0 (the torch extra; pinned so pip does not fetch a CUDA build).
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[torch,dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/autovoice --version >&2

if ((SPEAK)); then
  .venv/bin/autovoice synth "Hello! AutoVoice is installed, and this is the default voice."
fi
