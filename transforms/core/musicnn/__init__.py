"""musicnn music taggers (MTT_musicnn, MSD_musicnn; ISC licence) run in PyTorch, no TensorFlow.

Shared by the tags stage (genre, mood, instruments, vocal gender) and the structure stage (the
genre tilt of the tempo prior), so it lives in core. Modules: ``checkpoint`` (reads the package's
TensorFlow checkpoint files), ``features`` (the models' log-mel input and 3 s patches), ``model``
(the network as pure functions over a parameter dict) and ``tagger`` (``load()`` and
``tag_song()``). Nothing heavy is imported here.
"""
