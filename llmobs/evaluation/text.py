"""Small, dependency-free text utilities shared by the offline evaluators.

Everything here is pure Python, deterministic and cheap: the heuristic scorers call these
functions thousands of times a second, so regexes are compiled once and stems are memoised.
English-centred by design; other scripts are tokenised sensibly (CJK ideographs one per token)
but no language-specific knowledge is applied to them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "STOPWORDS",
    "GENERIC_WORDS",
    "NEGATION_WORDS",
    "ScriptProfile",
    "word_tokens",
    "split_sentences",
    "strip_code_blocks",
    "stem",
    "content_stems",
    "ngrams",
    "occurrences",
    "extract_numbers",
    "extract_entities",
    "acronyms_of",
    "lcs_length",
    "script_profile",
    "truncate",
]

# Function words that carry no topic. Hand-written list (not copied from any library).
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each else ever every few for from further get gets got had hadn't has hasn't have haven't having he he'd he'll
    he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it
    it's its itself just let's like may me might more most much must mustn't my myself no nor not now of off on once
    only onto or other others ought our ours ourselves out over own per quite rather really same shall shan't she
    she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those though through thus to too under until up upon us
    very via was wasn't we we'd we'll we're we've were weren't what what's whatever when when's where where's whether
    which while who who's whom whose why why's will with within without won't would wouldn't yes yet you you'd you'll
    you're you've your yours yourself yourselves etc e.g i.e vs
    """.split()
)

# Words so common in questions and answers that matching them says little about the topic.
GENERIC_WORDS: frozenset[str] = frozenset(
    """
    make makes made use used using uses get need needs want wants way ways best good better thing things
    difference different mean means meaning happen happens work works working kind kinds type types example
    examples lot lots many often usually common commonly one two first new know tell explain describe
    something anything everything someone people person time times year years day days help should
    can could would will do does did done go goes going take takes keep keeps give gives find found
    """.split()
)

