"""The heuristic tier's C-speed shortcuts give exactly what the regexes they stand in for give.

Each shortcut in ``heuristic.py`` and ``text.py`` names the regex it replaces; these tests run both over a corpus
built to hit their edges (apostrophes at word ends, separators, bullets, abbreviations, non-ASCII letters, control
bytes) plus every text of the labeled fixtures.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from llmobs.evaluation import heuristic as h
from llmobs.evaluation import text as t

DATA = Path(__file__).resolve().parents[1] / "data" / "eval"
_PIECES = [
    *"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    *" .,;:!?'\"()[]-*_~\n\t@$#%|+",
    *"’“”«»éüñÀ中文日本語…•€\x00\x07\x7f\x85\ufffd\ue000",
    "e.g. ", "Dr. ", "U.S. ", " et al.", " (Smith, 2020)", "http://x.y", "doi:", "According to the 2019",
    "1.5 billion", "3k ", "12 m ", "```py\nx=1\n```\n", "\n- ", "\n1. ", "- ", "* ", "However, ", "for example ",
    "In addition", "on the other hand", "so_what", "'quoted'", "don't", "''", "f.u.c.k", "s h i t", "b-i-t-c-h",
    "strengths", "rhythm", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "The Moon", "(Paris", "NASA ",
]


def _corpus() -> list[str]:
    """Fixture texts, random recombinations of their words, and random strings of edge-case pieces."""
    texts: list[str] = []
    for path in sorted(DATA.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts += [v for v in json.loads(line).values() if isinstance(v, str) and len(v) > 3]
    rnd = random.Random(20261127)
    words = " ".join(texts).split()
    for i in range(2500):
        if i % 2:
            texts.append("".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 60))))
        else:
            s = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 40)))
            texts.append("".join(c if rnd.random() > 0.06 else rnd.choice(_PIECES) for c in s))
    return texts


CORPUS = _corpus()


def _mismatches(fast, spec) -> list[str]:  # type: ignore[no-untyped-def]
    """Corpus texts on which ``fast`` and ``spec`` disagree (at most five, for the failure message)."""
    return [text for text in CORPUS if fast(text) != spec(text)][:5]


def test_ascii_word_tokens_equal_the_word_regex() -> None:
    ascii_only = [s for s in CORPUS if s.isascii()]
    assert len(ascii_only) > 1000
    for lower in (True, False):
        bad = [
            s for s in ascii_only
            if t.word_tokens(s, lower=lower) != t._PLAIN_WORD_RE.findall(s.lower() if lower else s)
        ]
        assert bad[:5] == []


def test_separated_letter_probe_equals_its_regex() -> None:
    probe = re.compile(r"[ .\-_,~*][a-z0-9@$!][ .\-_,~*]{1,3}[a-z0-9@$!][ .\-_,~*]")
    assert _mismatches(
        lambda s: h._has_separated_letters(s.lower()),
        lambda s: probe.search(f" {s.lower()} ") is not None,
    ) == []


def test_lexicon_tokens_equal_the_lexicon_regex() -> None:
    assert _mismatches(lambda s: h._lexicon_tokens(s.lower()), lambda s: h._LEXICON_TOKEN_RE.findall(s.lower())) == []


def test_discourse_marker_shortcut_equals_the_marker_regex() -> None:
    sentences = [s for text in CORPUS for s in t.split_sentences(text)]
    bad = [s for s in sentences if h._opens_with_marker(s) != (h._DISCOURSE_RE.match(s) is not None)]
    assert bad[:5] == []
    assert sum(map(h._opens_with_marker, sentences)) > 50  # the corpus exercises both answers


def test_citation_shortcut_equals_the_citation_regex() -> None:
    assert _mismatches(lambda s: h._citations(s.lower()), lambda s: h._CITATION_RE.findall(s.lower())) == []


def test_consonant_run_probe_never_skips_a_no_vowel_word() -> None:
    skipped = [
        s for s in CORPUS if h._NO_VOWEL_WORD_RE.search(f" {s.lower()} ") and not h._has_consonant_run(f" {s.lower()} ")
    ]
    assert skipped == []


def test_sentence_start_shortcut_equals_the_sentence_start_regex() -> None:
    bad = []
    for text in CORPUS:
        for m in t._ENTITY_RE.finditer(text):
            start = m.start()
            spec = start == 0 or t._SENT_START_RE.search(text[max(0, start - 4) : start]) is not None
            if t._at_sentence_start(text, start) != spec:
                bad.append((text, start))
    assert bad[:5] == []


@pytest.mark.parametrize("sample", [4000, 7])
def test_script_profile_counts_equal_the_regex_counts(sample: int) -> None:
    def spec(text: str) -> t.ScriptProfile:
        s = text[:sample]
        return t.ScriptProfile(
            chars=len(s),
            letters=len(re.sub(r"[\W\d_]+", "", s)),
            latin_letters=len(re.sub(r"[^A-Za-z\u00C0-\u024F]+", "", s)),
            junk=len(t._JUNK_RE.findall(s)),
        )

    assert _mismatches(lambda s: t.script_profile(s, sample=sample), spec) == []


def test_sentence_split_keeps_abbreviations_and_needs_a_capital_after_the_stop() -> None:
    assert t.split_sentences("Ask Dr. Smith. then go. Next one! 'Quoted' start? e.g. This stays.") == [
        "Ask Dr. Smith. then go.",
        "Next one!",
        "'Quoted' start? e.g. This stays.",
    ]
