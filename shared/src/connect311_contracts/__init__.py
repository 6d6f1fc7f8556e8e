"""Connect311 contracts: the events, commands, topics and settings services share.

Plain wire types and configuration, no I/O: the Kafka and runtime plumbing that carries them
is `connect311_bus`. Services depend on both and never on each other.
"""

__all__: list[str] = []
