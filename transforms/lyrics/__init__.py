"""The lyrics stage's pieces: ASR backends, guards, lyric formatting, alignment to references.

Importing this package registers the backends of stage "lyrics" by name only
(nothing heavy is imported): ``faster-whisper`` (default, embedded Whisper base),
``whisper`` (openai-whisper checkpoint) and ``none`` (no transcription).
"""

from transforms.base import register_backend

register_backend("lyrics", "faster-whisper", "transforms.lyrics.faster_whisper_backend:FasterWhisperBackend")
register_backend("lyrics", "whisper", "transforms.lyrics.whisper_backend:WhisperBackend")
register_backend("lyrics", "none", "transforms.lyrics.backend:NoAsr")
