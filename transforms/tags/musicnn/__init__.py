"""musicnn scores in songshard's vocabulary: ``mapping`` (scores to genre, mood, instrument terms
and vocal gender, rules in ``mapping.json``). The taggers themselves live in
``transforms.core.musicnn`` (the structure stage uses them too). Nothing heavy is imported here.
"""
