"""The one Beam version of songshard.

The launcher (this package and its ``dataflow`` extra) and the worker image
(docker/Dockerfile's ``ARG BEAM_VERSION``) must run the same Beam SDK: Dataflow's
workers refuse every bundle built by another SDK version. ``setup.py`` reads the
pin from this file's text (it must not import the package), the launcher checks
the installed Beam against it (:mod:`pipeline.launcher`), and tests/test_image.py
fails when the Dockerfile, setup.py or the installed Beam drift from it.
"""

BEAM_VERSION = "2.78.0"

# The worker image's Python (apache/beam_python3.11_sdk): a Dataflow launcher must pickle with it.
WORKER_PYTHON = (3, 11)
