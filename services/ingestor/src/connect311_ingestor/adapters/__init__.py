"""Feed adapters: each turns one source format into canonical requests (pure, no I/O)."""
