"""PostgreSQL: a batch's keys and rows bound as one array per column, so a statement's text is
the same whatever the batch's size.

psycopg keeps a query's parsed form (and, after five runs, has the server prepare it) only
for statements of at most 4 KB and 50 parameters. A multi-row INSERT of a batch (13 columns
x 200 rows) or an IN list of its keys is neither, so each was parsed anew, by psycopg and
again by the server: most of recording a 10,000 fan-out's commands. Bound as arrays
(`= ANY`, `unnest`), each statement is a few hundred bytes with one parameter per column:
0.15 -> 0.04 ms of CPU per command recorded, in half the time. The arrays go in psycopg's
binary format: its text format escapes every quote of every element with a regular
expression in Python, dozens per JSON payload (as costly as the parsing it replaced).
SQLite has no arrays and no such cost: the ledger keeps the portable forms there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.types.array import ListBinaryDumper
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

__all__ = ["BinaryArray", "among", "insert_rows", "key_rows"]

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


class BinaryArray(list[Any]):
    """A list psycopg sends as a binary array (each element's bytes as they are)."""


# The last dumper registered for a type is the one its `%s` parameters use.
psycopg.adapters.register_dumper(BinaryArray, ListBinaryDumper)


def among(
    column: sa.ColumnElement[Any], values: Iterable[Any], arrays: bool
) -> sa.ColumnElement[bool]:
    """`column IN values`: with `arrays` (PostgreSQL) `column = ANY(one array parameter)`,
    else the portable IN list (one parameter per value)."""
    if not arrays:
        return column.in_(list(values))
    bound = sa.cast(sa.bindparam(None, BinaryArray(values)), postgresql.ARRAY(column.type))
    return column == sa.any_(bound)


def _cast(column: sa.Column[Any], name: str) -> str:
    return f"CAST(:{name} AS {column.type.compile(dialect=_DIALECT)}[])"


@functools.cache
def _insert(table: sa.Table, names: tuple[str, ...]) -> sa.TextClause:
    """INSERT ... SELECT FROM unnest(one array per column) in the arrays' order.

    Ordered by the rows' position, so the serial ids ascend with it (the order SQLAlchemy's own
    multi-row INSERT relies on for PostgreSQL, and the queue's order within a batch).
    """
    columns = [table.c[name] for name in names]
    arrays = ", ".join(_cast(c, c.name) for c in columns)
    listed = ", ".join(names)
    # Only the table's own names are written into the text; every value is bound.
    return sa.text(
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} "  # noqa: S608
        f"FROM unnest({arrays}) WITH ORDINALITY AS batch({listed}, batch_order) "
        f"ORDER BY batch_order RETURNING id"
    )


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows (all with the same keys) in one statement; their ids, in the rows' order."""
    if not rows:
        return []
    names = tuple(c.name for c in table.columns if c.name in rows[0])
    params: dict[str, list[Any]] = {}
    for name in names:
        values = [row[name] for row in rows]
        if isinstance(table.c[name].type, sa.Float):  # an int among floats: one array type
            values = [None if v is None else float(v) for v in values]
        params[name] = BinaryArray(values)
    ids = conn.execute(_insert(table, names), params).scalars().all()
    return sorted(int(i) for i in ids)


@functools.cache
def _keys(table: sa.Table, names: tuple[str, ...]) -> sa.TextClause:
    """The rows' key columns that match one of the given keys (one array per column)."""
    columns = [table.c[name] for name in names]
    arrays = ", ".join(_cast(c, f"k{i}") for i, c in enumerate(columns))
    keys = ", ".join(f"k{i}" for i in range(len(names)))
    on = " AND ".join(f"t.{name} = wanted.k{i}" for i, name in enumerate(names))
    listed = ", ".join(f"t.{name}" for name in names)
    return sa.text(
        f"SELECT {listed} FROM {table.name} AS t JOIN unnest({arrays}) AS wanted({keys}) ON {on}"  # noqa: S608
    )


def key_rows(
    conn: Connection, table: sa.Table, names: tuple[str, ...], keys: Sequence[tuple[Any, ...]]
) -> set[tuple[str, ...]]:
    """Which of the (distinct) composite keys have a row, compared as text."""
    if not keys:
        return set()
    params = {f"k{i}": BinaryArray(key[i] for key in keys) for i in range(len(names))}
    rows = conn.execute(_keys(table, names), params)
    return {tuple(str(v) for v in row) for row in rows}
