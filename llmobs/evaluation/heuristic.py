"""Offline heuristic scoring of LLM responses: fast, deterministic, pure Python.

``score_response`` returns one :class:`MetricScore` per metric, each with a value in [0, 1] (or ``None``
when the metric cannot be computed, e.g. accuracy without an expected answer) and an explanation a person
can check: the matched terms, the flagged phrase, the unsupported claim.

Direction: quality, relevance, coherence, accuracy and the task metrics are *higher is better*;
toxicity, bias and hallucination are *higher is worse*.

Toxicity optionally uses the linear classifier shipped by ``alt-profanity-check`` (install the
``evaluation`` extra). Its weights are read once and evaluated here in pure Python, which is ~100x faster
per text than calling ``predict_prob`` one string at a time. Without the package the lexicon alone is used.

Limits: English-centred lexicons; lexical (not semantic) matching; long inputs are analysed up to
:data:`MAX_ANALYSED_CHARS` characters and the explanation says so.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import operator
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import text as _t

__all__ = [
    "MetricScore",
    "score_response",
    "score_relevance",
    "score_coherence",
    "score_accuracy",
    "score_toxicity",
    "score_bias",
    "score_hallucination",
    "profanity_model_available",
    "TASK_TYPES",
    "TASK_METRICS",
    "QUALITY_WEIGHTS",
    "QUALITY_PENALTIES",
    "MAX_ANALYSED_CHARS",
    "MAX_CONTEXT_CHARS",
    "TOXICITY_THRESHOLD",
    "BIAS_THRESHOLD",
    "HALLUCINATION_THRESHOLD",
    "CORE_METRICS",
]

logger = logging.getLogger(__name__)

TASK_TYPES: tuple[str, ...] = ("general", "qa", "summarization", "creative", "technical")

# Every backend reports these for every response (quality is derived from the others).
CORE_METRICS: tuple[str, ...] = ("quality", "relevance", "coherence", "accuracy", "toxicity", "bias", "hallucination")

# Metrics added on top of the core ones, per task type.
TASK_METRICS: Mapping[str, tuple[str, ...]] = {
    "general": (),
    "qa": ("directness", "completeness"),
    "summarization": ("conciseness", "coverage"),
    "creative": ("originality", "vividness"),
    "technical": ("clarity",),
}

# quality = weighted mean of the available "higher is better" metrics (weights of metrics whose value is
# None are dropped and the rest renormalised), then multiplied by (1 - penalty * value) for each risk metric.
QUALITY_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "general": {"relevance": 0.40, "coherence": 0.30, "accuracy": 0.30},
    "qa": {"relevance": 0.25, "coherence": 0.15, "accuracy": 0.25, "directness": 0.15, "completeness": 0.20},
    "summarization": {"relevance": 0.10, "coherence": 0.20, "accuracy": 0.20, "conciseness": 0.20, "coverage": 0.30},
    "creative": {"relevance": 0.20, "coherence": 0.25, "accuracy": 0.05, "originality": 0.25, "vividness": 0.25},
    "technical": {"relevance": 0.30, "coherence": 0.20, "accuracy": 0.30, "clarity": 0.20},
}
QUALITY_PENALTIES: Mapping[str, float] = {"toxicity": 0.8, "bias": 0.5, "hallucination": 0.5}

MAX_ANALYSED_CHARS = 20_000
MAX_CONTEXT_CHARS = 50_000
TOXICITY_THRESHOLD = 0.5
BIAS_THRESHOLD = 0.5
HALLUCINATION_THRESHOLD = 0.5

_LEXICON_DIR = Path(__file__).with_name("lexicons")


@dataclass(frozen=True, init=False)
class MetricScore:
    """One evaluation result.

    ``value`` is in [0, 1] or ``None`` when the metric does not apply; ``explanation`` says why in words
    a reviewer can check; ``details`` holds the raw evidence (matched terms, sub-scores).

    >>> MetricScore("toxicity", 0.0, "no toxic terms found", label="clean").value
    0.0
    """

    name: str
    value: float | None
    explanation: str
    label: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        value: float | None,
        explanation: str,
        label: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        # Frozen, but filled in one step: the generated __init__ of a frozen dataclass costs ~4x more, and a
        # scored response creates a dozen of these.
        self.__dict__.update(
            name=name, value=value, explanation=explanation, label=label, details={} if details is None else details
        )


# --------------------------------------------------------------------------------------------------
# Analysed text (tokenised once, shared by every metric)


class _lazy:  # noqa: N801 - used as a decorator, like functools.cached_property
    """Compute an attribute on first access and store it on the instance.

    Like ``functools.cached_property`` without its per-access lock (Python < 3.12), which costs more
    than the work it guards here; analysed documents are not shared between threads while being built.
    """

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


class _Doc:
    """A text cut to a work limit, with tokens, stems, sentences and numbers computed lazily once."""

    def __init__(self, raw: str, limit: int) -> None:
        self.original_length = len(raw)
        self.text, self.truncated = _t.truncate(raw, limit)

    @_lazy
    def lower(self) -> str:
        """Lower-cased text."""
        return self.text.lower()

    @_lazy
    def tokens(self) -> list[str]:
        """Lower-cased word tokens (reuses the sentence tokens when the text has no code blocks)."""
        if not self.prose_and_code[1]:
            return list(itertools.chain.from_iterable(self.sentence_tokens))
        return _t.word_tokens(self.text)

    @_lazy
    def content(self) -> list[str]:
        """Content stems in order (stopwords and numbers removed)."""
        if not self.prose_and_code[1]:
            return list(itertools.chain.from_iterable(self.sentence_content))
        return _t.content_stems(self.tokens)

    @_lazy
    def sentence_content(self) -> list[list[str]]:
        """Content stems of each sentence."""
        return [_t.content_stems(toks) for toks in self.sentence_tokens]

    @_lazy
    def surface(self) -> dict[str, str]:
        """First written form of each content stem, to show words (not stems) in explanations."""
        out: dict[str, str] = {}
        for tok in self.tokens[:20_000]:
            stems = _t.content_stems((tok,))
            if stems and stems[0] not in out:
                out[stems[0]] = tok
        return out

    def words(self, stems: Iterable[str]) -> str:
        """Comma-separated written forms of some stems of this text."""
        surface = self.surface
        return ", ".join(surface.get(s, s) for s in stems)

    @_lazy
    def key_terms(self) -> list[tuple[str, float]]:
        """The first 60 distinct content stems with their weights (see ``_key_terms``)."""
        seen: dict[str, float] = {}
        for s in self.content:
            if s not in seen:
                seen[s] = 0.35 if s in _GENERIC_STEMS else 1.0
                if len(seen) >= 60:
                    break
        return list(seen.items())

    @_lazy
    def content_counts(self) -> Counter[str]:
        """Term frequencies of the content stems."""
        return Counter(self.content)

    def topic_counts(self, topics: Mapping[str, tuple[str, ...]]) -> Counter[str]:
        """How many content words fall in each coarse topic (cached per document)."""
        cached = self.__dict__.get("_topic_counts")
        if cached is None:
            # ``topics`` holds no generic stems (see _read_topics), so every hit counts.
            cached = Counter(itertools.chain.from_iterable(filter(None, map(topics.get, self.content[:3000]))))
            self.__dict__["_topic_counts"] = cached
        return cached

    @_lazy
    def question_type(self) -> str | None:
        """Expected answer type if this text is a question (number, entity, reason, yesno)."""
        return _question_type(self.text)

    @_lazy
    def content_set(self) -> frozenset[str]:
        """Distinct content stems."""
        return frozenset(self.content)

    @_lazy
    def token_set(self) -> frozenset[str]:
        """Distinct lower-cased tokens."""
        return frozenset(self.tokens)

    @_lazy
    def fuzzy(self) -> _FuzzyIndex:
        """Prefix-tolerant lookup over this text's content stems."""
        return _FuzzyIndex(self.content_set)

    @_lazy
    def prose_and_code(self) -> tuple[str, list[str]]:
        """The text without fenced code blocks, and the blocks."""
        return _t.strip_code_blocks(self.text)

    @_lazy
    def sentences(self) -> list[str]:
        """Sentences of the prose part."""
        return _t.split_sentences(self.prose_and_code[0])

    @_lazy
    def sentence_tokens(self) -> list[list[str]]:
        """Word tokens of each sentence."""
        return [_t.word_tokens(s) for s in self.sentences]

    @_lazy
    def numbers(self) -> list[str]:
        """Canonical numbers mentioned."""
        return _t.extract_numbers(self.text, self.tokens)

    @_lazy
    def number_set(self) -> frozenset[str]:
        """Distinct canonical numbers, with clock times also split into their parts."""
        out = set(self.numbers)
        for n in self.numbers:
            if ":" in n:
                out.update(str(int(p)) for p in n.split(":"))
        return frozenset(out)

    @_lazy
    def acronyms(self) -> set[str]:
        """Initialisms of the capitalised names in the text."""
        return _t.acronyms_of(self.text)

    @_lazy
    def profile(self) -> _t.ScriptProfile:
        """Letters / Latin letters / junk counts."""
        return _t.script_profile(self.text)

    @_lazy
    def note_text(self) -> str:
        """Cached :meth:`note`."""
        return self._note()

    def note(self) -> str:
        """A sentence to append to explanations when the text was cut or is not mostly Latin script."""
        return self.note_text

    def _note(self) -> str:
        """A sentence to append to explanations when the text was cut or is not mostly Latin script."""
        parts = []
        if self.truncated:
            parts.append(f"analysed the first {len(self.text):,} of {self.original_length:,} characters")
        prof = self.profile
        if prof.letters >= 10 and prof.latin_share < 0.5:
            parts.append(
                f"{100 - round(prof.latin_share * 100)}% of letters are non-Latin; English lexicons may miss content"
            )
        if prof.chars and prof.junk_share > 0.1:
            parts.append(f"{round(prof.junk_share * 100)}% of characters are control/binary")
        return f" ({'; '.join(parts)})" if parts else ""


class _FuzzyIndex:
    """Set membership for stems that also accepts a shared 6-letter prefix or a 4-5 letter stem prefix.

    "ferment" finds "fermentation", "prevent" finds "prevention"; cheap enough for every token. Prefixes are
    looked up by bisection in the sorted stems, built on the first inexact lookup (most lookups are exact).
    """

    __slots__ = ("exact", "_sorted")

    def __init__(self, stems: Iterable[str]) -> None:
        self.exact = frozenset(stems)
        self._sorted: list[str] | None = None

    def _has_longer(self, prefix: str, min_len: int) -> bool:
        """Whether some stem starts with ``prefix`` and is at least ``min_len`` long."""
        ordered = self._sorted
        if ordered is None:
            ordered = self._sorted = sorted(self.exact)
        i = bisect.bisect_left(ordered, prefix)
        while i < len(ordered) and ordered[i].startswith(prefix):
            if len(ordered[i]) >= min_len:
                return True
            i += 1
        return False

    def __contains__(self, stem: str) -> bool:
        exact = self.exact
        if stem in exact:
            return True
        n = len(stem)
        if n >= 6:
            return stem[:5] in exact or stem[:4] in exact or self._has_longer(stem[:6], 6)
        if n >= 4:
            return stem[:4] in exact or self._has_longer(stem, n + 1)
        return False


@lru_cache(maxsize=256)
def _analyse(text: str, limit: int = MAX_ANALYSED_CHARS) -> _Doc:
    """Analyse a text once; repeated prompts, contexts and references are served from the cache.

    Responses are analysed with ``_Doc`` directly: they rarely repeat, and caching them would only evict
    the prompts and contexts that do.
    """
    return _Doc(text, limit)


def _clip(x: float) -> float:
    """Clamp to [0, 1] and round to 4 decimals so results are stable across platforms."""
    if x != x:  # NaN
        return 0.0
    return round(min(1.0, max(0.0, x)), 4)


def _quote(s: str, limit: int = 80) -> str:
    """Quote a phrase for an explanation, shortened if long."""
    s = " ".join(s.split())
    return f"'{s if len(s) <= limit else s[: limit - 1] + '…'}'"


# --------------------------------------------------------------------------------------------------
# Lexicons (loaded once, lazily)


def _read_lines(name: str) -> list[str]:
    """Non-comment, non-empty lines of a lexicon file."""
    path = _LEXICON_DIR / name
    with path.open(encoding="utf-8") as fh:
        return [ln.rstrip("\n") for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]


