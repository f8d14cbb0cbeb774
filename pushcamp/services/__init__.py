"""Use cases: what the API, the CLI and the panel ask pushcamp to do. Each function takes
the :class:`~pushcamp.store.Database` and plain values, and raises pushcamp errors."""
