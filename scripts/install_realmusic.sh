#!/usr/bin/env bash
# Installs the Debian packages that songshard's real-music evaluation set is built from
# (benchmarks/realmusic.py): freely licensed game music packages (about 180 MB of downloads,
# fluid-soundfont-gm the largest) and the tools that render and sing over them.
# The list is benchmarks/realmusic_sources.apt_packages(); keep the two in step.
# Then: .venv/bin/python benchmarks/realmusic.py build /work/data/realmusic
set -euo pipefail

PKGS=(
  ffmpeg festival festvox-kallpc16k espeak-ng timidity fluid-soundfont-gm  # decode, sing, speak, render MIDI
  fretsonfire-songs-muldjord   # CC BY-SA 3.0: metal band recordings with vocals, guitar stem apart
  fretsonfire-songs-sectoid    # MIT: instrumental band recordings, guitar stem apart
  openttd-openmsx              # GPL-2: MIDI soundtrack (exact tempo)
  asc-music                    # GPL-2+: mp3 soundtrack
  frozen-bubble-data           # GPL-2: ogg soundtrack
  tomatoes-data                # Zlib: Impulse Tracker module
)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
