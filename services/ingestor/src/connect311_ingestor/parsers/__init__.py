"""Feed parsers: each turns one source format into canonical requests (pure, no I/O)."""