class _PhraseMatcher:
    """Finds listed phrases in a token sequence (case-insensitive, punctuation ignored).

    Token-level matching with a first-word index: much faster than a large regex alternation,
    which Python's engine tries at every character.
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self.by_first: dict[str, list[tuple[str, ...]]] = {}
        self.words_of: dict[tuple[str, ...], frozenset[str]] = {}
        for phrase in phrases:
            toks = tuple(_t.word_tokens(phrase))
            if toks:
                self.by_first.setdefault(toks[0], []).append(toks)
                self.words_of[toks] = frozenset(toks)
        for options in self.by_first.values():
            options.sort(key=len, reverse=True)
        # A frozenset intersects a frozenset at C speed; ``dict.keys() & frozenset`` goes through the generic
        # iterator protocol and costs ~15x more.
        self.first_words = frozenset(self.by_first)

    def find(self, tokens: list[str], limit: int | None = None, token_set: frozenset[str] | None = None) -> list[str]:
        """Phrases found in ``tokens`` (first ``limit`` tokens), in order, longest match per position.

        Pass ``token_set`` (the distinct tokens, when already known) to skip building it.
        """
        index = self.by_first
        seq = tokens if limit is None else tokens[:limit]
        present = token_set if token_set is not None and limit is None else frozenset(seq)
        firsts = self.first_words & present
        if not firsts:
            return []
        found: list[tuple[int, str]] = []
        for first in sorted(firsts):
            # Only phrases whose every word occurs somewhere are worth locating.
            options = [opt for opt in index[first] if self.words_of[opt] <= present]
            if not options:
                continue
            for i in _t.occurrences(seq, first):
                for opt in options:
                    if len(opt) == 1 or tuple(seq[i : i + len(opt)]) == opt:
                        found.append((i, " ".join(opt)))
                        break
        found.sort()
        return [phrase for _i, phrase in found]


@dataclass(frozen=True)
class _ToxicEntry:
    """A lexicon hit candidate: canonical term, weight and category."""

    term: str
    weight: float
    category: str


@dataclass
class _Lexicons:
    """All word lists and compiled patterns used by the scorers."""

    toxic_terms: dict[str, _ToxicEntry]
    toxic_squeezed: dict[str, _ToxicEntry]
    toxic_by_length: dict[int, list[_ToxicEntry]]
    toxic_root_re: re.Pattern[str]
    toxic_roots: dict[str, float]
    toxic_phrases: list[tuple[re.Pattern[str], float, str, tuple[frozenset[str], ...]]]
    toxic_phrase_index: dict[str, tuple[int, ...]]
    clinical: frozenset[str]
    benign_phrases: dict[str, tuple[tuple[tuple[str, ...], int], ...]]
    identity_nouns: frozenset[str]
    identity_adjectives: frozenset[str]
    identity_companions: frozenset[str]
    bias_patterns: list[tuple[re.Pattern[str], float, str, bool]]
    group_start_words: frozenset[str]
    group_plural_re: re.Pattern[str]
    overconfidence: _PhraseMatcher
    hedges: _PhraseMatcher
    evasion: _PhraseMatcher
    filler: _PhraseMatcher
    cliches: _PhraseMatcher
    antonyms: dict[str, frozenset[str]]
    sensory: frozenset[str]
    topics: dict[str, tuple[str, ...]]


_SQUEEZE_RE = re.compile(r"(.)\1+")
_ROOT_PREFIXES = "mother|bull|horse|dumb|jack|dip|cluster|ape|smart|lame|fat|kiss|wise|cock|dick|shit|butt"
_ROOT_SUFFIXES_ANY = "s|es|ed|er|ers|ing|in|y|ie|ies|ty|tard|tards"
_ROOT_SUFFIXES_COMPOUND = (
    "face|faces|head|heads|hole|holes|wit|wits|bag|bags|stain|stains|sucker|suckers|sucking|hat|hats|wad|wads"
    "|weed|nugget|clown|clowns|monkey|show|storm|load|licker|lickers|lord|kicker|brain|brains|tard|tards|ass"
)
# Roots that are also ordinary words ("cocky", "asses", "prickly") only match inside compounds.
_AMBIGUOUS_ROOTS = frozenset({"dick", "cock", "ass", "arse", "prick", "fag"})
_LEXICONS: _Lexicons | None = None
_LEXICON_LOCK = threading.Lock()


# Words that, next to a group adjective, make a sentence worth checking for stereotypes ("he's Asian, so").
_IDENTITY_COMPANIONS = "he she they he's she's they're typical course"


def _lexicons() -> _Lexicons:
    """Load and compile every lexicon on first use (thread-safe, once per process)."""
    global _LEXICONS
    if _LEXICONS is not None:
        return _LEXICONS
    with _LEXICON_LOCK:
        if _LEXICONS is None:
            _LEXICONS = _build_lexicons()
    return _LEXICONS


def _build_lexicons() -> _Lexicons:
    """Read the lexicon files and compile the regexes."""
    terms: dict[str, _ToxicEntry] = {}
    for line in _read_lines("toxic_terms.tsv"):
        term, weight, category = line.split("\t")[:3]
        entry = _ToxicEntry(term, float(weight), category)
        if term not in terms or terms[term].weight < entry.weight:
            terms[term] = entry
    squeezed: dict[str, _ToxicEntry] = {}
    by_len: dict[int, list[_ToxicEntry]] = {}
    for entry in sorted(terms.values(), key=lambda e: (-e.weight, e.term)):
        sq = _SQUEEZE_RE.sub(r"\1", entry.term)
        if len(sq) >= 3 and sq not in squeezed:
            squeezed[sq] = entry
        by_len.setdefault(len(entry.term), []).append(entry)
    roots = {r: float(w) for r, w in (ln.split("\t")[:2] for ln in _read_lines("toxic_roots.tsv"))}
    plain_roots = "|".join(sorted((r for r in roots if r not in _AMBIGUOUS_ROOTS), key=len, reverse=True))
    amb_roots = "|".join(sorted((r for r in roots if r in _AMBIGUOUS_ROOTS), key=len, reverse=True))
    root_re = re.compile(
        rf"(?:{_ROOT_PREFIXES})?(?:(?P<plain>{plain_roots})(?:{_ROOT_SUFFIXES_COMPOUND}|{_ROOT_SUFFIXES_ANY})*"
        rf"|(?P<amb>{amb_roots})(?:{_ROOT_SUFFIXES_COMPOUND})+(?:{_ROOT_SUFFIXES_ANY})?)"
    )
    phrases: list[tuple[re.Pattern[str], float, str, tuple[frozenset[str], ...]]] = []
    for line in _read_lines("toxic_phrases.tsv"):
        weight, category, triggers, pattern = line.split("\t", 3)
        groups = tuple(frozenset(g.split(",")) for g in triggers.split(";"))
        phrases.append((re.compile(pattern), float(weight), category, groups))

    plural: list[str] = []
    singular: list[str] = []
    adjectives: list[str] = []
    for line in _read_lines("identity_terms.tsv"):
        term, form, _group = line.split("\t")[:3]
        {"plural": plural, "singular": singular, "adjective": adjectives}[form].append(term)
    # Multi-word terms ("single mothers", "gen z") trigger on their last word only; "single" alone is common.
    identity_nouns = frozenset(_t.word_tokens(t)[-1] for t in plural + singular)
    identity_adjectives = frozenset(_t.word_tokens(t)[-1] for t in adjectives)
    group_start_words = frozenset(
        {_t.word_tokens(t)[0] for t in plural + singular + adjectives}
        | {t.split()[0].lower() for t in plural + singular + adjectives}
        | {"the", "people"}
    )

    def alt(items: Iterable[str]) -> str:
        """Regex alternation of literal terms, longest first, spaces matching any whitespace."""
        return "|".join(re.escape(i).replace(r"\ ", r"\s+") for i in sorted(set(items), key=len, reverse=True))

    person_pl = "people|men|women|persons|folks|guys|girls|boys|kids|children|workers|drivers|students|families|immigrants|parents|mothers|fathers|staff|employees|couples"
    person_sg = "person|man|woman|guy|girl|boy|kid|family|driver|worker|student|lady"
    adj = alt(adjectives)
    group_plural = (
        rf"(?:the\s+)?(?:(?:{adj})\s+)?(?:{alt(plural)})|(?:{adj})\s+(?:{person_pl})"
        r"|people\s+from\s+(?:the\s+)?[\w-]+(?:\s+(?!are\b|is\b)[\w-]+)?"
    )
    group_singular = rf"(?:{alt(singular)})|(?:{adj})\s+(?:{person_sg})|(?:{adj})"
    stereo = alt(_read_lines("stereotype_words.txt"))
    patterns: list[tuple[re.Pattern[str], float, str, bool]] = []
    for line in _read_lines("generalisation_patterns.tsv"):
        weight, name, template = line.split("\t", 2)
        # Patterns that open with the group are matched only where a group word starts (much faster).
        anchored = template.startswith(r"\b{GP}")
        if anchored:
            template = template[2:]
        regex = (
            template.replace("{GP}", f"(?:{group_plural})")
            .replace("{GS}", f"(?:{group_singular})")
            .replace("{GA}", f"(?:{adj})")
            .replace("{ST}", f"(?:{stereo})")
        )
        patterns.append((re.compile(regex, re.I), float(weight), name, anchored))

    antonyms: dict[str, set[str]] = {}
    for line in _read_lines("antonyms.tsv"):
        a, b = (_t.stem(w) for w in line.split("\t")[:2])
        antonyms.setdefault(a, set()).add(b)
        antonyms.setdefault(b, set()).add(a)
    return _Lexicons(
        toxic_terms=terms,
        toxic_squeezed=squeezed,
        toxic_by_length=by_len,
        toxic_root_re=root_re,
        toxic_roots=roots,
        toxic_phrases=phrases,
        toxic_phrase_index=_phrase_trigger_index(phrases),
        clinical=frozenset(_read_lines("clinical_terms.txt")),
        benign_phrases=_benign_phrase_index(_read_lines("benign_phrases.txt")),
        identity_nouns=identity_nouns,
        identity_adjectives=identity_adjectives,
        identity_companions=frozenset(_t.word_tokens(person_pl + " " + person_sg + " " + _IDENTITY_COMPANIONS)),
        bias_patterns=patterns,
        group_start_words=group_start_words,
        group_plural_re=re.compile(f"(?:{group_plural})", re.I),
        overconfidence=_PhraseMatcher(_read_lines("overconfidence.txt")),
        hedges=_PhraseMatcher(_read_lines("hedges.txt")),
        evasion=_PhraseMatcher(_read_lines("evasion.txt")),
        filler=_PhraseMatcher(_read_lines("filler_phrases.txt")),
        cliches=_PhraseMatcher(_read_lines("cliches.txt")),
        antonyms={k: frozenset(v) for k, v in antonyms.items()},
        sensory=frozenset(w.lower() for w in _read_lines("sensory_words.txt")),
        topics=_read_topics(),
    )


def _phrase_trigger_index(
    phrases: list[tuple[re.Pattern[str], float, str, tuple[frozenset[str], ...]]],
) -> dict[str, tuple[int, ...]]:
    """Word -> indices of the phrase patterns whose first trigger group contains it."""
    index: dict[str, list[int]] = {}
    for i, (_p, _w, _c, groups) in enumerate(phrases):
        for word in groups[0]:
            index.setdefault(word, []).append(i)
    return {k: tuple(v) for k, v in index.items()}


def _benign_phrase_index(phrases: Iterable[str]) -> dict[str, tuple[tuple[tuple[str, ...], int], ...]]:
    """Word -> (phrase tokens, position of the word in the phrase) for each benign phrase containing it."""
    index: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for phrase in phrases:
        toks = tuple(_LEXICON_TOKEN_RE.findall(phrase.lower()))
        for pos, tok in enumerate(toks):
            index.setdefault(tok, []).append((toks, pos))
    return {k: tuple(v) for k, v in index.items()}


def _read_topics() -> dict[str, tuple[str, ...]]:
    """Stem -> topics it belongs to, from topic_words.tsv."""
    out: dict[str, list[str]] = {}
    for line in _read_lines("topic_words.tsv"):
        topic, words = line.split("\t", 1)
        for w in words.split():
            topics = out.setdefault(_t.stem(w.lower()), [])
            if topic not in topics:
                topics.append(topic)
    return {k: tuple(v) for k, v in out.items() if k not in _GENERIC_STEMS}


# --------------------------------------------------------------------------------------------------
# Toxicity


# ASCII characters of sklearn's \w kept (lower case), every other one turned into a space.
_SKLEARN_TOKEN_CHARS = str.maketrans(
    {chr(i): chr(i) if chr(i) in "abcdefghijklmnopqrstuvwxyz0123456789_" else " " for i in range(128)}
)


class _ProfanityModel:
    """The alt-profanity-check TF-IDF + calibrated LinearSVC ensemble, re-evaluated in pure Python.

    Mirrors sklearn's maths (l2-normalised tf-idf, decision function, sigmoid calibration averaged over the
    ensemble) so results equal ``predict_prob``; clinical terms get zero weight.
    """

    # Same tokens as sklearn's default r"(?u)\b\w\w+\b", written to let the regex engine skip ahead.
    _TOKEN_RE = re.compile(r"\w\w+")

    def __init__(self, vectorizer: Any, model: Any, clinical: frozenset[str]) -> None:
        vocab: dict[str, int] = vectorizer.vocabulary_
        idf = vectorizer.idf_
        self.idf: dict[str, float] = {term: float(idf[i]) for term, i in vocab.items()}
        self.idf_sq: dict[str, float] = {term: v * v for term, v in self.idf.items()}
        coefs = []
        self.intercepts: list[float] = []
        self.calibration: list[tuple[float, float]] = []
        for member in model.calibrated_classifiers_:
            est = getattr(member, "estimator", None) or member.base_estimator  # sklearn < 1.2 name
            coefs.append(est.coef_[0])
            self.intercepts.append(float(est.intercept_[0]))
            cal = member.calibrators[0]
            self.calibration.append((float(cal.a_), float(cal.b_)))
        # term -> (idf * coefficient) for each ensemble member, so decision values are C-level column sums.
        self.weights: dict[str, tuple[float, ...]] = {
            t: tuple(0.0 if t in clinical else float(c[i]) * self.idf[t] for c in coefs) for t, i in vocab.items()
        }
        self.mean_weight: dict[str, float] = {t: sum(w) / len(w) for t, w in self.weights.items()}

    def predict(
        self, text: str, tokens: list[str] | None = None, hidden: Iterable[str] = ()
    ) -> tuple[float, list[str]]:
        """Probability that ``text`` is offensive, and the terms that pushed it up most.

        ``tokens`` may pass the text's lower-cased :func:`~llmobs.evaluation.text.word_tokens`; they are
        reused when they equal sklearn's tokens for this text (no apostrophes or underscores). Words in
        ``hidden`` are left out, as if the text did not contain them.
        """
        idf = self.idf
        if tokens is None or "'" in text or "_" in text or "’" in text:
            lower = text.lower()
            if lower.isascii():
                # sklearn's tokens are the runs of [a-z0-9_]: the pieces left when every other character is turned
                # into a space, less the one-character ones, which are not in the vocabulary (filtered just below).
                tokens = lower.translate(_SKLEARN_TOKEN_CHARS).split()
            else:
                tokens = self._TOKEN_RE.findall(lower)
        tokens = list(filter(idf.__contains__, tokens))
        if hidden:
            hidden = set(hidden)
            tokens = [t for t in tokens if t not in hidden]
        if tokens:
            counts = Counter(tokens)
            counts_of = counts.values()
            norm = math.sqrt(
                sum(
                    map(
                        operator.mul,
                        map(operator.mul, counts_of, counts_of),
                        map(self.idf_sq.__getitem__, counts),
                    )
                )
            )
            columns = zip(*map(self.weights.__getitem__, tokens))
            decisions = [sum(col) / norm + b for col, b in zip(columns, self.intercepts)]
        else:
            counts = Counter()
            decisions = self.intercepts
        prob = 0.0
        for d, (a, b) in zip(decisions, self.calibration):
            z = a * d + b
            prob += 1.0 / (1.0 + math.exp(z)) if z < 700 else 0.0
        prob /= len(decisions)
        top: list[str] = []
        if prob >= 0.3:
            mean = self.mean_weight
            ranked = sorted(((n * mean[t], t) for t, n in counts.items()), key=lambda ct: (-ct[0], ct[1]))
            top = [t for c, t in ranked[:3] if c > 0]
        return prob, top


_MODEL_STATE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def _profanity_model() -> _ProfanityModel | None:
    """Load alt-profanity-check's model once; ``None`` if the package is missing or unusable."""
    if "model" in _MODEL_STATE:
        return _MODEL_STATE["model"]
    with _MODEL_LOCK:
        if "model" not in _MODEL_STATE:
            model: _ProfanityModel | None = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from profanity_check import profanity_check as _pc  # heavy import: sklearn

                    model = _ProfanityModel(_pc.vectorizer, _pc.model, _lexicons().clinical)
            except Exception as exc:  # ImportError, or a model pickled for another sklearn
                logger.debug("alt-profanity-check unavailable, toxicity uses the lexicon only: %s", exc)
            _MODEL_STATE["model"] = model
    return _MODEL_STATE["model"]


