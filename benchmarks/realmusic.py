"""songshard's real-music evaluation set: real recordings from freely licensed Debian packages, with
ground truth in ``NAME.truth.json`` beside each song.

    python benchmarks/realmusic.py build DIR [--max-songs N] [--seconds 120]
    python benchmarks/realmusic.py list DIR
    python benchmarks/realmusic.py build-tempo DIR [--seconds 120]

``build-tempo`` writes a held-out tempo set instead: the OpenMSX MIDIs the set does not use, rendered
the same way, each with ``NAME.truth.json`` (bpm and beats from the MIDI tempo map). The structure
stage's metrical-level check was tuned on the main set; ``benchmarks/eval_tempo.py --folder DIR``
measures it on these songs it has not seen.

The set (``CATALOGUE``, in a fixed order that mixes the kinds, so ``--max-songs`` keeps a balance):

* real band recordings with vocals: Frets on Fire song packs (Muldjord, CC BY-SA 3.0) whose
  ``song.ogg`` (band and singer) and ``guitar.ogg`` are real multitrack stems; the tempo is the
  chart's (``notes.mid``, which the game syncs to the recording);
* real instrumentals: Frets on Fire (Sectoid, MIT), game soundtracks (mp3 / ogg), a tracker module
  (rendered by ffmpeg's libopenmpt) and MIDI soundtracks rendered by timidity with the FluidR3 GM
  soundfont: exact tempo and beat times from the MIDI tempo map;
* sung songs: known lyrics sung by festival (male, English, the sample corpus's singing) or spoken
  by espeak-ng (female English, male German) over a real instrumental, in its estimated key, mixed
  at a set vocal-to-accompaniment ratio; true ``vocals`` / ``accompaniment`` stems kept.

Per song: ``NAME.flac`` (44.1 kHz stereo, trimmed), ``NAME.json`` (artist and title only: genre,
language and tempo are left for the models), ``NAME.txt`` (lyrics, sung songs only),
``NAME.truth.json`` (``realmusic_truth.truth_record``) and stems under ``_stems/NAME/`` (discovery
skips ``_`` folders). ``DIR/_set.json`` lists the set; ``DIR/CREDITS.md`` the licences. Installs
nothing: missing packages are printed (``scripts/install_realmusic.sh`` installs them) and the
songs that need them skipped. Audio is never committed to the repo.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import realmusic_truth as rt  # noqa: E402
from realmusic_sources import (CATALOGUE, SOUNDFONT, TOOLS, heldout_tempo_catalogue, missing_packages,
                               source_files)  # noqa: E402

SR = 44100
FADE_S = 1.5


# ---------------------------------------------------------------- audio in / out
def decode(path: str, seconds: float, start: float = 0.0) -> np.ndarray:
    """[2, N] float64 at SR of ``path`` (any ffmpeg input, tracker modules included) from ``start``
    for at most ``seconds``. Raises CalledProcessError when ffmpeg cannot read it."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{start}", "-t", f"{seconds}", "-i", path,
                          "-ac", "2", "-ar", str(SR), "-f", "f32le", "-"],
                         check=True, capture_output=True, timeout=300).stdout
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2).T.astype(np.float64)


def render_midi(path: str, seconds: float) -> np.ndarray:
    """[2, N] float64 of a MIDI file rendered by timidity (FluidR3 GM soundfont), the leading
    silence kept so MIDI time 0 is sample 0. Raises CalledProcessError / OSError without timidity."""
    with tempfile.TemporaryDirectory(prefix="songshard-rm-") as work:
        wav = os.path.join(work, "out.wav")
        subprocess.run(["timidity", "-x", f"soundfont {SOUNDFONT}", "--preserve-silence", "-Ow", "-s", str(SR),
                        "-o", wav, path], check=True, capture_output=True, timeout=300)
        return decode(wav, seconds)


def fade(x: np.ndarray, seconds: float = FADE_S) -> np.ndarray:
    """``x`` [C, N] with a linear fade-out over its last ``seconds`` (applied alike to every stem,
    so stems still sum to the mix)."""
    n = min(x.shape[-1], int(seconds * SR))
    out = x.copy()
    out[..., x.shape[-1] - n:] *= np.linspace(1.0, 0.0, n)
    return out


