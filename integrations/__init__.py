"""Framework integrations (OpenAI, LangChain, LlamaIndex), one module each, each importing its framework lazily."""
