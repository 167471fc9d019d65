"""Repetition ratio of a generated text (the paper's Appendix B "cleaning" filter).

Small students often loop ("so the answer is 5. so the answer is 5. ..."). The ratio is the
share of word n-grams that repeat an earlier n-gram of the same text:
    ratio = 1 - distinct_ngrams / total_ngrams
0 for text without any repeated n-gram, close to 1 for a text stuck in a loop. Texts shorter
than n words have ratio 0.
"""

from __future__ import annotations

DEFAULT_NGRAM = 10
DEFAULT_MAX_REPETITION = 0.3


def repetition_ratio(text: str, n: int = DEFAULT_NGRAM) -> float:
    words = text.split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    distinct = {tuple(words[i : i + n]) for i in range(total)}
    return 1.0 - len(distinct) / total
