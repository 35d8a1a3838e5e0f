"""Seeds for evaluations, derived so results never depend on worker count or order.

The seed of one evaluation is a hash of (search seed, canonical hash of the
expression, budget, replicate): the same candidate at the same fidelity in the
same search always trains with the same seed, wherever and whenever it runs.
"""

from __future__ import annotations

import hashlib


MAX_SEED = 2**32 - 1  # derive_seed's four bytes: every evaluation seed of a search is in [0, MAX_SEED]


def derive_seed(search_seed: int, expr_hash: str, budget: float, replicate: int = 0) -> int:
    text = f"{search_seed}|{expr_hash}|{float(budget)!r}|{replicate}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")