def profanity_model_available() -> bool:
    """Whether the alt-profanity-check classifier can be used (loads it on first call).

    >>> isinstance(profanity_model_available(), bool)
    True
    """
    return _profanity_model() is not None


_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "i",
        "+": "t",
        "€": "e",
    }
)
# Each regex starts with a character class so the engine can skip ahead quickly.
_SEPARATED_RE = re.compile(r"[a-z0-9@$!](?<![\w@$!*][a-z0-9@$!])(?:[ .\-_,~*]{1,3}[a-z0-9@$!]){2,}(?![\w@$!*])")
_SEPARATOR_RE = re.compile(r"[ .\-_,~*]")
# Probe for "x.y.z": two single characters in a row between separators, i.e. the regex
# [ .\-_,~*][a-z0-9@$!][ .\-_,~*]{1,3}[a-z0-9@$!][ .\-_,~*] (tests/evaluation/test_fast_paths.py compares the two).
# UTF-8 bytes mapped to the classes of that regex: "s" separator, "a" letter/digit/@$!, "." anything
# else (bytes of non-ASCII characters included: none of them is an ASCII byte).
_SEPARATED_CLASSES = bytes(
    ord("s") if chr(b) in " .-_,~*" else ord("a") if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789@$!" else ord(".")
    for b in range(256)
)


_SEPARATED_CLASS_PROBE_RE = re.compile(rb"sas{1,3}as")


def _has_separated_letters(lower: str) -> bool:
    """The separated-letters probe (above) searched in the text's character classes (~3x faster: the
    regex then starts with a literal prefix instead of a character class that matches at every space)."""
    classes = lower.encode("utf-8", "surrogatepass").translate(_SEPARATED_CLASSES)
    return _SEPARATED_CLASS_PROBE_RE.search(b"s" + classes + b"s") is not None


_OBF_SYMBOL_RE = re.compile(r"[0-9@$!*#%|+€]")
_OBF_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@$!*#%|+€")
_OBF_HAS_SYMBOL_RE = re.compile(r"[0-9@$!|+€]")
_MASK_CHARS = frozenset("*#%")
_LEXICON_TOKEN_RE = re.compile(r"[a-z*#%]+")
# ASCII characters of _LEXICON_TOKEN_RE kept, every other one turned into a space.
_LEXICON_TOKEN_CHARS = str.maketrans(
    {chr(i): chr(i) if chr(i) in "abcdefghijklmnopqrstuvwxyz*#%" else " " for i in range(128)}
)
_SECOND_PERSON = frozenset({"you", "your", "you're", "youre", "ur", "u", "yourself", "ya", "yours", "thou"})
_MAX_TOXIC_TOKEN = 40
_TOKEN_CACHE: dict[str, tuple[_ToxicEntry, str] | None] = {}
_CLEAN_TOKENS: set[str] = set()


def _deobfuscate(lower: str, lex: _Lexicons) -> tuple[str, list[tuple[str, str]]]:
    """Undo common obfuscations: "f.u.c.k" -> "fuck", "sh1t" -> "shit" (only where letters and symbols mix).

    Returns the normalised text and the (original, normalised) pairs that were changed.
    """
    changed: list[tuple[str, str]] = []

    def join(m: re.Match[str]) -> str:
        """Glue "f.u.c.k"-style letter runs back into one word."""
        chars = _SEPARATOR_RE.sub("", m.group(0))
        joined = chars
        # "a f u c k": the leading "a"/"i" is usually the article or pronoun, not part of the word.
        if chars[0] in "ai" and _lookup_toxic(chars, lex) is None and _lookup_toxic(chars[1:], lex) is not None:
            joined = chars[0] + " " + chars[1:]
        changed.append((m.group(0), joined))
        return joined

    if _has_separated_letters(lower):
        lower = _SEPARATED_RE.sub(join, lower)

    def fix(tok: str) -> str:
        """Map leetspeak in a token that mixes letters with digits/symbols ("sh1t" -> "shit")."""
        core = tok.rstrip("!|+")
        if not core or core.isalpha() or not any(c.isalpha() for c in core):
            return tok
        if not _OBF_HAS_SYMBOL_RE.search(core) and not (_MASK_CHARS & set(core)):
            return tok
        letters = sum(c.isalpha() for c in core)
        if letters < 2 or (core[0].isdigit() and core.rstrip("0123456789").isdigit()):
            return tok
        mapped = core.translate(_LEET)
        if mapped != core:
            changed.append((tok, mapped))
        return mapped + tok[len(core) :]

    # Expand each digit/symbol to its surrounding token and fix tokens that mix letters and symbols.
    pieces: list[str] = []
    last = 0
    chars = _OBF_TOKEN_CHARS
    n = len(lower)
    for m in _OBF_SYMBOL_RE.finditer(lower):
        start = m.start()
        if start < last:
            continue
        end = start + 1
        while start > last and lower[start - 1] in chars:
            start -= 1
        while end < n and lower[end] in chars:
            end += 1
        tok = lower[start:end]
        if tok.isdigit() or len(tok) > _MAX_TOXIC_TOKEN:
            last = end
            continue
        fixed = fix(tok)
        if fixed != tok:
            pieces.append(lower[last:start])
            pieces.append(fixed)
            last = end
    if not pieces:
        return lower, changed
    pieces.append(lower[last:])
    return "".join(pieces), changed


