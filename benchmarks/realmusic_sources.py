"""Where the real-music evaluation set's audio comes from: Debian packages, files, licences, and what
is known about each song (``CATALOGUE``, in build order). Used by ``benchmarks/realmusic.py``.

Licences were read from each package's ``/usr/share/doc/PKG/copyright``; only free ones are used
(CC BY-SA 3.0, MIT, GPL-2 / GPL-2+ / GPL-3+, Zlib). ``genre`` is set only where the source says it
("documented") or it is plain from the source ("assumed", with the reason in ``genre_basis``).
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List, Set

FOF = "/usr/share/games/fretsonfire/data/songs"
OPENMSX = "/usr/share/games/openttd/baseset/openmsx"
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
TOOLS = ("ffmpeg", "timidity", "text2wave", "espeak-ng")
# apt package that provides each tool / file the builder needs.
TOOL_PACKAGES = {"ffmpeg": "ffmpeg", "timidity": "timidity", "text2wave": "festival", "espeak-ng": "espeak-ng",
                 SOUNDFONT: "fluid-soundfont-gm"}

MULDJORD = {"package": "fretsonfire-songs-muldjord", "licence": "CC-BY-SA-3.0",
            "copyright": "(c) 2009 El Senator (Muldjord, www.muldjord.com)"}
SECTOID = {"package": "fretsonfire-songs-sectoid", "licence": "MIT",
           "copyright": "(c) 2006/2007 Carlos Viola Iborra (Sectoid)"}
OPENMSX_SRC = {"package": "openttd-openmsx", "licence": "GPL-2.0",
               "copyright": "(c) 2010 OpenMSX authors (see the package's readme.txt); rendered with "
                            "fluid-soundfont-gm (FluidR3 GM, MIT)"}
ASC = {"package": "asc-music", "licence": "GPL-2.0-or-later", "copyright": "(c) 2002 Michael Kievernagel"}
FROZEN = {"package": "frozen-bubble-data", "licence": "GPL-2.0", "copyright": "(c) 2000-2010 The Frozen-Bubble Team"}
TOMATOES = {"package": "tomatoes-data", "licence": "Zlib", "copyright": "(c) 2004 Mika Halttunen"}

METAL = dict(genre="metal", genre_basis="documented: 'composed by El Senator of the danish metal band Muldjord' "
                                        "(package copyright file)")
ROCK = dict(genre="rock", genre_basis="assumed: instrumental band recording (drums, bass, lead guitar) from a "
                                      "Frets on Fire guitar song pack; the pack names no genre",
            # The charts' tempo matches the recordings (librosa agrees within 1 %) but their grid sits
            # 0.6-0.7 beat off the recordings' onsets: the truth keeps the bpm, not the beat times.
            beats_reliable=False)
# "Feelings" is not a band recording like the pack's other songs: a slow piece (95 bpm) of guitar and
# strings with next to no drums. Measured with librosa's HPSS (margin 2) on 90 s of each song.ogg: the
# percussive share of the spectral energy is 0.04 here against 0.09-0.23 for the pack's three other
# songs and Muldjord's four. The pack names no genre, so none is assumed for it.
FEELINGS = dict(ROCK, genre=None, genre_basis="none assumed: guitar and strings with next to no drums "
                                              "(percussive energy share 0.04 against 0.09-0.23 for the "
                                              "Frets on Fire band songs); the pack names no genre")
MULDJORD_VOCALS = dict(vocals_kind="real", gender="male", language="en",
                       gender_basis="assumed: the band's (male) growled / shouted vocals, not documented; the "
                                    "English words were checked by ear-less means only (whisper base transcribed "
                                    "English lines from song.ogg)")


def _fof(pack: str, folder: str, name: str, title: str, artist: str, source: dict, **known) -> dict:
    base = f"{FOF}/{pack}/{folder}"
    return {"name": name, "kind": "fof", "artist": artist, "title": title, "needs": [source["package"], "ffmpeg"],
            "files": {"song": f"{base}/song.ogg", "guitar": f"{base}/guitar.ogg"},
            "tempo_midi": f"{base}/notes.mid",
            "source": {**source, "files": [f"{base}/song.ogg", f"{base}/guitar.ogg", f"{base}/notes.mid"]},
            **{"vocals_kind": "none", **known}}


def _midi(file: str, name: str, title: str, **known) -> dict:
    path = f"{OPENMSX}/{file}"
    return {"name": name, "kind": "midi", "artist": "OpenMSX", "title": title, "files": {"mix": path},
            "tempo_midi": path, "needs": ["openttd-openmsx", "timidity", "fluid-soundfont-gm", "ffmpeg"],
            "source": {**OPENMSX_SRC, "files": [path]}, "vocals_kind": "none", **known}


def _audio(path: str, name: str, title: str, artist: str, source: dict, kind: str = "audio", **known) -> dict:
    return {"name": name, "kind": kind, "artist": artist, "title": title, "files": {"mix": path},
            "needs": [source["package"], "ffmpeg"], "source": {**source, "files": [path]}, "vocals_kind": "none",
            **known}


def _sung(name: str, title: str, bed: dict, engine: str, gender: str, language: str, snr_db: float,
          seed: int) -> dict:
    return {"name": name, "kind": "sung", "artist": "songshard realmusic", "title": title, "bed": bed,
            "engine": engine, "gender": gender, "language": language, "snr_db": snr_db, "seed": seed,
            "vocals_kind": "synthetic", "max_seconds": 100.0,
            "needs": bed["needs"] + (["festival"] if engine == "festival" else ["espeak-ng"]),
            "gender_basis": f"the voice used ({engine}, {gender} voice)"}


CATALOGUE: List[dict] = [
    _fof("muldjord", "mutilated_mime", "muldjord_mutilated_mime", "Mutilated Mime", "Muldjord", MULDJORD,
         **METAL, **MULDJORD_VOCALS),
    _fof("sectoid", "Feelings", "sectoid_feelings", "Feelings", "Sectoid", SECTOID, **FEELINGS),
    _sung("sung_en_male_chaosland", "Chaosland Road",
          _fof("sectoid", "Escape from chaosland", "", "Escape from chaosland", "Sectoid", SECTOID, **ROCK),
          "festival", "male", "en", 1.0, 1),
    _midi("flying_scotsman.mid", "openmsx_flying_scotsman", "Flying Scotsman"),
    _fof("muldjord", "chaos_god", "muldjord_chaos_god", "Chaos God", "Muldjord", MULDJORD, **METAL, **MULDJORD_VOCALS),
    _sung("sung_en_female_relax", "Slow River", _midi("relax_song.mid", "", "Relax Song"), "espeak", "female",
          "en", 2.0, 2),
    _audio("/usr/share/games/asc/music/frontiers.mp3", "asc_frontiers", "Frontiers", "Michael Kievernagel", ASC),
    _midi("careless_perc_redfarn.mid", "openmsx_careless_perc", "Careless Percussion"),
    _fof("muldjord", "internal_degeneration", "muldjord_internal_degeneration", "Internal Degeneration", "Muldjord",
         MULDJORD, **METAL, **MULDJORD_VOCALS),
    _sung("sung_de_male_rolling", "Weiter Fahren", _midi("keep_on_rolling.mid", "", "Keep on Rolling"), "espeak",
          "male", "de", 0.0, 3),
    _fof("sectoid", "War of freedom", "sectoid_war_of_freedom", "War of Freedom", "Sectoid", SECTOID, **ROCK),
    _audio("/usr/share/tomatoes/music/IHaveNoTomatoes.it", "tomatoes_theme", "I Have No Tomatoes", "Mika Halttunen",
           TOMATOES, kind="module", notes="Impulse Tracker module rendered by ffmpeg (libopenmpt)"),
    _sung("sung_en_female_bubbles", "Paper Lights",
          _audio("/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg", "", "Frozen-Bubble main theme",
                 "The Frozen-Bubble Team", FROZEN), "espeak", "female", "en", 3.0, 4),
    _fof("muldjord", "armygeddon", "muldjord_armygeddon", "Armygeddon", "Muldjord", MULDJORD, **METAL,
         **MULDJORD_VOCALS),
    _midi("run_for_your_life.mid", "openmsx_run_for_your_life", "Run for Your Life"),
    _sung("sung_en_male_machines", "Iron Morning",
          _audio("/usr/share/games/asc/music/machine_wars.mp3", "", "Machine Wars", "Michael Kievernagel", ASC),
          "festival", "male", "en", 1.5, 5),
    _fof("sectoid", "Metal madness", "sectoid_metal_madness", "Metal Madness", "Sectoid", SECTOID, **ROCK),
    _audio("/usr/share/games/frozen-bubble/snd/introzik.ogg", "frozen_bubble_intro", "Frozen-Bubble intro",
           "The Frozen-Bubble Team", FROZEN),
]


# Held-out tempo set: every OpenMSX MIDI that CATALOGUE does not use (its beds included). The
# metrical-level check (transforms/structure/tempo.py) was tuned on CATALOGUE's songs; these are for
# measuring it on songs it has not seen (``realmusic.py build-tempo``). Tempo and beats from the MIDI
# tempo map; rendered by timidity like CATALOGUE's MIDI songs.
def _catalogue_files(catalogue: List[dict]) -> Set[str]:
    used = set()
    for entry in catalogue:
        used.update(entry.get("bed", entry)["files"].values())
    return used


def heldout_tempo_catalogue() -> List[dict]:
    """``_midi`` entries (name ``tempo_<file stem>``) of the OpenMSX MIDIs not in CATALOGUE, by file
    name; empty when openttd-openmsx is not installed."""
    if not os.path.isdir(OPENMSX):
        return []
    used = _catalogue_files(CATALOGUE)
    files = sorted(f for f in os.listdir(OPENMSX) if f.endswith(".mid") and f"{OPENMSX}/{f}" not in used)
    return [_midi(f, "tempo_" + f[:-4], f[:-4].replace("_", " ").title()) for f in files]


def source_files(entry: dict) -> Dict[str, str]:
    """{role: path} of a recorded entry's audio files."""
    return entry["files"]


def needed_paths(entry: dict) -> List[str]:
    """Every file an entry reads (its own, its bed's, the soundfont for MIDI)."""
    inner = entry.get("bed", entry)
    paths = list(inner["files"].values()) + ([inner["tempo_midi"]] if inner.get("tempo_midi") else [])
    return paths + ([SOUNDFONT] if inner["kind"] == "midi" else [])


def missing_packages(catalogue: List[dict]) -> Set[str]:
    """The apt packages whose files or commands the catalogue needs and this machine lacks."""
    missing = {TOOL_PACKAGES[t] for t in TOOLS if shutil.which(t) is None}
    for entry in catalogue:
        for path in needed_paths(entry):
            if not os.path.exists(path):
                pkg = TOOL_PACKAGES.get(path) or entry.get("bed", entry)["source"]["package"]
                missing.add(pkg)
    return missing


def apt_packages() -> List[str]:
    """Every apt package the full set needs (``scripts/install_realmusic.sh`` installs these)."""
    pkgs = set(TOOL_PACKAGES.values())
    for entry in CATALOGUE:
        pkgs.update(p for p in entry["needs"] if p not in TOOLS)
    return sorted(pkgs)