def write_flac(path: str, x: np.ndarray) -> None:
    """Write [2, N] float audio as 24-bit FLAC at SR."""
    import soundfile as sf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, np.clip(x, -1.0, 1.0).T, SR, subtype="PCM_24", format="FLAC")


def joint_normalise(stems: Dict[str, np.ndarray], peak_dbfs: float = -1.0) -> Dict[str, np.ndarray]:
    """The stems scaled by one gain so that their sum peaks at ``peak_dbfs`` or below."""
    peak = np.max(np.abs(sum(stems.values())))
    g = min(1.0, 10 ** (peak_dbfs / 20) / peak) if peak > 0 else 1.0
    return {k: v * g for k, v in stems.items()}


# ---------------------------------------------------------------- one song
def _tempo(entry: dict, seconds: float) -> tuple:
    """({"bpm", "bpm_basis", "beats", "downbeats"} for the truth, the grid's beat times) from the entry's MIDI
    tempo map (a FoF chart or the MIDI itself); the truth has no beats where the grid's phase is not
    the recording's (``beats_reliable`` False)."""
    mid = entry.get("tempo_midi")
    if not mid:
        return {"bpm": None, "bpm_basis": "", "beats": [], "downbeats": []}, []
    with open(mid, "rb") as f:
        tmap = rt.midi_tempo_map(f.read())
    basis = ("MIDI tempo map (the rendered file itself)" if entry["kind"] == "midi"
             else "Frets on Fire chart notes.mid tempo map (the game syncs it to this recording)")
    grid = rt.midi_beats(tmap, seconds)
    reliable = entry.get("beats_reliable", True)
    return {"bpm": rt.dominant_bpm(tmap, seconds), "bpm_basis": basis + ("" if reliable else "; beat times "
            "omitted: the chart grid's phase is not the recording's"), "beats": grid if reliable else [],
            "downbeats": rt.midi_downbeats(tmap, seconds) if reliable else []}, grid


def load_stems(entry: dict, seconds: float) -> Dict[str, np.ndarray]:
    """{stem name: [2, N]} of a recorded entry (kinds fof, audio, module, midi), trimmed and faded."""
    files = source_files(entry)
    if entry["kind"] == "fof":
        stems = {k: decode(files[k], seconds) for k in ("song", "guitar")}
        n = min(s.shape[1] for s in stems.values())
        stems = {k: v[:, :n] for k, v in stems.items()}
    elif entry["kind"] == "midi":
        stems = {"mix": render_midi(files["mix"], seconds)}
    else:
        stems = {"mix": decode(files["mix"], seconds, entry.get("start", 0.0))}
    return joint_normalise({k: fade(v) for k, v in stems.items()})