NEGATION_WORDS: frozenset[str] = frozenset(
    """
    not no never none nobody nothing neither nor cannot can't don't doesn't didn't isn't aren't wasn't weren't
    won't wouldn't shouldn't couldn't hasn't haven't hadn't mustn't without n't
    """.split()
)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_RE = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+(?:['’][^\W_{_CJK}]+)*")
_PLAIN_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# The same tokens for ASCII text, where [^\W_] is exactly [A-Za-z0-9] and ’ cannot occur.
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")
# ASCII characters that can be part of a word token kept, every other one turned into a space.
_ASCII_TOKEN_CHARS = str.maketrans(
    {chr(i): chr(i) if chr(i).isalnum() or chr(i) == "'" else " " for i in range(128)}
)
_HAS_CJK_RE = re.compile(rf"[{_CJK}]")
_DIGITS_RE = re.compile(r"\d")
_FENCE_BLOCK_RE = re.compile(r"^[ \t]*```[^\n]*\n.*?(?:^[ \t]*```[ \t]*$|\Z)", re.S | re.M)
# Sentence punctuation, closing quotes/brackets and spaces, where the next sentence starts (a capital, digit,
# opening quote or bracket, or any non-ASCII character): the lookahead is _NEXT_START_RE, checked by the engine.
_SENT_BOUNDARY_RE = re.compile(r"([.!?。！？]+[\"')\]]*)[ \t]+(?=[\"'(\[]?[A-Z0-9\u00C0-\u024F]|[^\x00-\x7F])")
_BLOCK_SPLIT_RE = re.compile(r"\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*•+][ \t]|\d+[.)][ \t]|#|\|))|(?<=[.!?:;。！？])[ \t]*\n")
_NEXT_START_RE = re.compile(r"[\"'(\[]?[A-Z0-9\u00C0-\u024F]|[^\x00-\x7F]")
_ABBREVIATIONS: frozenset[str] = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e fig no approx dept est inc ltd co corp u.s u.k a.m p.m cf al".split()
)
_LETTERS_AND_DOT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ."


def word_tokens(text: str, *, lower: bool = True) -> list[str]:
    """Split text into word tokens (letters/digits, inner apostrophes kept, CJK one char each).

    Underscores and dots split words, so identifiers like ``my_list`` yield ``my`` and ``list``.

    >>> word_tokens("Don't use my_list, use 3 lists!")
    ["don't", 'use', 'my', 'list', 'use', '3', 'lists']
    """
    if text.isascii():
        return _ascii_word_tokens(text.lower() if lower else text)
    if lower:
        text = text.lower()
    rx = _PLAIN_WORD_RE if text.isascii() or not _HAS_CJK_RE.search(text) else _WORD_RE
    tokens = rx.findall(text)
    if "’" in text:
        tokens = [t.replace("’", "'") for t in tokens]
    return tokens


def _ascii_word_tokens(text: str) -> list[str]:
    """:func:`word_tokens` of ASCII text, split at C speed (~3x faster than the regex).

    With every character that cannot be in a token turned into a space, the space-separated pieces are the
    tokens, unless an apostrophe starts, ends or doubles inside a piece ("'quoted'"); the regex handles those.
    """
    spaced = text.translate(_ASCII_TOKEN_CHARS)
    if "'" in spaced and (
        spaced.startswith("'") or spaced.endswith("'") or " '" in spaced or "' " in spaced or "''" in spaced
    ):
        return _ASCII_WORD_RE.findall(text)
    return spaced.split()


def strip_code_blocks(text: str) -> tuple[str, list[str]]:
    """Remove fenced (```) code blocks; return the prose and the removed blocks.

    Prose metrics (sentence length, coherence) should not read code as sentences.

    >>> strip_code_blocks("Run:\\n```sh\\nls\\n```\\nDone.")[1]
    ['```sh\\nls\\n```']
    """
    if "```" not in text:
        return text, []
    blocks: list[str] = [m.group(0).rstrip("\n") for m in _FENCE_BLOCK_RE.finditer(text)]
    if not blocks:
        return text, []
    return _FENCE_BLOCK_RE.sub("\n", text), blocks


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences on terminal punctuation, blank lines and list items.

    Common abbreviations (Dr., e.g., U.S.) and decimals do not end a sentence; a full stop followed
    by a lowercase word does not either, which keeps "approx. three" together.

    >>> split_sentences("Dr. Smith arrived at 3.30 pm. He left early! Did he?")
    ['Dr. Smith arrived at 3.30 pm.', 'He left early!', 'Did he?']
    """
    sentences: list[str] = []
    if "\n" not in text:
        _split_block(text, sentences)
        return sentences
    for block in _BLOCK_SPLIT_RE.split(text):
        if block.strip():
            _split_block(block, sentences)
    return sentences


def _split_block(text: str, sentences: list[str]) -> None:
    """Split one paragraph or list item at sentence punctuation, appending to ``sentences``."""
    start = 0
    for m in _SENT_BOUNDARY_RE.finditer(text):
        at = m.start()
        if text[at] == ".":
            # The run of letters and dots that ends at this full stop: is it an abbreviation?
            before = text[max(start, at - 12) : at + 1]
            if before[len(before.rstrip(_LETTERS_AND_DOT)) :].lower().rstrip(".") in _ABBREVIATIONS:
                continue
        piece = text[start : m.end(1)].strip()
        if piece:
            sentences.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)


_STEM_CACHE: dict[str, str] = {}
_KEEP_DOUBLE = frozenset("lsz")


def stem(word: str) -> str:
    """Light suffix stripping so "studies", "studied" and "study" compare equal.

    Not a full Porter stemmer: it only removes plural/-ing/-ed/-ly endings and a final "e",
    which is enough for lexical overlap and cheap enough to run on every token.

    >>> [stem(w) for w in ("studies", "studied", "running", "approved", "approve", "boxes")]
    ['studi', 'studi', 'run', 'approv', 'approv', 'box']
    """
    cached = _STEM_CACHE.get(word)
    if cached is not None:
        return cached
    w = word
    if len(w) > 3 and not _DIGITS_RE.search(w):
        if w.endswith("'s"):
            w = w[:-2]
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "i"
        elif w.endswith("sses"):
            w = w[:-2]
        elif w.endswith(("ches", "shes", "xes", "zzes")):
            w = w[:-2]
        elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        stripped = False
        for suffix, min_len in (("ingly", 7), ("edly", 6), ("ing", 5), ("ied", 4), ("ed", 4), ("ly", 5)):
            if w.endswith(suffix) and len(w) - len(suffix) >= min_len - len(suffix) + 1:
                w = w[: -len(suffix)] + ("i" if suffix == "ied" else "")
                stripped = True
                break
        if stripped and len(w) > 3 and w[-1] == w[-2] and w[-1] not in _KEEP_DOUBLE and w[-1].isalpha():
            w = w[:-1]
        if w.endswith("y") and len(w) > 3:
            w = w[:-1] + "i"
        elif w.endswith("e") and len(w) > 3:
            w = w[:-1]
    if len(_STEM_CACHE) < 200_000:
        _STEM_CACHE[word] = w
    return w


def content_stems(tokens: Iterable[str]) -> list[str]:
    """Stems of the tokens that carry content: no stopwords, no pure numbers, no 1-letter tokens.

    >>> content_stems(["the", "cats", "were", "sleeping", "in", "2024"])
    ['cat', 'sleep']
    """
    if not isinstance(tokens, (list, tuple)):
        tokens = list(tokens)  # iterated twice when a token is new
    try:
        # Usually every token has been seen before: a C-level pass, "" (not content) filtered out.
        return list(filter(None, map(_CONTENT_CACHE.__getitem__, tokens)))
    except KeyError:
        pass
    get = _CONTENT_CACHE.get
    out: list[str] = []
    for t in tokens:
        s = get(t)
        if s is None:
            s = "" if t in STOPWORDS or (len(t) < 2 and t.isascii()) or t.isdigit() else stem(t)
            if len(_CONTENT_CACHE) < 200_000:
                _CONTENT_CACHE[t] = s
        if s:
            out.append(s)
    return out


_CONTENT_CACHE: dict[str, str] = {}


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of a token sequence, in order.

    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    """
    if n <= 0 or len(tokens) < n:
        return []
    return list(zip(*(tokens[i:] for i in range(n))))


_NUMBER_WORDS: dict[str, float] = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "half": 0.5,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "twentieth": 20,
}
_SCALES: dict[str, float] = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "mn": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}
# Starts with a literal character class so the regex engine can skip ahead quickly.
_DIGIT_NUMBER_RE = re.compile(
    r"[0-9](?:[0-9]?:[0-9]{2}(?![0-9])|[0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?(?![0-9]|,[0-9])|[0-9]*(?:\.[0-9]+)?)"
)
_NUMBER_WORD_SET = frozenset(_NUMBER_WORDS)
_SCALE_AFTER_RE = re.compile(r"\s*(thousand|million|billion|trillion|mn|bn|tn)\b|(k|m|b)\b", re.I)
_NUMBER_WORD_RE = re.compile(
    "(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")(?:[\s-]+(thousand|million|billion))?"
)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _canonical_number(value: float) -> str:
    """Render a number so equal values compare equal as strings ("2,600" == "2600.0")."""
    if not math.isfinite(value):
        return "inf"
    if value == int(value) and abs(value) < 1e18:
        return str(int(value))
    return f"{value:.6g}"


