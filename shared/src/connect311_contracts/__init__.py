"""Connect311 contracts: the events, commands, topics and settings services share.

Services depend on this package and never on each other.
"""