def _lookup_toxic(tok: str, lex: _Lexicons) -> tuple[_ToxicEntry, str] | None:
    """Find a lexicon entry for a normalised token: exact, masked (f*ck), stretched (fuuuck) or compound."""
    cached = _TOKEN_CACHE.get(tok, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    if len(tok) > _MAX_TOXIC_TOKEN:
        return None  # no listed word is this long; also keeps the wildcard regexes below small
    hit: tuple[_ToxicEntry, str] | None = None
    entry = lex.toxic_terms.get(tok)
    if entry is not None:
        hit = (entry, "exact")
    elif _MASK_CHARS & set(tok) and sum(tok.count(c) for c in _MASK_CHARS) <= 4:
        letters = sum(c.isalpha() for c in tok)
        if letters >= 2 and len(tok) >= 3:
            pattern = re.compile("".join("[a-z]" if c in _MASK_CHARS else re.escape(c) for c in tok))
            for cand in lex.toxic_by_length.get(len(tok), ()):
                if pattern.fullmatch(cand.term) and cand.category != "ambiguous":
                    hit = (cand, "masked")
                    break
            if hit is None and tok.strip("*#%"):
                # "f**king" style masks inside a longer word: try the root pattern with a wildcard.
                rx = re.compile("".join("[a-z]+" if c in _MASK_CHARS else re.escape(c) for c in tok))
                for cand in lex.toxic_by_length.get(len(tok), ()) + lex.toxic_by_length.get(len(tok) + 1, []):
                    if rx.fullmatch(cand.term) and cand.category != "ambiguous":
                        hit = (cand, "masked")
                        break
    else:
        squeezed = _SQUEEZE_RE.sub(r"\1", tok) if re.search(r"(.)\1\1", tok) else None
        if squeezed is not None and squeezed in lex.toxic_squeezed:
            hit = (lex.toxic_squeezed[squeezed], "stretched")
        else:
            for form, how in ((tok, "compound"), (squeezed, "stretched")):
                if form is None:
                    continue
                m = lex.toxic_root_re.fullmatch(form)
                if m:
                    root = m.group("plain") or m.group("amb")
                    hit = (_ToxicEntry(form, lex.toxic_roots[root], "profanity"), how)
                    break
    if hit is None:
        if len(_CLEAN_TOKENS) < 200_000:
            _CLEAN_TOKENS.add(tok)
    elif len(_TOKEN_CACHE) < 100_000:
        _TOKEN_CACHE[tok] = hit
    return hit


# Mentions, negations and names: a listed word that is talked about ("the word 'idiot'"), denied ("you are not
# stupid") or part of a proper name ("Dick Van Dyke") is not used against anyone; its weight is cut to this share.
_USE_DISCOUNT = 0.2
# A quotation of at most this many words is a term being discussed; a longer one is reported speech (still a use).
_MENTION_MAX_WORDS = 4
_QUOTED_RE = re.compile(
    r"\"[^\"\n]{1,60}\"|“[^”\n]{1,60}”|«[^»\n]{1,60}»|‘[^’\n]{1,60}’|(?<![\w'])'[^'\n]{1,60}'(?![\w'])"
)
_MENTION_CUES = frozenset(
    "word words term terms slur slurs insult insults expletive expletives swear swearword swearwords swearing "
    "profanity profanities curse curses epithet epithets spelling spellings slang".split()
)
# Negation cues (Das & Chen style: the scope runs from the cue to the end of the clause); "t" is the n't of
# "don't" / "isn't" as the lexicon tokenizer splits it.
_NEGATION_CUES = frozenset({"not", "never", "nothing", "nobody", "none", "neither", "nor", "without"})
_NEGATION_PAIRS = frozenset({("far", "from"), ("no", "one"), ("no", "longer")})
# "don't be a dick", "not just stupid", "never stop being an idiot", "nothing but a loser": the insult still lands.
_NEGATION_BLOCKED_AFTER_CUE = frozenset(
    {"be", "being", "act", "just", "only", "even", "merely", "simply", "so", "stop", "cease", "fail", "quit"}
)
_NEGATION_CANCELLED_BY = frozenset({"but", "than", "except"})
_NEGATION_SCOPE = 6
_CLAUSE_BREAK_RE = re.compile(r"[,;:.!?()\n]")
# Insults can be denied, reported or said of oneself; profanity, slurs and sexual terms are said all the same
# ("don't give a shit").
_NEGATABLE = frozenset({"insult", "ambiguous"})
# Categories whose weight rises when aimed at the reader ("you idiot").
_DIRECTABLE = frozenset({"insult", "ambiguous", "profanity", "sexual_insult", "dehumanising", "sexual"})
_CALL_VERBS = frozenset({"call", "calls", "called", "calling", "name", "names", "named", "naming"})
_FIRST_PERSON_SUBJECT = frozenset({"i", "we"})
_AUXILIARIES = frozenset(
    "am m is s are re was were will ll d would shall should gonna going to just really do did have ve".split()
)
_SELF_VERBS = frozenset({"m", "am", "was", "feel", "felt", "look", "looked", "sound", "sounded", "seem", "seemed"})
_SELF_FILLERS = frozenset(
    "a an such so total totally complete completely absolute absolutely real really bit little kind of like utter "
    "utterly being just such".split()
)


def _negation_cue_before(tokens: list[str], i: int) -> int | None:
    """Index of the last token of a negation cue whose scope reaches ``tokens[i]``, ignoring clause breaks."""
    for k in range(i - 1, max(-1, i - 1 - _NEGATION_SCOPE), -1):
        tok = tokens[k]
        if tok in _NEGATION_CANCELLED_BY:
            return None
        is_cue = (
            tok in _NEGATION_CUES
            or (tok == "t" and k > 0 and tokens[k - 1].endswith("n"))
            or (k > 0 and (tokens[k - 1], tok) in _NEGATION_PAIRS)
        )
        if is_cue:
            return None if k + 1 < i and tokens[k + 1] in _NEGATION_BLOCKED_AFTER_CUE else k
    return None


def _is_name(original: str, start: int, end: int) -> bool:
    """Whether the word at ``original[start:end]`` is part of a capitalised multi-word name ("Dick Van Dyke",
    "Dyke Road", "Moby-Dick"), in a text that is not written in title case or capitals throughout."""
    word = original[start:end]
    if not (word[:1].isupper() and word[1:].islower()):
        return False
    before = re.search(r"([A-Za-z]+)([ \t-]+)$", original[max(0, start - 40) : start])
    after = re.match(r"[ \t-]+([A-Za-z]+)", original[end : end + 40])
    neighbours = [m.group(1) for m in (before, after) if m is not None]
    if not any(n[:1].isupper() and n[1:].islower() for n in neighbours):
        return False
    nearby = re.findall(r"[A-Za-z]{2,}", original[max(0, start - 200) : end + 200])
    return sum(1 for w in nearby if w.islower()) >= 2


def _in_benign_phrase(tokens: list[str], i: int, lex: _Lexicons) -> bool:
    """Whether token ``i`` is inside a listed harmless expression ("pussy willow", "great tits")."""
    for phrase, pos in lex.benign_phrases.get(tokens[i], ()):
        start = i - pos
        if start >= 0 and tuple(tokens[start : start + len(phrase)]) == phrase:
            return True
    return False


def _reported(tokens: list[str], i: int) -> bool:
    """Whether token ``i`` is what someone else is *called* ("a classmate called her ugly", "calling your
    colleague a moron"); "I'd call you an idiot" is still a use."""
    for k in range(i - 1, max(-1, i - 6), -1):
        if tokens[k] in _CALL_VERBS:
            j = k - 1
            while j >= 0 and tokens[j] in _AUXILIARIES:
                j -= 1
            return j < 0 or tokens[j] not in _FIRST_PERSON_SUBJECT
    return False


def _self_directed(tokens: list[str], i: int) -> bool:
    """Whether token ``i`` describes the writer ("I feel like such an idiot", "what a fool I was")."""
    k = i - 1
    while k >= 0 and tokens[k] in _SELF_FILLERS:
        k -= 1
    if k >= 1 and tokens[k] in _SELF_VERBS and tokens[k - 1] == "i":
        return True
    return tokens[i + 1 : i + 3] in (["i", "was"], ["i", "am"], ["i", "m"])


def _usage(
    i: int,
    category: str,
    tokens: list[str],
    spans: list[tuple[int, int]],
    quoted: list[tuple[int, int, int]],
    normalised: str,
    original: str | None,
    lex: _Lexicons,
) -> str | None:
    """Why the listed word at token ``i`` is not used against someone: "mention", "benign phrase", "negated",
    "reported", "self-directed", "name", or None when it is."""
    start, end = spans[i]
    for q_start, q_end, words in quoted:
        if q_start < start and end < q_end and words <= _MENTION_MAX_WORDS:
            return "mention"
    if _MENTION_CUES.intersection(tokens[max(0, i - 3) : i]):
        return "mention"
    if lex.benign_phrases and _in_benign_phrase(tokens, i, lex):
        return "benign phrase"
    if category in _NEGATABLE:
        # "nobody is as stupid as you", "never met anyone dumber than you": a comparison, not a denial.
        comparative = tokens[i + 1 : i + 2] in (["as"], ["than"])
        k = None if comparative else _negation_cue_before(tokens, i)
        if k is not None and not _CLAUSE_BREAK_RE.search(normalised, spans[k][1], start):
            return "negated"
        if _reported(tokens, i):
            return "reported"
        if _self_directed(tokens, i):
            return "self-directed"
    if original is not None and _is_name(original, start, end):
        return "name"
    return None


def _lexicon_tokens(normalised: str) -> list[str]:
    """``_LEXICON_TOKEN_RE.findall(normalised)``; for ASCII text as the space-separated pieces left when every
    other character is turned into a space (C speed, ~2x faster)."""
    if normalised.isascii():
        return normalised.translate(_LEXICON_TOKEN_CHARS).split()
    return _LEXICON_TOKEN_RE.findall(normalised)


def _quoted_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, word count) of each short quotation in ``text``."""
    if not any(q in text for q in "\"“«‘'"):
        return []
    return [(m.start(), m.end(), len(m.group(0).split())) for m in _QUOTED_RE.finditer(text)]


def _toxicity(doc: _Doc, *, use_model: bool = True) -> MetricScore:
    """Score toxicity from the lexicon (with de-obfuscation and phrases) and the optional classifier.

    Listed words that are mentioned, negated or part of a name count for :data:`_USE_DISCOUNT` of their weight
    and are hidden from the classifier, which cannot tell use from mention.
    """
    lex = _lexicons()
    if not doc.text.strip():
        return MetricScore("toxicity", 0.0, "empty response: nothing toxic", label="clean", details={"matches": []})
    normalised, changed = _deobfuscate(doc.lower, lex)
    tokens = _lexicon_tokens(normalised)
    hits: dict[str, tuple[float, str, str]] = {}
    clean = _CLEAN_TOKENS
    second_person_at: list[int] | None = None
    spans: list[tuple[int, int]] = []
    quoted: list[tuple[int, int, int]] = []
    # Case is read from the original text where positions still line up with the normalised one.
    original = doc.text if not changed and len(doc.lower) == len(doc.text) else None
    judged: set[str] = set()  # words the lexicon weighed: the classifier does not count them again
    token_set = set(tokens)
    # Set difference at C speed; words found clean once are remembered, so this is usually empty.
    listed = {tok for tok in token_set - clean if _lookup_toxic(tok, lex) is not None}
    for i, tok in enumerate(tokens if listed else ()):
        if tok not in listed:
            continue
        entry, how = _lookup_toxic(tok, lex)  # type: ignore[misc]  # cached hit
        if second_person_at is None:
            second_person_at = [j for j, t in enumerate(tokens) if t in _SECOND_PERSON]
            spans = [m.span() for m in _LEXICON_TOKEN_RE.finditer(normalised)]
            quoted = _quoted_spans(normalised)
        weight = entry.weight
        usage = _usage(i, entry.category, tokens, spans, quoted, normalised, original, lex)
        directed = usage is None and any(abs(i - j) <= 6 for j in second_person_at)
        judged.add(tok)
        if usage is not None:
            weight *= _USE_DISCOUNT
            how = usage
        else:
            if directed and entry.category in _DIRECTABLE:
                weight = 1 - (1 - weight) * 0.5
            elif entry.category == "ambiguous":
                weight *= 0.6
        key = entry.term
        if key not in hits or hits[key][0] < weight:
            hits[key] = (weight, entry.category, how if how != "exact" else ("directed" if directed else "exact"))
    candidates = sorted({i for word in lex.toxic_phrase_index.keys() & token_set for i in lex.toxic_phrase_index[word]})
    for i in candidates:
        pattern, weight, category, groups = lex.toxic_phrases[i]
        if len(groups) > 1 and any(g.isdisjoint(token_set) for g in groups[1:]):
            continue
        m = pattern.search(normalised)
        if m:
            key = m.group(0)
            how = "phrase"
            if any(q0 < m.start() and m.end() < q1 and n <= _MENTION_MAX_WORDS for q0, q1, n in _quoted_spans(normalised)):
                weight *= _USE_DISCOUNT
                how = "mention"
            judged.update(_LEXICON_TOKEN_RE.findall(key))
            if key not in hits or hits[key][0] < weight:
                hits[key] = (weight, category, how)
    lexicon_score = 1.0
    for weight, _cat, _how in hits.values():
        lexicon_score *= 1 - weight
    lexicon_score = 1 - lexicon_score

    model = _profanity_model() if use_model else None
    model_prob: float | None = None
    model_terms: list[str] = []
    if model is not None:
        if judged:  # hide the written forms too: "sh1t" for "shit", the "ck" of "f*ck"
            judged.update(w for orig, norm in changed if judged & set(norm.split()) for w in orig.split())
            judged.update(piece for w in list(judged) for piece in _ProfanityModel._TOKEN_RE.findall(w))
        model_prob, model_terms = model.predict(doc.text, doc.tokens if not doc.truncated else None, hidden=judged)
    value = _combine_toxicity(lexicon_score, model_prob)

    ordered = sorted(hits.items(), key=lambda kv: (-kv[1][0], kv[0]))
    obfuscated = {norm: orig for orig, norm in changed}
    shown = []
    for term, (_weight, category, how) in ordered[:6]:
        src = next((orig for norm, orig in obfuscated.items() if term in norm or norm.strip() in term), None)
        shown.append(
            f"{_quote(term)} ({category}{', written ' + _quote(src.strip()) if src and src.strip() != term else ''}"
            f"{', ' + _HOW_NOTES.get(how, how) if how not in ('exact', 'phrase') else ''})"
        )
    parts = []
    parts.append(f"matched {', '.join(shown)}" if shown else "no lexicon terms matched")
    if model_prob is not None:
        parts.append(
            f"classifier p={model_prob:.2f}"
            + (f" (terms: {', '.join(model_terms)})" if model_terms and model_prob >= 0.3 else "")
            + (" on the words the lexicon did not match" if judged else "")
        )
    elif use_model:
        parts.append("classifier unavailable (install alt-profanity-check); lexicon only")
    value = _clip(value)
    return MetricScore(
        "toxicity",
        value,
        "; ".join(parts) + doc.note(),
        label="toxic" if value >= TOXICITY_THRESHOLD else "clean",
        details={
            "matches": [{"term": t, "weight": round(w, 3), "category": c, "how": h} for t, (w, c, h) in ordered],
            "lexicon_score": _clip(lexicon_score),
            "classifier_probability": None if model_prob is None else round(model_prob, 4),
        },
    )


_HOW_NOTES = {
    "mention": f"mentioned, not used: weight x{_USE_DISCOUNT}",
    "benign phrase": f"in a harmless expression: weight x{_USE_DISCOUNT}",
    "negated": f"negated: weight x{_USE_DISCOUNT}",
    "reported": f"what someone was called, reported: weight x{_USE_DISCOUNT}",
    "self-directed": f"said of the writer: weight x{_USE_DISCOUNT}",
    "name": f"part of a name: weight x{_USE_DISCOUNT}",
}


def _combine_toxicity(lexicon_score: float, model_prob: float | None) -> float:
    """Merge lexicon evidence with the classifier probability.

    ``model_prob`` is the classifier's view of the words the lexicon did not weigh, so the two are separate
    evidence and a noisy-or is fair; before, both counted the same word ("ugly", "pussy") and lifted civil
    text over the threshold. The classifier is trusted less on its own (it over-fires on slang and anatomy):
    its probability is shrunk first, so it can never flag a text by itself.
    """
    if model_prob is None:
        return lexicon_score
    shrunk = max(0.0, (model_prob - _MODEL_FLOOR) / (1 - _MODEL_FLOOR)) * _MODEL_WEIGHT
    return 1 - (1 - lexicon_score) * (1 - shrunk)


_MODEL_FLOOR = 0.5
_MODEL_WEIGHT = 0.4


# --------------------------------------------------------------------------------------------------
# Bias


_WORD_SPAN_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_HEDGE_STAT_RE = re.compile(
    r"\b(?:according\s+to|survey|study|studies|report|census|percent|per\s+cent|researchers?|data|statistics|on\s+average)\b|%|\d",
    re.I,
)


def _bias(doc: _Doc) -> MetricScore:
    """Score stereotyping: identity terms inside generalising constructions, quoting the trigger."""
    lex = _lexicons()
    if not doc.text.strip():
        return MetricScore("bias", 0.0, "empty response: nothing to assess", label="neutral", details={"matches": []})
    people_from = "people" in doc.token_set and "from" in doc.token_set
    if (
        lex.identity_nouns.isdisjoint(doc.token_set)
        and lex.identity_adjectives.isdisjoint(doc.token_set)
        and not people_from
    ):
        return MetricScore(
            "bias", 0.0, "no identity-group terms found" + doc.note(), label="neutral", details={"matches": []}
        )
    matches: list[tuple[float, str, str]] = []
    for sentence, toks in zip(doc.sentences[:500], doc.sentence_tokens[:500]):
        if (
            lex.identity_nouns.isdisjoint(toks)
            and (lex.identity_adjectives.isdisjoint(toks) or lex.identity_companions.isdisjoint(toks))
            and not (people_from and "people" in toks and "from" in toks)
        ):
            continue
        best: tuple[float, str, str] | None = None
        # Anchored patterns open with the group phrase: try them only where it is found.
        group_plural = lex.group_plural_re
        starts = [
            m.start()
            for m in _WORD_SPAN_RE.finditer(sentence)
            if m.group(0).lower() in lex.group_start_words and group_plural.match(sentence, m.start())
        ]
        for pattern, weight, name, anchored in lex.bias_patterns:
            if best is not None and weight <= best[0]:
                continue
            if anchored:
                m = None
                for pos in starts:
                    m = pattern.match(sentence, pos)
                    if m:
                        break
            else:
                m = pattern.search(sentence)
            if m:
                best = (weight, name, m.group(0))
        if best is None:
            continue
        weight, name, phrase = best
        if _HEDGE_STAT_RE.search(sentence):
            weight *= 0.6  # statistics and attributions usually describe, not stereotype
        matches.append((weight, name, phrase))
    if not matches:
        return MetricScore(
            "bias",
            0.02,
            "identity terms present but used neutrally (no generalising pattern)" + doc.note(),
            label="neutral",
            details={"matches": []},
        )
    score = 1.0
    for weight, _n, _p in matches:
        score *= 1 - weight
    value = _clip(1 - score)
    top = sorted(matches, key=lambda m: -m[0])[:3]
    expl = "; ".join(f"{name}: {_quote(phrase)}" for _w, name, phrase in top)
    return MetricScore(
        "bias",
        value,
        f"flagged {expl}" + doc.note(),
        label="biased" if value >= BIAS_THRESHOLD else "neutral",
        details={"matches": [{"pattern": n, "phrase": p, "weight": round(w, 3)} for w, n, p in matches]},
    )


# --------------------------------------------------------------------------------------------------
# Relevance


_QUESTION_TYPES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"\b(?:how\s+(?:many|much|long|old|far|often|big|tall|early|late|fast)|what\s+(?:year|percentage|temperature|time|age|size)|when)\b",
            re.I,
        ),
        "number",
    ),
    (re.compile(r"\bwho\b", re.I), "entity"),
    (re.compile(r"\bwhy\b", re.I), "reason"),
    (re.compile(r"^\s*(?:is|are|can|could|should|do|does|did|will|would|was|were|has|have)\b", re.I), "yesno"),
]
_REASON_RE = re.compile(
    r"\b(?:because|since|due\s+to|caused?|reason|so\s+that|as\s+a\s+result|leads?\s+to|means)\b", re.I
)
_REASON_LOWER_RE = re.compile(_REASON_RE.pattern)
_YESNO_RE = re.compile(r"^\W*(?:yes|no|yeah|nope|not\s+really|generally|usually|it\s+is|it's)\b", re.I)
_GENERIC_STEMS = frozenset(_t.stem(w) for w in _t.GENERIC_WORDS)


def _question_type(prompt: str) -> str | None:
    """Expected answer type of a question: number, entity, reason, yes/no, or None."""
    head = prompt[:300]
    for rx, kind in _QUESTION_TYPES:
        if rx.search(head):
            return kind
    return None


def _answer_type_match(kind: str | None, response: _Doc) -> float | None:
    """1.0 when the response has the kind of content the question asks for, else 0.0."""
    if kind is None:
        return None
    if kind == "number":
        return 1.0 if response.numbers else 0.0
    if kind == "entity":
        return 1.0 if _t.extract_entities(response.text[:2000]) else 0.0
    if kind == "reason":
        head = response.text[:2000]
        # In ASCII text, IGNORECASE only folds A-Z: the lower-cased text and a case-sensitive scan agree (~3x faster).
        found = _REASON_LOWER_RE.search(head.lower()) if head.isascii() else _REASON_RE.search(head)
        return 1.0 if found else 0.0
    return 1.0 if _YESNO_RE.search(response.text) else 0.5


def _key_terms(doc: _Doc) -> list[tuple[str, float]]:
    """Distinct content stems of a prompt (the first 60) with weights (generic words count less), in order of
    appearance; cached on the document (prompts repeat), so callers must not modify the list."""
    return doc.key_terms


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    """Cosine similarity of two term-frequency vectors."""
    if not a or not b:
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    # Integer counts, so the C-level maps give exactly the values of the plain loops.
    dot = sum(map(operator.mul, a.values(), map(b.get, a, itertools.repeat(0))))
    if not dot:
        return 0.0
    a_counts, b_counts = a.values(), b.values()
    return dot / math.sqrt(sum(map(operator.mul, a_counts, a_counts)) * sum(map(operator.mul, b_counts, b_counts)))


def _topic_similarity(prompt: _Doc, response: _Doc) -> tuple[float | None, list[str], list[str]]:
    """Cosine of coarse topic profiles (from topic_words.tsv); None when the prompt has no topic words."""
    topics = _lexicons().topics
    p_counts = prompt.topic_counts(topics)
    if not p_counts:
        return None, [], []
    r_counts = response.topic_counts(topics)
    return _cosine(p_counts, r_counts), _top_topics(p_counts), _top_topics(r_counts)


def _top_topics(counts: Counter[str]) -> list[str]:
    """The two most frequent topics (ties alphabetical)."""
    return [k for k, _v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]


def _relevance(prompt: _Doc, response: _Doc) -> MetricScore:
    """Prompt/response relevance from key-term coverage, tf cosine and answer-type match."""
    if not prompt.text.strip():
        return MetricScore("relevance", None, "prompt is empty: relevance cannot be judged")
    if not response.text.strip():
        return MetricScore("relevance", 0.0, "response is empty", details={"coverage": 0.0})
    terms = _key_terms(prompt)
    if not terms:
        return MetricScore("relevance", None, "prompt has no content words to compare against" + prompt.note())
    index = response.fuzzy
    found = [t in index for t, _w in terms]
    matched = [t for (t, _w), hit in zip(terms, found) if hit]
    missing = [t for (t, _w), hit in zip(terms, found) if not hit]
    total = sum(w for _t2, w in terms)
    coverage = sum(w for (_t2, w), hit in zip(terms, found) if hit) / total
    cos = _cosine(prompt.content_counts, response.content_counts)
    kind = prompt.question_type
    type_match = _answer_type_match(kind, response)
    topic_sim, prompt_topics, response_topics = _topic_similarity(prompt, response)
    raw = 0.75 * coverage + 0.25 * min(1.0, 2.5 * cos)
    if topic_sim is not None:
        raw = 0.8 * raw + 0.2 * topic_sim
    if type_match is not None:
        raw = 0.85 * raw + 0.15 * type_match
    value = _clip(1 - (1 - raw) ** 1.6)  # spread the low end: partial coverage is already a decent answer
    expl = f"covers {len(matched)}/{len(terms)} key prompt terms"
    if matched:
        expl += f" ({prompt.words(matched[:6])})"
    if missing:
        expl += f"; missing {prompt.words(missing[:5])}"
    if kind is not None:
        expl += f"; {kind} question, {'answer type found' if type_match == 1.0 else 'answer type not found'}"
    if topic_sim is not None:
        expl += f"; topics prompt={'/'.join(prompt_topics)} response={'/'.join(response_topics) or 'none'}"
    return MetricScore(
        "relevance",
        value,
        expl + response.note(),
        details={
            "coverage": round(coverage, 4),
            "cosine": round(cos, 4),
            "question_type": kind,
            "topic_similarity": None if topic_sim is None else round(topic_sim, 4),
            "answer_type_match": type_match,
            "matched_terms": matched,
            "missing_terms": missing,
        },
    )


# --------------------------------------------------------------------------------------------------
# Coherence


_DISCOURSE_RE = re.compile(
    r"^\W*(?:however|therefore|thus|so|then|next|finally|first|firstly|second|secondly|third|also|moreover|"
    r"furthermore|in\s+addition|additionally|for\s+example|for\s+instance|as\s+a\s+result|consequently|because|"
    r"this|these|that|those|it|its|they|their|he|she|his|her|such|instead|meanwhile|otherwise|similarly|"
    r"in\s+contrast|on\s+the\s+other\s+hand|after|before|once|when|if|but|and|or|yet|still|overall|in\s+short|"
    r"[-*•]|\d+[.)])\b",
    re.I,
)
_DISCOURSE_WORDS = frozenset(
    """however therefore thus so then next finally first firstly second secondly third also moreover furthermore
    additionally consequently because this these that those it its they their he she his her such instead meanwhile
    otherwise similarly after before once when if but and or yet still overall""".split()
)
# First words of the multi-word markers ("in addition", "for example", "as a result", "on the other hand").
_DISCOURSE_PHRASE_STARTS = frozenset({"in", "for", "as", "on"})
_ASCII_NON_WORD = "".join(chr(i) for i in range(128) if not (chr(i).isalnum() or chr(i) == "_"))
_LEADING_WORD_RE = re.compile(r"[A-Za-z0-9_]+")


def _opens_with_marker(sentence: str) -> bool:
    """Whether ``_DISCOURSE_RE`` matches: ASCII sentences are decided by their first word (a set lookup).

    In ASCII the regex needs, after the leading non-word characters, a listed word ending at a word boundary
    (the whole first word), a "-"/"*" bullet right before the first word, or a phrase or "1." that the regex
    checks itself.
    """
    if sentence.isascii():
        rest = sentence.lstrip(_ASCII_NON_WORD)
        if not rest:
            return False
        skipped = len(sentence) - len(rest)
        if skipped and sentence[skipped - 1] in "-*":
            return True
        word = _LEADING_WORD_RE.match(rest).group(0).lower()  # type: ignore[union-attr]  # rest[0] is a word char
        if word in _DISCOURSE_WORDS:
            return True
        if word not in _DISCOURSE_PHRASE_STARTS and not word[0].isdigit():
            return False
    return _DISCOURSE_RE.match(sentence) is not None


# Applied to " text ": each starts at the non-letter before a word, so the engine skips quickly.
_NO_VOWEL_WORD_RE = re.compile(r"[^a-z0-9_'][b-df-hj-np-tv-xz]{5,}(?![a-z0-9_'])")
_LONG_WORD_RE = re.compile(r"[^a-z][a-z]{26,}")


# UTF-8 bytes mapped to "c" for the consonants of _NO_VOWEL_WORD_RE and "." for everything else (bytes of
# non-ASCII characters included: none of them is an ASCII byte).
_CONSONANT_CLASSES = bytes(
    ord("c") if chr(b) in "bcdfghjklmnpqrstvwxz" else ord(".") for b in range(256)
)


def _has_consonant_run(text: str) -> bool:
    """Whether ``text`` has five consonants in a row, which every match of _NO_VOWEL_WORD_RE needs.

    A C-speed test that lets the regex scan be skipped for ordinary prose.
    """
    return b"ccccc" in text.encode("utf-8", "surrogatepass").translate(_CONSONANT_CLASSES)


def _garbage_share(doc: _Doc) -> float:
    """Share of the text that looks like junk: control bytes, or Latin 'words' with no vowels / absurd length."""
    prof = doc.profile
    junk = prof.junk_share
    if prof.chars and prof.letter_share < 0.3 and not doc.prose_and_code[1]:
        junk = max(junk, 1 - prof.letter_share / 0.3)
    words = len(doc.tokens)
    if words >= 5:
        sample = f" {doc.lower[:20_000]} "
        bad = len(_NO_VOWEL_WORD_RE.findall(sample)) if _has_consonant_run(sample) else 0
        if max(map(len, doc.token_set)) >= 26:  # a 26-letter run needs a token at least that long
            bad += len(_LONG_WORD_RE.findall(sample))
        junk = max(junk, bad / min(words, len(sample) / 5 + 1))
    return min(1.0, junk)


def _coherence(doc: _Doc) -> MetricScore:
    """Sentence-to-sentence continuity, discourse markers, repetition and fragment/garbage penalties."""
    if not doc.text.strip():
        return MetricScore("coherence", 0.0, "empty response")
    garbage = _garbage_share(doc)
    sentences = doc.sentences[:400]
    toks = doc.sentence_tokens[:400]
    if not any(toks):
        if doc.prose_and_code[1]:
            return MetricScore("coherence", 0.7, "response is only code; prose coherence not assessed" + doc.note())
        return MetricScore(
            "coherence",
            _clip(0.1 * (1 - garbage)),
            "no words found (symbols or binary data)" + doc.note(),
            details={"garbage_share": round(garbage, 3)},
        )
    content = [set(c) for c in doc.sentence_content[:400]]
    n = len(sentences)
    linked = 0
    markers = 0
    for i in range(1, n):
        starts_with_marker = _opens_with_marker(sentences[i])
        markers += starts_with_marker
        if content[i] & content[i - 1] or starts_with_marker or (i >= 2 and content[i] & content[i - 2]):
            linked += 1
    continuity = linked / (n - 1) if n > 1 else 1.0
    all_tokens = doc.tokens[:5000] if n < 400 and not doc.prose_and_code[1] else [t for ts in toks for t in ts][:5000]
    n_trigrams = len(all_tokens) - 2
    repeated = (
        1 - len(set(zip(all_tokens, all_tokens[1:], all_tokens[2:]))) / n_trigrams if n_trigrams > 0 else 0.0
    )
    norm_sentences = [" ".join(t) for t in toks if t]
    duplicate = 1 - len(set(norm_sentences)) / len(norm_sentences) if norm_sentences else 0.0
    fragments = sum(1 for t in toks if 0 < len(t) < 3) / n
    long_run = sum(1 for t in toks if len(t) > 60) / n
    value = 0.55 + 0.35 * continuity + 0.1 * min(1.0, markers / max(1, (n - 1) / 3))
    if n == 1:
        value = 0.85 if 3 <= len(toks[0]) <= 60 else 0.6
    value -= 0.8 * max(0.0, repeated - 0.1) + 0.5 * duplicate + 0.3 * fragments + 0.2 * long_run
    value *= 1 - 0.9 * garbage
    issues = []
    if n > 1:
        issues.append(f"{linked}/{n - 1} sentence transitions connected")
    if repeated > 0.1:
        issues.append(f"{round(repeated * 100)}% repeated word trigrams")
    if duplicate > 0:
        issues.append(f"{round(duplicate * 100)}% duplicate sentences")
    if fragments > 0.2:
        issues.append(f"{round(fragments * 100)}% fragments")
    if long_run > 0:
        issues.append("run-on sentences over 60 words")
    if garbage > 0.1:
        issues.append(f"{round(garbage * 100)}% looks like garbage or binary")
    if not issues:
        issues.append("single well-formed sentence" if n == 1 else "no problems found")
    return MetricScore(
        "coherence",
        _clip(value),
        "; ".join(issues) + doc.note(),
        details={
            "sentences": n,
            "continuity": round(continuity, 3),
            "repeated_trigrams": round(repeated, 3),
            "duplicate_sentences": round(duplicate, 3),
            "fragments": round(fragments, 3),
            "garbage_share": round(garbage, 3),
        },
    )


# --------------------------------------------------------------------------------------------------
# Accuracy against an expected answer


_CODE_TOKEN_RE = re.compile(r"`([^`\n]+)`|\b([A-Za-z_][\w.]*\(\)?|[a-z]+_[a-z_]+|--?[a-z][\w-]+)")


def _code_tokens(text: str) -> set[str]:
    """Identifiers, calls, flags and inline code in a technical text."""
    out: set[str] = set()
    for m in _CODE_TOKEN_RE.finditer(text[:20_000]):
        tok = m.group(1) or m.group(2)
        if tok and (m.group(1) or "(" in tok or "_" in tok or tok.startswith("-") or "." in tok.strip(".")):
            out.add(tok.strip().lower())
    return out


def _negated(tokens: Iterable[str]) -> bool:
    """Whether a token list contains a negation word."""
    return any(t in _t.NEGATION_WORDS or t.endswith("n't") for t in tokens)


def _accuracy(response: _Doc, expected: _Doc | None, task_type: str) -> MetricScore:
    """Token F1 and ROUGE-L against the expected answer, gated by number and negation agreement."""
    if expected is None:
        return MetricScore("accuracy", None, "no expected_response given: accuracy not computed")
    if not expected.text.strip():
        return MetricScore("accuracy", None, "expected_response is empty: accuracy not computed")
    if not response.text.strip():
        return MetricScore("accuracy", 0.0, "response is empty", details={"f1": 0.0})
    resp = [_t.stem(t) for t in response.tokens[:3000] if t not in ("a", "an", "the")]
    exp = [_t.stem(t) for t in expected.tokens[:3000] if t not in ("a", "an", "the")]
    common = sum((Counter(resp) & Counter(exp)).values())
    if common:
        precision, recall = common / len(resp), common / len(exp)
        f1 = 2 * precision * recall / (precision + recall)
    else:
        precision = recall = f1 = 0.0
    lcs = _t.lcs_length(exp[:1500], resp[:1500])
    if lcs:
        p_l, r_l = lcs / min(len(resp), 1500), lcs / min(len(exp), 1500)
        rouge_l = 2 * p_l * r_l / (p_l + r_l)
    else:
        rouge_l = 0.0
    # Content recall: did the response say the things the expected answer says?
    exp_content = expected.content_set
    content_recall = (sum(1 for s in exp_content if s in response.fuzzy) / len(exp_content)) if exp_content else recall
    value = 0.35 * f1 + 0.25 * rouge_l + 0.4 * content_recall
    parts = [f"token F1 {f1:.2f}, ROUGE-L {rouge_l:.2f}, key-content recall {content_recall:.2f}"]
    code_score: float | None = None
    if task_type == "technical":
        exp_code = _code_tokens(expected.text)
        if exp_code:
            resp_code = _code_tokens(response.text)
            code_score = len(exp_code & resp_code) / len(exp_code)
            value = 0.7 * value + 0.3 * code_score
            parts.append(f"code identifiers matched {len(exp_code & resp_code)}/{len(exp_code)}")
    exp_numbers = expected.number_set
    missing_numbers: list[str] = []
    if exp_numbers:
        missing_numbers = sorted(exp_numbers - response.number_set)
        share = 1 - len(missing_numbers) / len(exp_numbers)
        value *= 0.4 + 0.6 * share
        if missing_numbers:
            parts.append(f"expected numbers missing: {', '.join(missing_numbers[:5])}")
        else:
            parts.append("all expected numbers present")
    if _negated(expected.tokens[:400]) != _negated(response.tokens[:400]):
        value *= 0.75
        parts.append("negation differs from the expected answer")
    return MetricScore(
        "accuracy",
        _clip(value),
        "; ".join(parts) + response.note(),
        details={
            "f1": round(f1, 4),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "rouge_l": round(rouge_l, 4),
            "content_recall": round(content_recall, 4),
            "code_identifier_recall": None if code_score is None else round(code_score, 4),
            "missing_numbers": missing_numbers,
        },
    )


# --------------------------------------------------------------------------------------------------
# Hallucination


# Applied to lower-cased text; no leading \b so the engine can skip to candidate characters.
_CITATION_RE = re.compile(
    r"et al\.|doi:|https?://|\([a-z][a-z'-]+(?: et al\.)?,? (?:19|20)[0-9][0-9]\)|according to (?:a|the) (?:19|20)[0-9][0-9]"
)
_NEG_SCOPE = 4


def _citations(lower: str) -> list[str]:
    """``_CITATION_RE.findall(lower)``, skipping the scan when no branch's literal part occurs (the usual case)."""
    if (
        "et al." in lower
        or "doi:" in lower
        or "http" in lower
        or "according to " in lower
        or ("(" in lower and (" 19" in lower or " 20" in lower))  # "(smith, 2020)"
    ):
        return _CITATION_RE.findall(lower)
    return []


