"""Full-text tokenization for memory search.

Pipeline: NFKC + casefold -> split into ``\\w`` runs (punctuation and ``_``
separate words) -> split each run into script runs.  Latin/Greek/Cyrillic
(space-delimited) runs drop English stop words and are stemmed with the
Porter algorithm; CJK runs (Han, Hiragana, Katakana, Hangul) become character
bigrams plus unigrams, like Lucene's CJK bigram analyzer, so that queries match
inside unsegmented text (a superset of ADK's substring matching for CJK);
letters and digits stay together (``covid19``); any other script is kept as a whole ``\\w`` run.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "CONTEXT_WEIGHT",
    "FIELD_WEIGHT",
    "OWN_WEIGHT",
    "STOP_WORDS",
    "document_terms",
    "index_terms",
    "own_terms",
    "query_terms",
    "stem",
    "tokenize",
]

MAX_TOKEN_LENGTH = 64

_STOP_TEXT = """a about above after again against all am an and any are aren as at be because been
    before being
    below between both but by can cannot could couldn did didn do does doesn doing don down during each few
    for from further had hadn has hasn have haven having he her here hers herself him himself his how i if
    in into is isn it its itself just let ll me more most mustn my myself no nor not now of off on once only
    or other ought our ours ourselves out over own re same shan she should shouldn so some such t than that
    the their theirs them themselves then there these they this those through to too under until up ve very
    was wasn we were weren what when where which while who whom why will with won would wouldn you your
    yours yourself yourselves s d m o y"""
STOP_WORDS = frozenset(_STOP_TEXT.split())

_WORD_RE = re.compile(r"[^\W_]+")


def _words(norm: str) -> list[str]:
    """Runs of letters/digits; combining marks (Devanagari vowel signs, ...) stay in the word."""
    if norm.isascii():
        return _WORD_RE.findall(norm)
    out: list[str] = []
    cur: list[str] = []
    for ch in norm:
        if ch.isalnum() or (cur and unicodedata.category(ch)[0] == "M"):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def _script(ch: str) -> str:
    """Coarse script class: 'l' (space-delimited alphabetic), 'c' (CJK), 'n' (digit), 'o' (other)."""
    o = ord(ch)
    if o < 0x80 or ch.isdigit():  # digits join the Latin run ("covid19", "2024")
        return "l"
    if (
        0x2E80 <= o <= 0x9FFF  # CJK radicals, kana, bopomofo, CJK ideographs
        or 0xAC00 <= o <= 0xD7AF  # Hangul syllables
        or 0x1100 <= o <= 0x11FF  # Hangul jamo
        or 0xF900 <= o <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF66 <= o <= 0xFF9F  # halfwidth katakana (NFKC maps most away)
        or 0x20000 <= o <= 0x3FFFF  # CJK extensions
    ):
        return "c"
    if o < 0x0530:  # Latin-1/Extended, IPA, Greek, Cyrillic, Armenian
        return "l"
    name = unicodedata.name(ch, "")
    if name.startswith("LATIN"):
        return "l"
    return "o"


def _runs(word: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    start = 0
    cls = _script(word[0])
    for i in range(1, len(word)):
        c = _script(word[i])
        # combining marks (category M*) stay with the preceding run
        if c != cls and not unicodedata.category(word[i]).startswith("M"):
            out.append((cls, word[start:i]))
            start, cls = i, c
    out.append((cls, word[start:]))
    return out


# -- Porter stemmer (M.F. Porter, 1980), compact ------------------------------
_VOWELS = frozenset("aeiou")


def _cons(w: str, i: int) -> bool:
    ch = w[i]
    if ch in _VOWELS:
        return False
    if ch == "y":
        return i == 0 or not _cons(w, i - 1)
    return True


def _m(stem_: str) -> int:
    """Number of VC sequences in ``stem_``."""
    n, i, L = 0, 0, len(stem_)
    while i < L and _cons(stem_, i):
        i += 1
    while i < L:
        while i < L and not _cons(stem_, i):
            i += 1
        if i >= L:
            break
        while i < L and _cons(stem_, i):
            i += 1
        n += 1
    return n


def _has_vowel(stem_: str) -> bool:
    return any(not _cons(stem_, i) for i in range(len(stem_)))


def _double_c(w: str) -> bool:
    return len(w) >= 2 and w[-1] == w[-2] and _cons(w, len(w) - 1)


def _cvc(w: str) -> bool:
    if len(w) < 3:
        return False
    i = len(w) - 1
    return _cons(w, i - 2) and not _cons(w, i - 1) and _cons(w, i) and w[i] not in "wxy"


_STEP2 = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("izer", "ize"),
    ("bli", "ble"),
    ("alli", "al"),
    ("entli", "ent"),
    ("eli", "e"),
    ("ousli", "ous"),
    ("ization", "ize"),
    ("ation", "ate"),
    ("ator", "ate"),
    ("alism", "al"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("aliti", "al"),
    ("iviti", "ive"),
    ("biliti", "ble"),
    ("logi", "log"),
)
_STEP3 = (
    ("icate", "ic"),
    ("ative", ""),
    ("alize", "al"),
    ("iciti", "ic"),
    ("ical", "ic"),
    ("ful", ""),
    ("ness", ""),
)
_STEP4 = (
    "al",
    "ance",
    "ence",
    "er",
    "ic",
    "able",
    "ible",
    "ant",
    "ement",
    "ment",
    "ent",
    "ion",
    "ou",
    "ism",
    "ate",
    "iti",
    "ous",
    "ive",
    "ize",
)


def _replace(w: str, rules: tuple[tuple[str, str], ...], min_m: int) -> str:
    for suf, rep in rules:
        if w.endswith(suf):
            base = w[: -len(suf)]
            return base + rep if _m(base) > min_m else w
    return w


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter-stem an ASCII lower-case word; other words are returned unchanged."""
    w = word
    if len(w) <= 2 or not w.isascii() or not w.isalpha():
        return w
    # step 1a
    if w.endswith(("sses", "ies")):
        w = w[:-2]
    elif w.endswith("ss"):
        pass
    elif w.endswith("s"):
        w = w[:-1]
    # step 1b
    if w.endswith("eed"):
        if _m(w[:-3]) > 0:
            w = w[:-1]
    else:
        for suf in ("ed", "ing"):
            if w.endswith(suf) and _has_vowel(w[: -len(suf)]):
                w = w[: -len(suf)]
                if w.endswith(("at", "bl", "iz")):
                    w += "e"
                elif _double_c(w) and w[-1] not in "lsz":
                    w = w[:-1]
                elif _m(w) == 1 and _cvc(w):
                    w += "e"
                break
    # step 1c
    if w.endswith("y") and _has_vowel(w[:-1]):
        w = w[:-1] + "i"
    w = _replace(w, _STEP2, 0)
    w = _replace(w, _STEP3, 0)
    # step 4
    for suf in _STEP4:
        if w.endswith(suf):
            base = w[: -len(suf)]
            if _m(base) > 1 and (suf != "ion" or base.endswith(("s", "t"))):
                w = base
            break
    # step 5
    if w.endswith("e"):
        base = w[:-1]
        m = _m(base)
        if m > 1 or (m == 1 and not _cvc(base)):
            w = base
    if _m(w) > 1 and _double_c(w) and w.endswith("l"):
        w = w[:-1]
    return w or word


