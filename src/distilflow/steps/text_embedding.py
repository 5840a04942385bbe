"""Deterministic text embeddings computed in-process: hashed character n-grams (no model, no download).

A text becomes the counts of its character n-grams (lower-cased, runs of whitespace made one
space), each n-gram hashed with BLAKE2b into one of `dimensions` buckets with a sign taken from the
same hash (the "hashing trick": collisions cancel out on average instead of piling up). Texts
that share wording get a high cosine similarity; the vectors know nothing of meaning (synonyms
or paraphrases look unrelated), which is what a step comparing texts for near-duplicates, such as
`DeitaFiltering`'s diversity check without an `embedding` column, needs. The same text gives the
same vector on every machine and Python version (no `hash()` seed involved).

numpy is imported when first needed, so steps that never embed do not require it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any


__all__ = ["DIMENSIONS", "NGRAM", "hashed_ngram_embeddings", "numpy"]

#: buckets of the hashed vectors: enough that unrelated short texts rarely collide
DIMENSIONS = 1024
#: characters per n-gram: trigrams catch shared words and word fragments
NGRAM = 3

_SPACES = re.compile(r"\s+")


def numpy() -> Any:
    """The numpy module (a dependency; imported when embeddings are first compared, not with the step)."""
    import numpy as np

    return np


def hashed_ngram_embeddings(texts: Sequence[str], dimensions: int = DIMENSIONS, n: int = NGRAM) -> Any:
    """A `len(texts) x dimensions` float64 array: each text's signed, hashed character n-gram counts.

    An empty text gives a zero vector.
    """
    np = numpy()
    vectors = np.zeros((len(texts), dimensions), dtype=np.float64)
    buckets: dict[str, tuple[int, float]] = {}  # n-gram -> (bucket, sign); n-grams repeat a lot
    for row, text in enumerate(texts):
        normal = _SPACES.sub(" ", text.lower()).strip()
        if not normal:
            continue
        padded = f" {normal} "
        grams = [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
        for gram in grams:
            bucket = buckets.get(gram)
            if bucket is None:
                digest = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
                bucket = buckets[gram] = (digest % dimensions, 1.0 if digest >> 63 else -1.0)
            vectors[row, bucket[0]] += bucket[1]
    return vectors