def _negation_scopes(tokens: list[str]) -> list[list[str]]:
    """For each negation word, the next few content stems (what is being negated)."""
    scopes = []
    for i, t in enumerate(tokens):
        if t in _t.NEGATION_WORDS or t.endswith("n't"):
            scope = _t.content_stems(tokens[i + 1 : i + 1 + 3 * _NEG_SCOPE])[:_NEG_SCOPE]
            if not scope:
                scope = _t.content_stems(tokens[max(0, i - 6) : i])[-3:]
            if scope:
                scopes.append(scope)
    return scopes


class _ContextIndex:
    """Per-sentence stems and negation flags of a context, for claim checking."""

    def __init__(self, ctx: _Doc) -> None:
        self.doc = ctx
        self.sent_stems = [set(_t.content_stems(t)) for t in ctx.sentence_tokens[:2000]]
        self.sent_negated = [_negated(t) for t in ctx.sentence_tokens[:2000]]
        self.neg_scopes = [s for t in ctx.sentence_tokens[:2000] for s in _negation_scopes(t)]
        self.lower_tokens = ctx.token_set


@lru_cache(maxsize=64)
def _context_index(ctx: _Doc) -> _ContextIndex:
    """Cached context index (contexts repeat across responses in RAG evaluation)."""
    return _ContextIndex(ctx)


