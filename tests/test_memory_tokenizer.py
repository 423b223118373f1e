"""Tokenizer: normalization, stop words, stemming, CJK bigrams; hypothesis properties."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adk_redis.memory._tokenizer import document_terms, query_terms, stem, tokenize


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("cats", "cat"),
        ("feed", "feed"),
        ("agreed", "agre"),
        ("plastered", "plaster"),
        ("motoring", "motor"),
        ("sing", "sing"),
        ("hopping", "hop"),
        ("falling", "fall"),
        ("filing", "file"),
        ("happy", "happi"),
        ("relational", "relat"),
        ("generalizations", "gener"),
        ("adjustment", "adjust"),
        ("effective", "effect"),
        ("cease", "ceas"),
        ("controll", "control"),
        ("running", "run"),
        ("runs", "run"),
        ("is", "is"),
    ],
)
def test_porter(word: str, expected: str) -> None:
    assert stem(word) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("adopted", "adopting"),
        ("cats", "cat"),
        ("allergies", "allergy"),
        ("moving", "moved"),
        ("Dogs", "dog"),
    ],
)
def test_inflections_share_a_term(a: str, b: str) -> None:
    assert tokenize(a) == tokenize(b)


def test_normalization_and_punctuation() -> None:
    assert tokenize("ＨＥＬＬＯ,world!! ﬁle_name") == ["hello", "world", "file", "name"]
    assert tokenize("Straße") == tokenize("STRASSE")
    assert tokenize("e-mail: me@example.com") == ["e", "mail", "exampl", "com"]
    assert tokenize("") == [] and tokenize("   ...  ") == []


def test_stop_words() -> None:
    assert tokenize("the cat and the hat") == ["cat", "hat"]
    assert query_terms("who are you") == []
    assert tokenize("the", keep_stop_words=True) == ["the"]


def test_cjk_bigrams_and_unigrams() -> None:
    assert tokenize("東京都") == ["東", "京", "都", "東京", "京都"]
    assert tokenize("私はPythonを使う")[:4] == ["私", "は", "私は", "python"]
    assert "한국" in tokenize("한국어")
    assert tokenize("日") == ["日"]


def test_other_scripts_kept_as_runs() -> None:
    assert tokenize("Привет мир") == ["привет", "мир"]
    assert tokenize("مرحبا بالعالم") == ["مرحبا", "بالعالم"]
    assert tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert tokenize("abc123 covid-19") == ["abc123", "covid", "19"]


def test_query_terms_distinct_and_document_counts() -> None:
    assert query_terms("cats cat CAT dogs") == ["cat", "dog"]
    assert document_terms("cat cats dog") == {"cat": 2, "dog": 1}


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_tokens_are_clean(s: str) -> None:
    for tok in tokenize(s):
        assert tok
        assert not re.search(r"[\s_]", tok)
        assert all(unicodedata.category(c)[0] in "LNM" for c in tok)
        assert len(tok) <= 64


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_deterministic_and_nfkc_invariant(s: str) -> None:
    assert tokenize(s) == tokenize(s)
    assert tokenize(unicodedata.normalize("NFKC", s)) == tokenize(s)


@given(st.text(alphabet=st.characters(min_codepoint=65, max_codepoint=122).filter(str.isalpha), max_size=30))
def test_case_insensitive_ascii(s: str) -> None:
    assert tokenize(s.upper()) == tokenize(s.lower())


@given(st.from_regex(r"[a-z]{1,20}", fullmatch=True))
def test_stem_shortens_and_is_nonempty(w: str) -> None:
    out = stem(w)
    assert out and len(out) <= len(w)
    assert out[:1] == w[:1]


@given(st.lists(st.text(), max_size=5))
def test_document_is_union_of_parts(parts: list[str]) -> None:
    # joining texts with spaces never loses a Latin term of a part
    joined = " ".join(parts)
    assert set(tokenize(joined)) >= {t for p in parts for t in tokenize(p) if t.isascii()}


@given(
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=12),
    st.integers(0, 10),
    st.integers(2, 12),
)
def test_cjk_substring_query_matches(s: str, start: int, length: int) -> None:
    sub = s[start : start + length]
    if len(sub) >= 1:
        assert set(query_terms(sub)) <= set(tokenize(s))
