"""Engine creation (the shared factory, see `connect311_bus.engine`) and schema set-up."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text

from connect311_bus.engine import make_engine as shared_engine
from connect311_map_api.db.tables import metadata


def make_engine(url: str, busy_timeout_ms: int = 5_000) -> Engine:
    """The map API's engine: the shared factory, with a pool for PostgreSQL's readers."""
    return shared_engine(url, busy_timeout_ms, pool_size=10, max_overflow=10)


def create_schema(engine: Engine) -> None:
    """Create missing tables and indexes (idempotent).

    `create_all` makes indexes only with a new table, so an index added to an existing table
    (e.g. the feeds' `ix_requests_rank_source`) is created here, once, on a database built
    by an older version.
    """
    metadata.create_all(engine)
    with engine.begin() as conn:
        _add_new_columns(conn)
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


def _add_new_columns(conn: Connection) -> None:
    """Add the nullable columns a newer version defines (e.g. `subscriptions.language`) to
    tables an older version created: their old rows read NULL, which each column documents."""
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
