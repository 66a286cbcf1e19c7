"""Adapters shipped with the library: in-memory (and, later, SQLite)."""
