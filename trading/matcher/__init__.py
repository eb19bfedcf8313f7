"""The matcher: Django glue around the pure engine (load books, consume commands, persist
events in one transaction per batch, publish after commit). ARCHITECTURE §3."""