def build_entry(entry: dict, out_dir: str, seconds: float) -> dict:
    """Write one catalogue entry's mix, sidecars, stems and truth into ``out_dir``; return the truth."""
    name = entry["name"]
    seconds = min(seconds, entry.get("max_seconds", seconds))
    if entry["kind"] == "sung":
        from realmusic_sing import sing_over  # festival / espeak-ng only when needed

        bed_entry = {**entry["bed"], "name": name}
        bed = load_stems(bed_entry, seconds)
        bed_mix = sum(bed.values())
        tempo, grid = _tempo(bed_entry, seconds)
        sung = sing_over(bed_mix, SR, tempo["bpm"], grid, entry, phase=not bed_entry.get("beats_reliable", True))
        stems = {"vocals": sung["vocals"], "accompaniment": sung["accompaniment"]}
        source = {**bed_entry["source"], "vocals": sung["engine"], "vocal_to_accompaniment_db": entry["snr_db"]}
        extra = {"vocal_engine": sung["engine"], "key_estimate": sung["key"], "beat_grid_shift_s": sung["grid_shift_s"],
                 "measured_vocal_to_accompaniment_db": round(rt.measured_snr_db(
                     stems["vocals"], stems["accompaniment"], SR), 2)}
        lyrics, genre, genre_basis = sung["lyrics"], entry["bed"].get("genre"), entry["bed"].get("genre_basis", "")
    else:
        stems = load_stems(entry, seconds)
        tempo, source, extra = _tempo(entry, seconds)[0], entry["source"], {}
        lyrics, genre, genre_basis = [], entry.get("genre"), entry.get("genre_basis", "")
    mix = sum(stems.values())
    write_flac(os.path.join(out_dir, name + ".flac"), mix)
    stem_paths = {}
    if len(stems) > 1:
        for k, v in stems.items():
            stem_paths[k] = f"_stems/{name}/{k}.flac"
            write_flac(os.path.join(out_dir, stem_paths[k]), v)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump({"artist": entry["artist"], "title": entry["title"]}, f, indent=1)
    if lyrics:
        with open(os.path.join(out_dir, name + ".txt"), "w") as f:
            f.write("".join(ln["text"] + "\n" for ln in lyrics))
    truth = rt.truth_record(
        name=name, file=name + ".flac", duration=mix.shape[1] / SR, source=source,
        has_vocals=entry["vocals_kind"] != "none", vocals_kind=entry["vocals_kind"], gender=entry.get("gender"),
        language=entry.get("language"), lyrics=lyrics, genre=genre, genre_basis=genre_basis, stems=stem_paths,
        extra={"artist": entry["artist"], "title": entry["title"], "gender_basis": entry.get("gender_basis", ""),
               "lyrics_known": entry["vocals_kind"] != "real", "notes": entry.get("notes", ""), **extra},
        **tempo)
    with open(os.path.join(out_dir, name + ".truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


# ---------------------------------------------------------------- the set
def credits(truths: List[dict]) -> str:
    """CREDITS.md text: each file's source package, copyright and licence."""
    rows = [f"- `{t['file']}`: {t['artist']} - {t['title']}; {t['source'].get('copyright', '')}; licence "
            f"{t['licence']}; Debian package `{t['source'].get('package', '')}` "
            f"({', '.join(os.path.basename(p) for p in t['source'].get('files', []))})"
            + (f"; vocals: {t['source']['vocals']}" if t["source"].get("vocals") else "") for t in truths]
    return ("# Credits and licences of songshard's real-music evaluation set\n\n"
            "Trimmed, faded and (for the sung songs) mixed with synthetic vocals by "
            "benchmarks/realmusic.py; the licences of the sources apply.\n\n" + "\n".join(rows) + "\n")


def build(out_dir: str, max_songs: Optional[int] = None, seconds: float = 120.0,
          only: Optional[List[str]] = None, catalogue: Optional[List[dict]] = None) -> List[dict]:
    """Write the set into ``out_dir`` (kept songs of ``catalogue``, CATALOGUE by default, whose
    packages are installed) and return their truth records. Prints the apt packages that are missing."""
    catalogue = CATALOGUE if catalogue is None else catalogue
    missing = missing_packages(catalogue)
    if missing:
        print("missing apt packages (run scripts/install_realmusic.sh): " + " ".join(sorted(missing)))
    entries = [e for e in catalogue if not (set(e["needs"]) & missing) and (not only or e["name"] in only)]
    entries = entries[:max_songs] if max_songs else entries
    os.makedirs(out_dir, exist_ok=True)
    truths = []
    for entry in entries:
        start = time.time()
        truths.append(build_entry(entry, out_dir, seconds))
        print(f"  {entry['name']:<36} {truths[-1]['duration']:6.1f} s  built in {time.time() - start:5.1f} s",
              flush=True)
    every = read_set(out_dir)  # songs of earlier builds into the same folder stay listed
    with open(os.path.join(out_dir, "_set.json"), "w") as f:
        json.dump({"version": rt.TRUTH_VERSION, "sample_rate": SR, "songs": [t["name"] for t in every],
                   "missing_packages": sorted(missing)}, f, indent=1)
    with open(os.path.join(out_dir, "CREDITS.md"), "w") as f:
        f.write(credits(every))
    return truths


def read_set(out_dir: str) -> List[dict]:
    """The truth records of every ``*.truth.json`` in ``out_dir``, by name."""
    names = sorted(f for f in os.listdir(out_dir) if f.endswith(".truth.json"))
    out = []
    for name in names:
        with open(os.path.join(out_dir, name)) as f:
            out.append(json.load(f))
    return out


def table(truths: List[dict]) -> str:
    """A Markdown table: file, seconds, vocals, gender, genre, bpm, licence, package."""
    head = "| file | seconds | vocals | gender | language | genre | bpm | licence | package |\n|---|---|---|---|---|---|---|---|---|"
    rows = [f"| {t['file']} | {t['duration']:.1f} | {t['vocals_kind']} | {t['gender'] or '-'} | "
            f"{t['language'] or '-'} | {t['genre'] or '-'} | {t['bpm'] if t['bpm'] is not None else '-'} | "
            f"{t['licence']} | {t['source'].get('package', '')} |" for t in truths]
    return "\n".join([head] + rows)


def add_downbeats(out_dir: str) -> int:
    """Adds ``downbeats`` (bar starts from the MIDI's tempo map and time signatures) to every truth in
    ``out_dir`` whose beats came from a MIDI listed in its source files; checks that the MIDI still gives
    the recorded beats first (ValueError if not). Returns how many files it rewrote."""
    done = 0
    for path in sorted(glob.glob(os.path.join(out_dir, "*.truth.json"))):
        with open(path) as f:
            truth = json.load(f)
        mids = [p for p in truth.get("source", {}).get("files", []) if p.lower().endswith(".mid")]
        if not truth.get("beats") or not mids:
            continue
        with open(mids[0], "rb") as f:
            tmap = rt.midi_tempo_map(f.read())
        until = max(truth["duration"], truth["beats"][-1])  # the beats were cut at the build's --seconds
        beats = rt.midi_beats(tmap, until)
        if len(beats) != len(truth["beats"]) or not np.allclose(beats, truth["beats"], atol=1e-4):
            raise ValueError(f"{path}: {mids[0]} no longer gives the recorded beats")
        truth["downbeats"] = rt.midi_downbeats(tmap, until)
        with open(path, "w") as f:
            json.dump(truth, f, indent=1)
        done += 1
    return done


def main(argv: Optional[List[str]] = None) -> int:
    """CLI: ``build DIR [--max-songs N] [--seconds S] [--only NAME ...]``, ``build-tempo DIR``,
    ``add-downbeats DIR`` or ``list DIR``."""
    p = argparse.ArgumentParser(prog="realmusic", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out_dir")
    b.add_argument("--max-songs", type=int, default=None)
    b.add_argument("--seconds", type=float, default=120.0, help="trim every song to this length")
    b.add_argument("--only", nargs="*", default=None, help="build only these catalogue names")
    t = sub.add_parser("build-tempo", help="the held-out tempo set (OpenMSX MIDIs the set does not use)")
    t.add_argument("out_dir")
    t.add_argument("--seconds", type=float, default=120.0)
    d = sub.add_parser("add-downbeats", help="add MIDI bar starts to the truth of a set built before they were kept")
    d.add_argument("out_dir")
    ls = sub.add_parser("list")
    ls.add_argument("out_dir")
    args = p.parse_args(argv)
    if args.cmd == "add-downbeats":
        print(f"downbeats added to {add_downbeats(args.out_dir)} truth files in {args.out_dir}")
        return 0
    if args.cmd == "build-tempo":
        held = heldout_tempo_catalogue()
        if not held:
            print("openttd-openmsx is not installed (scripts/install_realmusic.sh installs it)")
            return 1
        truths = build(args.out_dir, seconds=args.seconds, catalogue=held)
        print(f"wrote {len(truths)} held-out tempo songs to {args.out_dir}")
        return 0
    if args.cmd == "build":
        for tool in TOOLS:
            if shutil.which(tool) is None:
                print(f"note: command {tool!r} not found (songs needing it are skipped)")
        start = time.time()
        truths = build(args.out_dir, args.max_songs, args.seconds, args.only)
        print(f"wrote {len(truths)} songs to {args.out_dir} in {time.time() - start:.0f} s")
        return 0 if truths else 1
    print(table(read_set(args.out_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
