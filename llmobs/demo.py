"""The demo workload: a small retrieval-augmented assistant, traced with @observe, recorded into the database.

It makes realistic traffic without any network: several users and sessions, three models with different speeds
and prices, retrieval and reranking steps, streamed answers, a few rate-limit errors and one slow outlier.
"""

from __future__ import annotations

import random
import time
from typing import Iterator

import llmobs

MODELS = {  # model -> (provider, seconds per 100 output tokens)
    "gpt-4o-mini": ("openai", 0.004),
    "gpt-4o": ("openai", 0.010),
    "claude-3-5-sonnet-20241022": ("anthropic", 0.008),
}
QUESTIONS = [
    "What is machine learning?", "How do I reset my password?", "Summarise the Q3 sales report.",
    "Which plan includes SSO?", "Explain vector databases to a new engineer.", "Why did my deployment fail?",
    "Translate 'good morning' into French.", "What are the rate limits of the API?",
]
DOCS = [f"doc-{i}: knowledge base article {i}" for i in range(40)]


class RateLimitError(Exception):
    """What a provider raises when the demo pretends to be throttled."""


@llmobs.observe(kind="retriever")
def retrieve(question: str, k: int = 4) -> list[str]:
    """Pick k documents (pretend vector search)."""
    time.sleep(random.uniform(0.001, 0.004))
    return random.sample(DOCS, k)


@llmobs.observe(kind="tool")
def rerank(question: str, docs: list[str]) -> list[str]:
    """Order documents by a fake relevance score."""
    return sorted(docs, key=lambda d: hash((question, d)))[:2]


@llmobs.observe(kind="generation")
def generate(question: str, docs: list[str], model: str) -> Iterator[str]:
    """Stream an answer token by token, reporting model, usage and cost the way an LLM client would."""
    provider, per_100 = MODELS[model]
    llmobs.update_current_span(model_name=model, provider=provider, metadata={"temperature": 0.2})
    if random.random() < 0.03:
        raise RateLimitError(f"{provider}: rate limit reached for {model}")
    words = f"Based on {docs[0].split(':')[0]}, here is what I found about '{question}'.".split()
    words += ["detail"] * random.randint(10, 60)
    slow = 40 if random.random() < 0.01 else 1
    for word in words:
        time.sleep(per_100 * slow / 100)
        yield word + " "
    prompt_tokens = 40 + sum(len(d) for d in docs) // 4
    llmobs.update_current_span(prompt_tokens=prompt_tokens, completion_tokens=len(words))


@llmobs.observe(kind="chain")
def answer(question: str, user_id: str, session_id: str) -> str:
    """One user request: retrieve, rerank, generate."""
    llmobs.update_current_trace(user_id=user_id, session_id=session_id, tags=["demo", "rag"])
    docs = rerank(question, retrieve(question))
    model = random.choice(list(MODELS))
    return "".join(generate(question, docs, model)).strip()


def run(requests: int = 120, seed: int = 7) -> int:
    """Record ``requests`` demo requests; returns how many failed (the failures are part of the demo data)."""
    random.seed(seed)
    failures = 0
    for i in range(requests):
        user = f"user-{i % 9}"
        try:
            answer(random.choice(QUESTIONS), user_id=user, session_id=f"{user}-s{i // 30}")
        except RateLimitError:
            failures += 1
    llmobs.flush()
    return failures