def _cjk_grams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    grams = list(run)
    grams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def tokenize(text: str, *, keep_stop_words: bool = False) -> list[str]:
    """Terms of ``text`` in order, with repetitions (used for term frequencies)."""
    if not text:
        return []
    norm = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for word in _words(norm):
        for cls, run in _runs(word):
            if cls == "c":
                out.extend(_cjk_grams(run))
                continue
            if cls == "l":
                if not keep_stop_words and run in STOP_WORDS:
                    continue
                run = stem(run)
            if len(run) > MAX_TOKEN_LENGTH:
                run = run[:MAX_TOKEN_LENGTH]
            out.append(run)
    return out


def document_terms(text: str) -> Counter[str]:
    """Term -> frequency for indexing a document."""
    return Counter(tokenize(text))


# Term frequencies of an indexed document, in half-occurrences: a word of the document itself counts 2,
# a word of a searchable field (speaker, month and year) 2, a word of an adjacent turn 1 (chosen on
# LoCoMo's development half; see docs/benchmarks.md, LoCoMo).
OWN_WEIGHT = 2
FIELD_WEIGHT = 2
CONTEXT_WEIGHT = 1


@lru_cache(maxsize=4096)
def _cached_tokens(text: str) -> tuple[str, ...]:
    # a turn is tokenized for itself and again as its neighbours' context
    return tuple(tokenize(text))


def index_terms(
    text: str,
    *,
    fields: Sequence[str] = (),
    context: Sequence[str] = (),
    max_terms: int | None = None,
) -> tuple[Counter[str], int]:
    """Weighted term frequencies of a document and how many distinct terms were dropped.

    ``fields`` (speaker, date words) count like the document's own words, ``context`` (the
    adjacent turns) at half weight.  With ``max_terms``, only the first ``max_terms`` distinct
    terms are kept: the document's own first, then fields, then context.
    """
    counts: Counter[str] = Counter()
    for part, weight in [
        (text, OWN_WEIGHT),
        *((f, FIELD_WEIGHT) for f in fields),
        *((c, CONTEXT_WEIGHT) for c in context),
    ]:
        for term in _cached_tokens(part):
            counts[term] += weight
    if max_terms is None or len(counts) <= max_terms:
        return counts, 0
    kept = Counter(dict(list(counts.items())[:max_terms]))  # insertion order: own, fields, context
    return kept, len(counts) - max_terms


def own_terms(text: str, fields: Sequence[str] = ()) -> set[str]:
    """The terms of a document's own text and fields (the ones a full-text hit must match)."""
    out = set(_cached_tokens(text))
    for f in fields:
        out.update(_cached_tokens(f))
    return out


def query_terms(text: str) -> list[str]:
    """Distinct query terms in first-seen order (empty for a stop-words-only query)."""
    return list(dict.fromkeys(tokenize(text)))
