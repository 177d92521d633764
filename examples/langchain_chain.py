"""Trace LangChain runs with llmobs, fully offline (fake chat models ship with langchain-core).

    pip install 'llmobs[langchain]'
    python examples/langchain_chain.py

A retrieval chain (retriever | prompt | chat model | parser) runs inside an ``@observe`` function, then the same
chain is streamed, then a small tool-calling loop runs; ``instrument()`` attaches llmobs's callback handler to every
run, so no ``callbacks=`` are passed. Spans go to the configured database (``LLMOBS_DATABASE_URL``, default
``sqlite:///data/llmobs.db``); the script reads them back and prints each trace as a tree.
"""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import tool

import llmobs
from _recorded import print_recorded  # examples/_recorded.py
from llmobs.integrations.langchain import instrument, uninstrument

TRACE_IDS: list[str | None] = []
DOCS = [Document("llmobs stores spans in SQLite by default."), Document("PostgreSQL works through the same setting."),
        Document("Every LLM call becomes a generation span with tokens and cost.")]


class KeywordRetriever(BaseRetriever):
    """Documents sharing a word with the question (a stand-in for a vector store)."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        words = {w.strip("?.,").lower() for w in query.split() if len(w) > 3}
        return [d for d in self.docs if words & {w.strip("?.,").lower() for w in d.page_content.split()}]


def reply(text: str, prompt_tokens: int, completion_tokens: int, **extra: Any) -> AIMessage:
    """A fake model reply carrying the usage and model name a real provider would report."""
    return AIMessage(text, usage_metadata={"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                                           "total_tokens": prompt_tokens + completion_tokens},
                     response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"}, **extra)


PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only.\n\nContext:\n{context}"), ("user", "{question}")])
MODEL = GenericFakeChatModel(messages=iter([
    reply("llmobs stores spans in SQLite by default.", 42, 9),
    reply("Use PostgreSQL through the same setting.", 40, 7)]))
CHAIN = ({"context": KeywordRetriever(docs=DOCS) | (lambda docs: "\n".join(d.page_content for d in docs)),
          "question": RunnablePassthrough()} | PROMPT | MODEL | StrOutputParser())


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


@llmobs.observe(name="ask_docs")
def ask_docs(question: str) -> str:
    """One question answered by the retrieval chain; the LangChain runs nest under this span."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    llmobs.update_current_trace(user_id="example-user", tags=["example", "langchain"])
    return CHAIN.invoke(question)


@llmobs.observe(name="stream_docs")
def stream_docs(question: str) -> str:
    """The same chain streamed; the generation span records the time to first token."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    return "".join(CHAIN.stream(question))


@llmobs.observe(name="word_agent", kind="agent")
def tool_loop(question: str) -> str:
    """A minimal agent loop: the model asks for a tool, the tool runs, the model answers."""
    TRACE_IDS.append(llmobs.get_current_trace_id())
    model = GenericFakeChatModel(messages=iter([
        reply("", 25, 12, tool_calls=[{"name": "word_count", "args": {"text": question}, "id": "call_1"}]),
        reply("Your question has 6 words.", 38, 7)]))
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(3):
        answer = model.invoke(messages)
        messages.append(answer)
        if not answer.tool_calls:
            return str(answer.content)
        messages.extend(word_count.invoke(call) for call in answer.tool_calls)
    return "no answer"


def main() -> None:
    """Attach the handler to every run, run the examples and print what was stored."""
    instrument()
    try:
        print("answer:", ask_docs("Where are spans stored?"))
        print("streamed:", stream_docs("Which database works for teams?"))
        print("tool loop:", tool_loop("How many words are in this?"))
    finally:
        uninstrument()
    print_recorded(TRACE_IDS)


if __name__ == "__main__":
    main()
