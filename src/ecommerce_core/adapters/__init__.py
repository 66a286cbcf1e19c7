"""Adapters shipped with the library: in-memory (:mod:`.memory`) and SQLite (:mod:`.sqlite`)."""