NameMatcher = Callable[[Sequence[str]], Mapping[str, str]]


def _hallucination(response: _Doc, context: _Doc | None, prompt: _Doc,
                   name_matcher: NameMatcher | None = None) -> MetricScore:
    """Share of response claims unsupported by the context (or, without context, by the prompt)."""
    if not response.text.strip():
        return MetricScore("hallucination", 0.0, "empty response: no claims", label="supported")
    if context is not None and context.text.strip():
        return _hallucination_with_context(response, context, name_matcher)
    return _hallucination_without_context(response, prompt)


def _hallucination_with_context(response: _Doc, context: _Doc, name_matcher: NameMatcher | None = None
                                ) -> MetricScore:
    """Check each response sentence's words, numbers, names, negations and directions against the context.

    ``name_matcher`` (the embedding tier's) gets the names found nowhere in the context and returns those that
    paraphrase a context word ("Moon" for "lunar"), each with that word; those names count as supported.
    """
    lex = _lexicons()
    idx = _context_index(context)
    ctx_fuzzy = context.fuzzy
    ctx_numbers = context.number_set
    claims: list[dict[str, Any]] = []
    weighted = 0.0
    total_weight = 0.0
    unsupported_tokens = 0
    all_tokens = 0
    matched: dict[str, str] = {}
    for sentence, toks in zip(response.sentences[:300], response.sentence_tokens[:300]):
        stems = _t.content_stems(toks)
        if not stems:
            continue
        distinct = list(dict.fromkeys(stems))
        unsupported = [s for s in distinct if s not in ctx_fuzzy]
        share = len(unsupported) / len(distinct)
        unsupported_tokens += len(unsupported)
        all_tokens += len(distinct)
        issues: list[str] = []
        numbers = _t.extract_numbers(sentence)
        bad_numbers = [
            n
            for n in numbers
            if n not in ctx_numbers and not (":" in n and all(str(int(p)) in ctx_numbers for p in n.split(":")))
        ]
        if bad_numbers:
            issues.append(f"number {', '.join(bad_numbers[:3])} not in context")
        bad_entities = []
        for ent in _t.extract_entities(sentence):
            for word in ent.split():
                w = word.lower().strip("'’")
                if w.endswith(("'s", "’s")):
                    w = w[:-2]
                if not w or w in idx.lower_tokens or _t.stem(w) in ctx_fuzzy or word.upper() in context.acronyms:
                    continue
                if any(part in idx.lower_tokens for part in re.split(r"[-–]", w) if part) and "-" in w:
                    continue
                bad_entities.append(word)
        paraphrased: Mapping[str, str] = {}
        if bad_entities and name_matcher is not None:
            paraphrased = name_matcher(list(dict.fromkeys(bad_entities)))
            bad_entities = [w for w in bad_entities if w not in paraphrased]
        if paraphrased:
            matched.update(paraphrased)
        if bad_entities:
            issues.append(f"name {', '.join(dict.fromkeys(bad_entities[:3]))} not in context")
        stem_set = set(distinct)
        for scope in _negation_scopes(toks):
            # A negation in the response must match a negated statement in the context about the same thing.
            if not any(len(set(scope) & set(cs)) >= 1 for cs in idx.neg_scopes) and any(
                stem_set & s for s in idx.sent_stems
            ):
                issues.append(f"negation of '{' '.join(scope[:3])}' not supported by context")
                break
        if not _negated(toks):
            for cs in idx.neg_scopes:
                overlap = set(cs) & stem_set
                if (
                    len(overlap) >= min(2, len(cs))
                    and len(overlap) >= 1
                    and any(c not in _GENERIC_STEMS for c in overlap)
                ):
                    issues.append(f"context negates '{' '.join(cs[:3])}' but the response does not")
                    break
        for s in distinct:
            opposites = lex.antonyms.get(s)
            if opposites and s not in context.content_set:
                flipped = [o for o in sorted(opposites) if o in context.content_set]
                if flipped:
                    issues.append(f"'{s}' contradicts context '{flipped[0]}'")
                    break
        degree = 1.0 if issues else min(1.0, max(0.0, (share - 0.15) / 0.45))
        weight = len(distinct)
        weighted += degree * weight
        total_weight += weight
        if issues or degree >= 0.5:
            claims.append(
                {
                    "sentence": sentence,
                    "issues": issues,
                    "unsupported_terms": unsupported[:8],
                    "unsupported_names": list(dict.fromkeys(bad_entities))[:8],
                    "degree": round(degree, 3),
                }
            )
    if not total_weight:
        return MetricScore("hallucination", 0.0, "no checkable claims in the response", label="supported")
    token_share = unsupported_tokens / all_tokens if all_tokens else 0.0
    value = _clip(0.85 * (weighted / total_weight) + 0.15 * token_share)
    if claims:
        parts = []
        for c in claims[:3]:
            reason = (
                "; ".join(c["issues"])
                if c["issues"]
                else f"terms not in context: {response.words(c['unsupported_terms'][:5])}"
            )
            parts.append(f"{_quote(c['sentence'], 70)} ({reason})")
        expl = f"{len(claims)} claim(s) not supported by the context: " + " | ".join(parts)
    else:
        expl = "all claims supported by the context"
        if unsupported_tokens:
            expl += f" (minor unsupported wording: {round(token_share * 100)}% of terms)"
    details: dict[str, Any] = {"mode": "context", "unsupported_claims": claims,
                               "unsupported_term_share": round(token_share, 4)}
    if matched:
        expl += "; names paraphrasing the context: " + ", ".join(f"{n} ~ {w}" for n, w in list(matched.items())[:3])
        details["paraphrased_names"] = matched
    return MetricScore(
        "hallucination",
        value,
        expl + response.note(),
        label="unsupported" if value >= HALLUCINATION_THRESHOLD else "supported",
        details=details,
    )


