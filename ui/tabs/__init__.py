"""One module per dashboard tab; each has pure callbacks (tested directly) and a ``build(ctx)`` that renders it."""
