"""Trace a LlamaIndex RAG pipeline with llmobs, fully offline (MockEmbedding and MockLLM ship with llama-index-core).

    pip install 'llmobs[llamaindex]'
    python examples/llamaindex_query.py

Spans go to the configured database (``LLMOBS_DATABASE_URL``, default ``sqlite:///data/llmobs.db``); the script
then reads them back and prints each recorded trace as a tree.
"""

from __future__ import annotations

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.response.schema import StreamingResponse
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM

import llmobs
from _recorded import print_recorded  # examples/_recorded.py
from llmobs.integrations import llamaindex

DOCS = [
    "llmobs records every LLM call as a span: latency, tokens, cost and errors.",
    "Spans land in an embedded SQLite file by default, or in PostgreSQL when a team shares one database.",
    "The LlamaIndex integration listens to LlamaIndex's instrumentation dispatcher.",
]
TRACE_IDS: list[str | None] = []  # each traced function notes its trace id, to print the trees afterwards


@llmobs.observe(name="build_index")
def build_index() -> VectorStoreIndex:
    """Embed the documents (one embedding span for the batch)."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCS], embed_model=MockEmbedding(embed_dim=16))


@llmobs.observe(name="answer_question")
def answer(index: VectorStoreIndex, question: str) -> str:
    """A RAG query: retrieval, synthesis and one LLM call, nested under this function's span."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    llmobs.update_current_trace(user_id="example-user", tags=["example", "llamaindex"])
    return str(index.as_query_engine(llm=MockLLM(max_tokens=12), similarity_top_k=2).query(question))


@llmobs.observe(name="stream_answer")
def stream_answer(index: VectorStoreIndex, question: str) -> str:
    """The same query streamed: the query and LLM spans end when the stream has been read."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    response = index.as_query_engine(llm=MockLLM(max_tokens=12), streaming=True).query(question)
    assert isinstance(response, StreamingResponse)
    return "".join(response.response_gen)  # type: ignore[arg-type]  # a sync generator for a sync query


def main() -> None:
    """Instrument LlamaIndex, run three traced operations and print what was stored."""
    llamaindex.instrument()
    index = build_index()
    print("answer:", answer(index, "Where does llmobs store spans?"))
    print("streamed answer:", stream_answer(index, "What does llmobs record?"))
    llamaindex.uninstrument()

    print_recorded(TRACE_IDS)


if __name__ == "__main__":
    main()
