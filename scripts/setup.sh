#!/usr/bin/env bash
# Install AutoVoice and everything it needs on Debian/Ubuntu, then speak one sentence.
#   bash scripts/setup.sh            # system packages, .venv with autovoice[torch,dev], speak
#   bash scripts/setup.sh --no-speak # the same without the sentence (used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."

SPEAK=1
[[ "${1:-}" == "--no-speak" ]] && SPEAK=0

# System packages: PortAudio (audio output); PulseAudio, JACK (jackd2, jack_rec) and ALSA tools (virtual audio
# devices for the tests); speech-dispatcher (spd-say, for the SSIP tests); espeak-ng (benchmark peer);
# systemd (systemd-socket-activate and systemd-analyze, for the socket activation and unit tests).
PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins alsa-utils jackd2
          speech-dispatcher espeak-ng systemd)
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
pip_install() {  # quiet unless it fails
  if ! .venv/bin/python -m pip install -q "$@" >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "setup: pip install $* failed" >&2
    exit 1
  fi
}
pip_install --upgrade pip
# PyTorch for the torch extra, pinned to 2.13.0 (its CPU build is what this project tests with).
pip_install "torch==2.13.0"
pip_install -e ".[torch,dev]"
# Japanese and Thai phonemizers (piper-tts extras), so their voices and tests run here too.
pip_install -e ".[ja,th]"
.venv/bin/autovoice --version >&2

if ((SPEAK)); then
  .venv/bin/autovoice synth "Hello! AutoVoice is installed, and this is the default voice."
fi
