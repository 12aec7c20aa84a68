"""musicnn music taggers (MTT_musicnn, MSD_musicnn; ISC licence) run in PyTorch, no TensorFlow.

Modules: ``checkpoint`` (reads the package's TensorFlow checkpoint files),
``features`` (the models' log-mel input and 3 s patches), ``model`` (the
network as pure functions over a parameter dict), ``tagger`` (``load()`` and
``tag_song()``) and ``mapping`` (scores to songshard's vocabulary and vocal
gender, rules in ``mapping.json``). Nothing heavy is imported here.
"""
