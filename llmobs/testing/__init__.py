"""Test helpers shipped with llmobs: an offline OpenAI-compatible server (`llmobs.testing.openai_server`)."""
