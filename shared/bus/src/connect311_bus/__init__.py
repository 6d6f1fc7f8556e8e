"""Connect311 bus: the Kafka and runtime plumbing every service shares.

Client factories and serde (`kafka`), the one consume loop (`consume`), the broker watch and
rewind after a broker loss, JSON logs, event-loop lag, HTTP limits, proxy headers, bearer-token
auth and the SQLite/PostgreSQL engine factory (`engine`). The wire types themselves live in
`connect311_contracts`; this package depends on it, never the reverse.
"""

__all__: list[str] = []