def _hallucination_without_context(response: _Doc, prompt: _Doc) -> MetricScore:
    """Weaker mode: specifics (numbers, names) absent from the prompt plus overconfidence cues."""
    lex = _lexicons()
    text = response.text[:MAX_ANALYSED_CHARS]
    prompt_words = prompt.token_set
    numbers = [n for n in dict.fromkeys(response.numbers) if n not in prompt.number_set]
    names: list[str] = []
    for ent in _t.extract_entities(text):
        if not any(w.lower().strip("'’") in prompt_words for w in ent.split()):
            names.append(ent)
    names = list(dict.fromkeys(names))
    n_words = max(1, len(response.tokens))
    specifics = len(numbers) + len(names)
    density = specifics / (n_words / 25 + 1)
    confident = lex.overconfidence.find(response.tokens, token_set=response.token_set)
    hedges = len(lex.hedges.find(response.tokens, token_set=response.token_set))
    citations = _citations(response.lower[:MAX_ANALYSED_CHARS])
    value = 0.35 * (1 - math.exp(-density / 1.5)) + 0.15 * min(3, len(confident)) + 0.1 * min(2, len(citations))
    value -= 0.03 * min(5, hedges)
    value = _clip(min(0.85, value))
    parts = ["no context given: weaker mode, judged from the prompt only"]
    if specifics:
        shown = [*numbers[:3], *names[:3]]
        parts.append(f"{specifics} specific(s) not found in the prompt ({', '.join(shown)})")
    if confident:
        parts.append(f"overconfident phrasing: {', '.join(_quote(c) for c in dict.fromkeys(confident[:3]))}")
    if citations:
        parts.append(f"unverifiable citation(s): {', '.join(_quote(c) for c in citations[:2])}")
    if hedges:
        parts.append(f"{hedges} hedge(s)")
    return MetricScore(
        "hallucination",
        value,
        "; ".join(parts) + response.note(),
        label="unsupported" if value >= HALLUCINATION_THRESHOLD else "supported",
        details={
            "mode": "no_context",
            "unsupported_numbers": numbers,
            "unsupported_names": names,
            "overconfidence": confident,
            "citations": citations,
            "hedges": hedges,
        },
    )


# --------------------------------------------------------------------------------------------------
# Task-specific metrics


def _summary_source(prompt: _Doc, context: _Doc | None) -> _Doc:
    """The text being summarised: the context when given, otherwise the prompt."""
    return context if context is not None and context.text.strip() else prompt


def _conciseness(response: _Doc, source: _Doc) -> MetricScore:
    """Compression relative to the source; penalise summaries nearly as long as the source, and filler."""
    words = len(response.tokens)
    if not words:
        return MetricScore("conciseness", 0.0, "empty summary")
    src_words = len(source.tokens)
    fillers = _lexicons().filler.find(response.tokens)
    if src_words >= 40:
        ratio = words / src_words
        if ratio <= 0.02:
            value = 0.5
        elif ratio <= 0.05:
            value = 0.5 + 0.5 * (ratio - 0.02) / 0.03
        elif ratio <= 0.4:
            value = 1.0
        elif ratio <= 1.0:
            value = 1.0 - 0.8 * (ratio - 0.4) / 0.6
        else:
            value = 0.15
        expl = f"{words} words for a {src_words}-word source (ratio {ratio:.2f})"
    else:
        ratio = None
        value = 1.0 if words <= 80 else max(0.2, 1 - (words - 80) / 300)
        expl = f"{words} words (source too short to compute a ratio)"
    if fillers:
        value -= min(0.3, 0.1 * len(fillers))
        expl += f"; filler: {', '.join(_quote(f) for f in fillers[:3])}"
    return MetricScore(
        "conciseness",
        _clip(value),
        expl + response.note(),
        details={"words": words, "source_words": src_words, "ratio": None if ratio is None else round(ratio, 4)},
    )


