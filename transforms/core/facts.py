"""Facts of the training side and of songshard's defaults, each defined once.

Rates and frame maths follow the SongGeneration family (see FORMATS.md in the
project's notes): the codec reads 48 kHz stereo at 25 frames a second, songs are
capped at 360 s, ids 0..16383 are codes and 16385 pads prompts.
"""

CODEC_RATE = 48000  # codec input: 48 kHz stereo
CODEC_CHANNELS = 2
ASR_RATE = 16000  # ASR and tagging input: 16 kHz mono
FRAME_RATE = 25  # codec frames per second (40 ms a frame)
MAX_SONG_SECONDS = 360.0  # songs are cut to this length
CODEBOOK_SIZE = 16384
PAD_ID = 16385
SPLIT_VALID_FRACTION = 0.05
SPLIT_TEST_FRACTION = 0.05
MIN_SONG_SECONDS = 60.0  # the training side uses no song shorter than a minute
