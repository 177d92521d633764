"""The llmobs dashboard (Gradio): ``create_app()`` builds it, ``serve()`` launches it; ``llmobs ui`` runs both.

>>> from llmobs.ui import create_app, serve   # doctest: +SKIP
>>> serve(create_app("sqlite:///data/llmobs.db"), port=7860)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Build the dashboard gr.Blocks (see ``llmobs.ui.app.create_app``); Gradio is imported only when called."""
    from llmobs.ui.app import create_app as _create_app

    return _create_app(*args, **kwargs)


def serve(*args: Any, **kwargs: Any) -> Any:
    """Launch a dashboard app (see ``llmobs.ui.app.serve``)."""
    from llmobs.ui.app import serve as _serve

    return _serve(*args, **kwargs)
