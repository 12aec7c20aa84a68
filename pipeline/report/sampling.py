"""Which samples get a page of their own: a stratified pick over the index. Pure.

Pages are the costly part of a report (audio extracted, images drawn), so
``--sample N`` makes pages for N samples chosen so that every stratum
(split x genre x musicality tier by default) shows up before any stratum gets a
second one, then in proportion to the strata's sizes. When N is smaller than the
number of strata, strata are picked so that every split, genre and tier shows up as
early as possible. Inside a stratum samples are taken in the order of a stable hash
of their key, so the same index always gives the same pages.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from schemas.records import stable_hash

STRATA = ("split", "genre", "musicality")


def strata_of(rows: Sequence[dict], by: Sequence[str] = STRATA) -> Dict[Tuple, List[dict]]:
    """{stratum (tuple of the ``by`` values): rows in stable-hash order of their key}."""
    groups: Dict[Tuple, List[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(str(row.get(col) or "") for col in by)].append(row)
    for members in groups.values():
        members.sort(key=lambda r: stable_hash(str(r["key"])))
    return dict(groups)


def diverse_strata(sizes: Dict[Tuple, int], n: int) -> List[Tuple]:
    """``n`` strata chosen greedily so each pick adds the most values not yet shown on any
    dimension (a split, a genre, a tier); ties go to a new value on an earlier dimension, then
    to the bigger stratum.

    With 3 splits x 30 genres x 5 tiers and n = 10, the pick covers every split and every tier
    instead of the 10 biggest strata, which would all be train.
    """
    left = sorted(sizes, key=lambda s: (-sizes[s], s))
    seen: List[set] = [set() for _ in (left[0] if left else ())]
    chosen: List[Tuple] = []
    while left and len(chosen) < n:
        # Most new values first; on a tie, a new value on an earlier dimension (split before genre
        # before tier), then the bigger stratum.
        best = max(left, key=lambda s: (sum(v not in seen[d] for d, v in enumerate(s)),
                                        tuple(v not in seen[d] for d, v in enumerate(s)), sizes[s]))
        chosen.append(best)
        left.remove(best)
        for d, v in enumerate(best):
            seen[d].add(v)
    return chosen


def allocate(sizes: Dict[Tuple, int], n: int) -> Dict[Tuple, int]:
    """How many to take from each stratum: one each first (when n is short, the strata of
    :func:`diverse_strata`), the rest in proportion to what is left by largest remainder, never
    more than a stratum holds. The total is min(n, sum of sizes)."""
    order = sorted(sizes, key=lambda s: (-sizes[s], s))
    n = min(n, sum(sizes.values()))
    take = {s: 0 for s in sizes}
    for s in (order if n >= len(order) else diverse_strata(sizes, n)):
        take[s] = 1
    left = n - sum(take.values())
    while left > 0:
        spare = {s: sizes[s] - take[s] for s in order if sizes[s] > take[s]}
        total = sum(spare.values())
        shares = {s: left * spare[s] / total for s in spare}
        floors = {s: min(int(shares[s]), spare[s]) for s in spare}
        if sum(floors.values()) == 0:  # fewer left than strata with room: biggest remainders first
            for s in sorted(spare, key=lambda s: (-shares[s], s))[:left]:
                take[s] += 1
            break
        for s, k in floors.items():
            take[s] += k
        left = n - sum(take.values())
    return take


def stratified_sample(rows: Sequence[dict], n: Optional[int], by: Sequence[str] = STRATA) -> List[str]:
    """Keys of ``n`` rows (every row when ``n`` is None), ordered by stratum then hash.

    Raises ValueError for a negative ``n``.
    """
    if n is None:
        return [str(r["key"]) for r in rows]
    if n < 0:
        raise ValueError(f"sample size must be >= 0, got {n}")
    groups = strata_of(rows, by)
    take = allocate({s: len(m) for s, m in groups.items()}, n)
    keys: List[str] = []
    for stratum in sorted(groups):
        keys.extend(str(r["key"]) for r in groups[stratum][:take[stratum]])
    return keys