def occurrences(tokens: list[str], word: str) -> Iterator[int]:
    """Positions of ``word`` in ``tokens``, found with C-level scans (much faster than a Python loop).

    >>> list(occurrences(["a", "b", "a"], "a"))
    [0, 2]
    """
    i = -1
    while True:
        try:
            i = tokens.index(word, i + 1)
        except ValueError:
            return
        yield i


def _number_words_from_tokens(tokens: list[str]) -> list[str]:
    """Number words in a token list ("three", "two million"), canonicalised."""
    positions = [i for word in _NUMBER_WORD_SET.intersection(tokens) for i in occurrences(tokens, word)]
    out: list[str] = []
    for i in sorted(positions):
        value = _NUMBER_WORDS[tokens[i]]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if nxt in ("thousand", "million", "billion"):
            value *= _SCALES[nxt]
        out.append(_canonical_number(value))
    return out


def extract_numbers(text: str, tokens: Iterable[str] | None = None) -> list[str]:
    """Numbers mentioned in text, canonicalised: digits, "4.2 million", number words, ordinals, times.

    A clock time like "7:30" is kept whole. "one" is deliberately not read as a number: it is
    mostly a pronoun ("no one", "one of them"). Pass the text's ``word_tokens`` when already known: number
    words are then read from the tokens (listed after the digits) instead of rescanning the text.

    >>> extract_numbers("Revenue rose 9% to 2.1 billion, from 1,900 million, at 7:30 with three staff.")
    ['9', '2100000000', '1900000000', '7:30', '3']
    >>> extract_numbers("three staff at 7:30", word_tokens("three staff at 7:30"))
    ['7:30', '3']
    """
    found: list[tuple[int, str]] = []
    for m in _DIGIT_NUMBER_RE.finditer(text):
        start = m.start()
        if start and (text[start - 1] == "_" or text[start - 1].isdigit()):
            continue
        raw = m.group(0)
        if ":" in raw:
            found.append((start, raw))
            continue
        value = float(raw.replace(",", ""))
        end = m.end()
        # A scale word or letter follows directly or after whitespace; skip the regex when the next character is
        # ASCII and neither (re.I folds other ASCII characters to nothing in t/m/b/k).
        nxt = text[end : end + 1]
        if not nxt or (nxt.isascii() and not nxt.isspace() and nxt not in "tmbkTMBK"):
            scale = None
        else:
            scale = _SCALE_AFTER_RE.match(text, end)
        if scale:
            value *= _SCALES[(scale.group(1) or scale.group(2)).lower()]
        found.append((start, _canonical_number(value)))
    if tokens is not None:
        if _NUMBER_WORD_SET.isdisjoint(tokens):
            return [f[1] for f in found]
        return [f[1] for f in found] + _number_words_from_tokens(list(tokens))
    lower = text.lower()
    for m in _NUMBER_WORD_RE.finditer(lower):
        start, end = m.start(), m.end() if m.group(1) else m.start() + len(m.group(0))
        if (start and lower[start - 1] in _WORD_CHARS) or (end < len(lower) and lower[end] in _WORD_CHARS):
            continue
        value = _NUMBER_WORDS[m.group(0).split()[0].split("-")[0]]
        if m.group(1):
            value *= _SCALES[m.group(1)]
        found.append((start, _canonical_number(value)))
    if len(found) > 1:
        found.sort(key=lambda f: f[0])
    return [f[1] for f in found]