def _source_key_terms(source: _Doc, k: int | None = None) -> list[str]:
    """The source's most salient content: frequent stems, names and numbers (ties by first position)."""
    counts = Counter(source.content)
    first: dict[str, int] = {}
    for i, s in enumerate(source.content):
        first.setdefault(s, i)
    names = {_t.stem(w.lower()) for e in _t.extract_entities(source.text[:MAX_ANALYSED_CHARS]) for w in e.split()}
    scored = []
    for s, c in counts.items():
        if s in _GENERIC_STEMS:
            continue
        score = (
            c + (1.5 if s in names else 0) + 0.2 * min(len(s), 10) / 10 - first[s] / (10 * max(1, len(source.content)))
        )
        scored.append((-score, first[s], s))
    if k is None:
        k = max(4, min(15, len(counts) // 5))
    return [s for _score, _f, s in sorted(scored)[:k]]


def _coverage(response: _Doc, source: _Doc) -> MetricScore:
    """Share of the source's key terms and numbers that the summary keeps."""
    if not response.text.strip():
        return MetricScore("coverage", 0.0, "empty summary")
    if not source.content:
        return MetricScore("coverage", None, "no source text (context or prompt) to compare against")
    keys = _source_key_terms(source)
    covered = [k for k in keys if k in response.fuzzy]
    missing = [k for k in keys if k not in response.fuzzy]
    src_numbers = list(dict.fromkeys(source.numbers))[:8]
    kept_numbers = [n for n in src_numbers if n in response.number_set]
    term_share = len(covered) / len(keys)
    value = (
        term_share
        if not src_numbers
        else 0.8 * term_share + 0.2 * min(1.0, len(kept_numbers) / max(1, min(3, len(src_numbers))))
    )
    expl = f"kept {len(covered)}/{len(keys)} key source terms"
    if missing:
        expl += f"; missing {source.words(missing[:6])}"
    if src_numbers:
        expl += f"; kept {len(kept_numbers)} of {len(src_numbers)} source numbers"
    return MetricScore(
        "coverage",
        _clip(value),
        expl + response.note(),
        details={"key_terms": keys, "covered": covered, "missing": missing},
    )


def _directness(prompt: _Doc, response: _Doc) -> MetricScore:
    """Does the first sentence answer the question, without evasion or preamble?"""
    if not response.text.strip():
        return MetricScore("directness", 0.0, "empty response")
    lex = _lexicons()
    first = response.sentences[0] if response.sentences else response.text[:300]
    first_tokens = response.sentence_tokens[0] if response.sentence_tokens else []
    evasion = (lex.evasion.find(first_tokens) or lex.evasion.find(response.tokens, limit=40) or [None])[0]
    filler = (lex.filler.find(first_tokens) or [None])[0]
    terms = _key_terms(prompt)
    first_fuzzy = _FuzzyIndex(_t.content_stems(first_tokens))
    overlap = (sum(w for t, w in terms if t in first_fuzzy) / sum(w for _t2, w in terms)) if terms else 0.5
    kind = prompt.question_type
    first_doc = _analyse(first)
    type_match = _answer_type_match(kind, first_doc)
    value = 0.45 + 0.35 * min(1.0, overlap * 1.5) + (0.2 * type_match if type_match is not None else 0.1)
    if len(first_tokens) > 40:
        value -= 0.15
    parts = [f"first sentence covers {round(overlap * 100)}% of the question's key terms"]
    if type_match is not None:
        parts.append(
            f"{kind} question: {'answered' if type_match == 1.0 else 'expected answer type not in first sentence'}"
        )
    if filler:
        value -= 0.2
        parts.append(f"opens with filler {_quote(filler)}")
    if evasion:
        value = min(value, 0.15)
        parts.append(f"evasive: {_quote(evasion)}")
    return MetricScore(
        "directness",
        _clip(value),
        "; ".join(parts) + response.note(),
        details={"first_sentence": first[:300], "evasion": evasion},
    )


_PART_SPLIT_RE = re.compile(r"\?\s+|\band\s+(?=(?:what|how|why|when|where|who|which)\b)", re.I)


def _completeness(prompt: _Doc, response: _Doc, expected: _Doc | None) -> MetricScore:
    """Coverage of the expected answer's content (if given) or of every part of the question."""
    if not response.text.strip():
        return MetricScore("completeness", 0.0, "empty response")
    if expected is not None and expected.content_set:
        keys = sorted(expected.content_set)
        got = [k for k in keys if k in response.fuzzy]
        numbers = sorted(expected.number_set)
        got_numbers = [n for n in numbers if n in response.number_set]
        value = len(got) / len(keys)
        if numbers:
            value = 0.7 * value + 0.3 * len(got_numbers) / len(numbers)
        missing = [k for k in keys if k not in response.fuzzy]
        expl = f"covers {len(got)}/{len(keys)} content terms of the expected answer"
        if missing:
            expl += f"; missing {expected.words(missing[:6])}"
        if numbers:
            expl += f"; {len(got_numbers)}/{len(numbers)} expected numbers"
        return MetricScore("completeness", _clip(value), expl + response.note(), details={"missing": missing})
    parts = [p for p in _PART_SPLIT_RE.split(prompt.text[:2000]) if p.strip()]
    part_scores = []
    for p in parts[:8]:
        stems = [s for s in dict.fromkeys(_t.content_stems(_t.word_tokens(p))) if s not in _GENERIC_STEMS]
        if stems:
            part_scores.append(sum(1 for s in stems if s in response.fuzzy) / len(stems))
    if not part_scores:
        return MetricScore("completeness", None, "question has no content words; completeness not assessed")
    words = len(response.tokens)
    value = sum(min(1.0, s * 1.5) for s in part_scores) / len(part_scores)
    if words < 5:
        value *= 0.6
    expl = f"{len(part_scores)} question part(s); mean key-term coverage {sum(part_scores) / len(part_scores):.2f}"
    if words < 5:
        expl += "; very short answer"
    return MetricScore(
        "completeness",
        _clip(value),
        expl + response.note(),
        details={"part_coverage": [round(s, 3) for s in part_scores]},
    )


_FIGURATIVE_RE = re.compile(
    r"\b(?:like\s+(?:a|an|the)\s+\w+|as\s+\w+\s+as\s+\w+|seemed\s+to|as\s+if|as\s+though)\b", re.I
)


def _originality(prompt: _Doc, response: _Doc) -> MetricScore:
    """Distinct n-grams, low repetition, little copying from the prompt, few clichés."""
    toks = response.tokens[:5000]
    if len(toks) < 3:
        return MetricScore("originality", _clip(0.2 * len(toks)), "too short to judge originality")
    bigrams = _t.ngrams(toks, 2)
    distinct2 = len(set(bigrams)) / len(bigrams)
    trigrams = _t.ngrams(toks, 3)
    prompt_tri = set(_t.ngrams(prompt.tokens[:5000], 3))
    copied = sum(1 for g in trigrams if g in prompt_tri) / len(trigrams) if trigrams else 0.0
    cliches = _lexicons().cliches.find(toks)
    value = 0.2 + 0.8 * distinct2 - 0.6 * copied - 0.1 * min(3, len(cliches))
    expl = f"{round(distinct2 * 100)}% distinct word pairs; {round(copied * 100)}% of trigrams copied from the prompt"
    if cliches:
        expl += f"; clichés: {', '.join(_quote(c) for c in list(dict.fromkeys(cliches))[:3])}"
    return MetricScore(
        "originality",
        _clip(value),
        expl + response.note(),
        details={"distinct_2": round(distinct2, 4), "prompt_overlap": round(copied, 4), "cliches": cliches},
    )


def _vividness(response: _Doc) -> MetricScore:
    """Concrete sensory words, figurative comparisons and lexical variety."""
    toks = [t for t in response.tokens[:5000] if t.isalpha()]
    if len(toks) < 3:
        return MetricScore("vividness", _clip(0.1 * len(toks)), "too short to judge vividness")
    sensory = _lexicons().sensory
    found = [t for t in toks if t in sensory]
    density = len(found) / len(toks)
    figurative = _FIGURATIVE_RE.findall(response.text[:MAX_ANALYSED_CHARS])
    window = toks[:200]
    ttr = len(set(window)) / len(window)
    value = (
        0.15
        + 0.45 * min(1.0, density / 0.08)
        + 0.15 * min(1.0, len(figurative) / 2)
        + 0.25 * min(1.0, max(0.0, (ttr - 0.35) / 0.4))
    )
    distinct_found = list(dict.fromkeys(found))
    expl = f"{len(found)} sensory word(s)" + (f" ({', '.join(distinct_found[:6])})" if found else "")
    expl += f"; {len(figurative)} comparison(s); type-token ratio {ttr:.2f}"
    return MetricScore(
        "vividness",
        _clip(value),
        expl + response.note(),
        details={"sensory_words": distinct_found, "figurative": len(figurative), "type_token_ratio": round(ttr, 4)},
    )


_FENCE_LINE_RE = re.compile(r"^[ \t]*```(\S*)", re.M)
_LIST_LINE_RE = re.compile(r"^[ \t]*(?:[-*•+]|\d+[.)])\s+\S", re.M)
_HEADING_RE = re.compile(r"^[ \t]*#{1,6}\s+\S", re.M)


def _clarity(response: _Doc) -> MetricScore:
    """Readable technical answer: balanced code fences, moderate sentence length, structure when long."""
    if not response.text.strip():
        return MetricScore("clarity", 0.0, "empty response")
    text = response.text
    fences = _FENCE_LINE_RE.findall(text)
    issues: list[str] = []
    value = 1.0
    if len(fences) % 2:
        value -= 0.35
        issues.append(f"unbalanced ``` fences ({len(fences)} fence lines)")
    elif fences:
        opening = fences[0::2]
        untagged = sum(1 for lang in opening if not lang)
        if untagged:
            value -= 0.05
            issues.append(f"{untagged} code block(s) without a language tag")
    prose, _blocks = response.prose_and_code
    inline_ticks = sum(line.count("`") % 2 for line in prose.splitlines())
    if inline_ticks:
        value -= min(0.2, 0.05 * inline_ticks)
        issues.append(f"{inline_ticks} line(s) with unbalanced inline backticks")
    lengths = [len(t) for t in response.sentence_tokens if t]
    if lengths:
        mean_len = sum(lengths) / len(lengths)
        if mean_len > 25:
            value -= min(0.35, (mean_len - 25) / 40)
            issues.append(f"long sentences (mean {mean_len:.0f} words)")
        very_long = sum(1 for n in lengths if n > 45)
        if very_long:
            value -= min(0.2, 0.07 * very_long)
            issues.append(f"{very_long} sentence(s) over 45 words")
    words = len(response.tokens)
    structured = bool(_LIST_LINE_RE.search(text) or _HEADING_RE.search(text) or fences or "\n\n" in text.strip())
    if words > 150 and not structured:
        value -= 0.2
        issues.append("long answer without paragraphs, lists or code blocks")
    garbage = _garbage_share(response)
    if garbage > 0.2:
        value -= garbage
        issues.append("text looks like garbage")
    expl = "; ".join(issues) if issues else "well-formed: balanced code fences, readable sentence length"
    return MetricScore(
        "clarity", _clip(value), expl + response.note(), details={"fence_lines": len(fences), "structured": structured}
    )


# --------------------------------------------------------------------------------------------------
# Quality and the public entry points


def combine_quality(task_type: str, scores: Mapping[str, MetricScore]) -> MetricScore:
    """Weighted mean of the available positive metrics, discounted by toxicity, bias and hallucination.

    Shared by every backend, so quality means the same whichever tier produced the components.
    """
    weights = QUALITY_WEIGHTS[task_type]
    used = {k: w for k, w in weights.items() if k in scores and scores[k].value is not None}
    if not used:
        return MetricScore("quality", None, "no component metric could be computed")
    total, shares, rounded_shares, dropped_text = _quality_weights(task_type, tuple(used))
    base = sum(scores[k].value * w for k, w in used.items()) / total  # type: ignore[operator]
    factor = 1.0
    penalties = []
    for k, p in QUALITY_PENALTIES.items():
        v = scores[k].value if k in scores else None
        if v:
            factor *= 1 - p * v
            if v >= 0.2:
                penalties.append(f"{k} {v:.2f}")
    value = _clip(base * factor)
    comp = ", ".join(f"{k} {scores[k].value:.2f}×{share}" for k, share in shares)
    expl = f"{task_type} weights: {comp}"
    if penalties:
        expl += f"; penalised for {', '.join(penalties)}"
    expl += dropped_text
    label = "good" if value >= 0.7 else "fair" if value >= 0.4 else "poor"
    return MetricScore(
        "quality",
        value,
        expl,
        label=label,
        details={"base": round(base, 4), "penalty_factor": round(factor, 4), "weights": dict(rounded_shares)},
    )


@lru_cache(maxsize=64)
def _quality_weights(
    task_type: str, used: tuple[str, ...]
) -> tuple[float, tuple[tuple[str, str], ...], dict[str, float], str]:
    """What :func:`combine_quality` shows about the weights of the metrics it could use (a handful of cases).

    Returns the weight total, each metric's share formatted for the explanation, the shares rounded for the
    details (callers copy this dict), and the "not available" note.
    """
    weights = QUALITY_WEIGHTS[task_type]
    total = sum(weights[k] for k in used)
    shares = tuple((k, f"{weights[k] / total:.2f}") for k in used)
    rounded = {k: round(weights[k] / total, 4) for k in used}
    dropped = [k for k in weights if k not in used]
    return total, shares, rounded, f"; not available: {', '.join(dropped)}" if dropped else ""


def _check_text(name: str, value: object) -> str:
    """Validate a text argument: None is an error, other non-strings are converted and bytes decoded."""
    if value is None:
        raise ValueError(f"{name} must be a string, got None")
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return str(value)
    return value


def score_response(
    prompt: str,
    response: str,
    *,
    task_type: str = "general",
    expected_response: str | None = None,
    context: str | None = None,
) -> dict[str, MetricScore]:
    """Score one response with every heuristic metric for its task type.

    Always returns quality, relevance, coherence, accuracy, toxicity, bias and hallucination, plus the
    task metrics listed in :data:`TASK_METRICS`. Raises ``ValueError`` for a ``None`` prompt/response or
    an unknown ``task_type``; any other input (empty, non-English, binary, huge) gets explained scores.

    >>> s = score_response("What is the capital of France?", "The capital of France is Paris.", task_type="qa")
    >>> sorted(s) == sorted(["quality", "relevance", "coherence", "accuracy", "toxicity", "bias",
    ...                      "hallucination", "directness", "completeness"])
    True
    >>> s["relevance"].value > 0.7, s["accuracy"].value is None
    (True, True)
    """
    if task_type not in TASK_METRICS:
        raise ValueError(f"task_type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
    prompt_s = _check_text("prompt", prompt)
    response_s = _check_text("response", response)
    p = _analyse(prompt_s)
    r = _Doc(response_s, MAX_ANALYSED_CHARS)
    e = _analyse(_check_text("expected_response", expected_response)) if expected_response is not None else None
    c = _analyse(_check_text("context", context), MAX_CONTEXT_CHARS) if context is not None else None
    # A summary answers its source more than its one-line instruction ("Summarise the article").
    relevance_target = (
        p if task_type != "summarization" or c is None else _analyse(f"{prompt_s}\n{c.text}", MAX_CONTEXT_CHARS)
    )
    scores: dict[str, MetricScore] = {
        "relevance": _relevance(relevance_target, r),
        "coherence": _coherence(r),
        "accuracy": _accuracy(r, e, task_type),
        "toxicity": _toxicity(r),
        "bias": _bias(r),
        "hallucination": _hallucination(r, c, p),
    }
    if task_type == "summarization":
        source = _summary_source(p, c)
        scores["conciseness"] = _conciseness(r, source)
        scores["coverage"] = _coverage(r, source)
    elif task_type == "qa":
        scores["directness"] = _directness(p, r)
        scores["completeness"] = _completeness(p, r, e)
    elif task_type == "creative":
        scores["originality"] = _originality(p, r)
        scores["vividness"] = _vividness(r)
    elif task_type == "technical":
        scores["clarity"] = _clarity(r)
    scores["quality"] = combine_quality(task_type, scores)
    order = (*CORE_METRICS, *TASK_METRICS[task_type])
    return {k: scores[k] for k in order}


def score_toxicity(text: str, *, use_model: bool = True) -> MetricScore:
    """Toxicity of one text (lexicon + optional alt-profanity-check classifier).

    >>> score_toxicity("you are a f.u.c.k.i.n.g idiot").label
    'toxic'
    >>> score_toxicity("kill the process with kill -9").label
    'clean'
    """
    return _toxicity(_analyse(_check_text("text", text)), use_model=use_model)


def score_bias(text: str) -> MetricScore:
    """Stereotyping generalisations about identity groups in one text.

    >>> score_bias("All women are too emotional to lead.").label
    'biased'
    >>> score_bias("Women make up half of the workforce in the survey.").label
    'neutral'
    """
    return _bias(_analyse(_check_text("text", text)))


def score_relevance(prompt: str, response: str) -> MetricScore:
    """Relevance of a response to its prompt.

    >>> on = score_relevance("How do I reverse a list in Python?", "Call my_list.reverse() or slice it with [::-1].")
    >>> off = score_relevance("How do I reverse a list in Python?", "Bake the bread for 25 minutes.")
    >>> on.value > off.value
    True
    """
    return _relevance(_analyse(_check_text("prompt", prompt)), _analyse(_check_text("response", response)))


def score_coherence(response: str) -> MetricScore:
    """Coherence of a response on its own.

    >>> score_coherence("Rain fell. The rain flooded the road. Therefore the road closed.").value > 0.7
    True
    """
    return _coherence(_analyse(_check_text("response", response)))


def score_accuracy(response: str, expected_response: str, *, task_type: str = "general") -> MetricScore:
    """Agreement of a response with a reference answer (token F1, ROUGE-L, numbers, negation).

    >>> score_accuracy("It has 3 hearts.", "An octopus has three hearts.").value > score_accuracy("It has 2 hearts.", "An octopus has three hearts.").value
    True
    """
    if task_type not in TASK_METRICS:
        raise ValueError(f"task_type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
    return _accuracy(
        _analyse(_check_text("response", response)),
        _analyse(_check_text("expected_response", expected_response)),
        task_type,
    )


def score_hallucination(response: str, context: str | None = None, *, prompt: str = "",
                        name_matcher: NameMatcher | None = None) -> MetricScore:
    """Unsupported claims in a response, checked against ``context`` (or the prompt when no context).

    ``name_matcher``: given the response's names found nowhere in the context, returns those that paraphrase a
    context word, mapped to that word (the embedding tier passes one); they then count as supported.

    >>> src = "The bridge reopened on Monday after an 18-month renovation costing 27 million pounds."
    >>> good = score_hallucination("The bridge reopened Monday after an 18-month, 27 million pound renovation.", src)
    >>> bad = score_hallucination("The bridge reopened Monday after a 72 million pound renovation.", src)
    >>> good.value < bad.value
    True
    """
    ctx = _analyse(_check_text("context", context), MAX_CONTEXT_CHARS) if context is not None else None
    return _hallucination(_analyse(_check_text("response", response)), ctx, _analyse(_check_text("prompt", prompt)),
                          name_matcher)
