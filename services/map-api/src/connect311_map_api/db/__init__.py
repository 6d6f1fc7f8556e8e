"""Database edge: tables, engine and the queries the API and consumers run."""