_ENTITY_RE = re.compile(
    r"([A-Z](?<![^\s(\"“'‘][A-Z])(?:[a-zA-Z'’\-]+|[A-Z]+[a-z]?))"
    r"((?:\s+(?:(?:of|de|van|von|da|del|la|le|the)\s+)?(?:[A-Z][a-zA-Z'’\-]+|[A-Z]{2,}))*)"
)
_SENT_START_RE = re.compile(r"(?:^|[.!?:;]\s+|\n\s*(?:[-*•]\s*|\d+[.)]\s*)?)$")


def _at_sentence_start(text: str, start: int) -> bool:
    """Whether position ``start`` opens a sentence or list item (judged from the 4 characters before it).

    Mid-sentence words ("the Moon", "(Paris") are answered without the regex: every branch of _SENT_START_RE
    ends in whitespace after sentence punctuation, a newline or a list marker, or in the marker itself.
    """
    if start == 0:
        return True
    last = text[start - 1]
    if not last.isspace():
        if last not in "-*•.)":  # every branch ends in whitespace, a list marker or a newline
            return False
    elif last != "\n" and start >= 2:
        before = text[start - 2]
        if not before.isspace() and before not in ".!?:;-*•)":  # "word " ends no branch
            return False
    return _SENT_START_RE.search(text[max(0, start - 4) : start]) is not None


def extract_entities(text: str) -> list[str]:
    """Capitalised names and acronyms ("Neil Armstrong", "EMA", "Sea of Tranquility").

    A single capitalised word opening a sentence ("Studies show", "Paris is") is ambiguous and only kept
    when the same word is also capitalised mid-sentence; multi-word names and acronyms are always kept.

    >>> extract_entities("The EMA met in Amsterdam. Neil Armstrong walked on the Moon. Studies show it.")
    ['EMA', 'Amsterdam', 'Neil Armstrong', 'Moon']
    """
    out: list[str] = []
    matches = list(_ENTITY_RE.finditer(text))
    starts = [_at_sentence_start(text, m.start()) for m in matches]
    mid_sentence = {m.group(1) for m, at_start in zip(matches, starts) if not at_start}
    for m, at_start in zip(matches, starts):
        first = m.group(1)
        rest = m.group(2) or ""
        # A lone capitalised word opening a sentence is only a name if it is capitalised mid-sentence too.
        lone_ordinary = not rest.strip() and not first.isupper() and first not in mid_sentence
        if at_start and (
            lone_ordinary
            or first.lower() in STOPWORDS
            or first.lower() in GENERIC_WORDS
            or first.lower() in _COMMON_SENTENCE_STARTERS
        ):
            if not rest.strip():
                continue
            # Drop the sentence-initial word but keep the name that follows ("In Paris" -> "Paris").
            parts = rest.split()
            while parts and parts[0].lower() in ("of", "de", "the", "and", "&", "van", "von", "da", "del", "la", "le"):
                parts.pop(0)
            if parts:
                out.append(" ".join(parts))
            continue
        out.append((first + rest).strip() if rest.strip() else first)
    return out


_COMMON_SENTENCE_STARTERS: frozenset[str] = frozenset(
    """
    although because but despite during however if in instead meanwhile moreover since so still then therefore
    today tomorrow yesterday use add run set check try make consider note remember avoid keep take start open
    click go see read write call ask let yes no okay ok sure first second third finally next last overall
    """.split()
)


