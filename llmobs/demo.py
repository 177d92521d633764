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
    """Record ``requests`` demo requests; returns how many failed (the failures are part of the demo data).

    When the optional extras are installed it also makes real OpenAI-SDK calls against the offline
    OpenAI-compatible server and scores a sample of the generations with the heuristic evaluator.
    """
    random.seed(seed)
    failures = 0
    for i in range(requests):
        user = f"user-{i % 9}"
        try:
            answer(random.choice(QUESTIONS), user_id=user, session_id=f"{user}-s{i // 30}")
        except RateLimitError:
            failures += 1
    failures += openai_leg(max(4, requests // 10))
    llmobs.flush()
    evaluation_leg()
    llmobs.flush()
    return failures


@llmobs.observe(kind="agent")
def support_agent(client: object, question: str, stream: bool) -> str:
    """One request to the support agent: a chat completion through the instrumented OpenAI SDK."""
    llmobs.update_current_trace(user_id="support-user", tags=["demo", "openai"])
    messages = [{"role": "system", "content": "You are a concise support agent."},
                {"role": "user", "content": question}]
    if stream:
        chunks = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,  # type: ignore
                                                stream_options={"include_usage": True})
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[attr-defined]
    return reply.choices[0].message.content or ""


def openai_leg(calls: int) -> int:
    """Real OpenAI-SDK calls against the offline server (one of them a 429); 0 failures when the extra is missing."""
    try:
        import openai

        from llmobs.integrations.openai import instrument, uninstrument
        from llmobs.testing.openai_server import FakeOpenAIServer, Reply
    except ImportError:
        return 0
    failures = 0
    instrument()
    try:
        with FakeOpenAIServer() as server, openai.OpenAI(base_url=server.base_url, api_key="sk-demo-offline",
                                                         max_retries=0) as client:
            server.enqueue(Reply(content="Hello! Your plan includes SSO on the Business tier."),
                           Reply.error(429, "Rate limit reached for gpt-4o-mini"))
            for i in range(calls):
                try:
                    support_agent(client, random.choice(QUESTIONS), stream=i % 2 == 0)
                except openai.RateLimitError:
                    failures += 1
    finally:
        uninstrument()
    return failures


def evaluation_leg(limit: int = 60) -> None:
    """Score stored generations with the offline heuristic evaluator, as the scheduler's online job would."""
    try:
        from llmobs.evaluation import evaluate_spans
    except ImportError:
        return
    evaluate_spans(kind="generation", backend="heuristic", limit=limit)