def acronyms_of(text: str) -> set[str]:
    """Initialisms of capitalised word runs ("European Medicines Agency" -> "EMA", "United States" -> "US").

    Lets a response that abbreviates a name still count as supported by its source.

    >>> sorted(acronyms_of("The European Medicines Agency and the United States"))
    ['EMA', 'US']
    """
    out: set[str] = set()
    for m in _ENTITY_RE.finditer(text):
        for run in _AND_SPLIT_RE.split(m.group(1) + (m.group(2) or "")):
            words = [w for w in run.split() if w[:1].isupper()]
            if words and words[0] == "The":
                words = words[1:]
            if len(words) >= 2:
                out.add("".join(w[0] for w in words).upper())
    return out


_AND_SPLIT_RE = re.compile(r"\s+(?:and|&)\s+(?:the\s+)?", re.I)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel (Allison–Dix / Hyyrö): one big-integer step per token of ``b``, so a ROUGE-L on
    long texts stays fast in pure Python.

    >>> lcs_length("a b c d".split(), "a c d e".split())
    3
    """
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        m = masks.get(tok)
        if m is None:
            continue
        u = v & m
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


@dataclass(frozen=True)
class ScriptProfile:
    """Character make-up of a text: how much is letters, Latin letters, and unprintable junk."""

    chars: int
    letters: int
    latin_letters: int
    junk: int

    @property
    def latin_share(self) -> float:
        """Share of letters that are Latin script (1.0 for empty text)."""
        return self.latin_letters / self.letters if self.letters else 1.0

    @property
    def junk_share(self) -> float:
        """Share of characters that are control, private-use, replacement or unassigned code points."""
        return self.junk / self.chars if self.chars else 0.0

    @property
    def letter_share(self) -> float:
        """Share of characters that are letters of any script."""
        return self.letters / self.chars if self.chars else 0.0


_ASCII_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The ASCII characters that _JUNK_RE matches.
_ASCII_JUNK = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_NON_LETTER_RE = re.compile(r"[\W\d_]+")
_NON_LATIN_LETTER_RE = re.compile(r"[^A-Za-z\u00C0-\u024F]+")
_JUNK_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff\ud800-\udfff\ufff0-\ufffc]")


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
_CHAR_KINDS: dict[str, tuple[int, int, int]] = {}


def _char_kind(ch: str) -> tuple[int, int, int]:
    """(is a letter, is a Latin letter, is junk) for one character, as :func:`script_profile`'s regexes count it."""
    kind = (
        0 if _NON_LETTER_RE.match(ch) else 1,
        0 if _NON_LATIN_LETTER_RE.match(ch) else 1,
        1 if _JUNK_RE.match(ch) else 0,
    )
    if len(_CHAR_KINDS) < 100_000:
        _CHAR_KINDS[ch] = kind
    return kind


def script_profile(text: str, *, sample: int = 4000) -> ScriptProfile:
    """Count letters, Latin letters and junk in (the first ``sample`` characters of) ``text``.

    Junk is control characters, the replacement character, private-use and surrogate code points: what
    binary data looks like after decoding. Used to explain scores on non-English or binary input.

    >>> p = script_profile("héllo мир\\x00")
    >>> (p.letters, p.latin_letters, p.junk)
    (8, 5, 1)
    """
    s = text[:sample]
    # The ASCII characters are counted with bytes.translate and a delete set (C speed; str.translate looks each
    # character up in a dict), the few others one by one; mostly non-ASCII text goes through the regexes.
    raw = s.encode("ascii", "ignore")
    others = len(s) - len(raw)
    if others * 8 <= len(s):
        letters = latin = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        junk = len(raw) - len(raw.translate(None, _ASCII_JUNK))
        if others:
            kinds = _CHAR_KINDS
            for ch in _NON_ASCII_RE.findall(s):
                kind = kinds.get(ch) or _char_kind(ch)
                letters += kind[0]
                latin += kind[1]
                junk += kind[2]
        return ScriptProfile(chars=len(s), letters=letters, latin_letters=latin, junk=junk)
    latin = len(_NON_LATIN_LETTER_RE.sub("", s))
    letters = len(_NON_LETTER_RE.sub("", s))
    junk = len(_JUNK_RE.findall(s)) if _JUNK_RE.search(s) else 0
    return ScriptProfile(chars=len(s), letters=letters, latin_letters=latin, junk=junk)


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to ``limit`` characters (at a whitespace boundary when one is near); say whether it was cut.

    >>> truncate("one two three", 8)
    ('one two', True)
    """
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = cut.rfind(" ", max(0, limit - 200))
    return (cut[:space] if space > 0 else cut), True
