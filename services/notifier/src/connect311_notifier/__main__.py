"""`python -m connect311_notifier` runs the CLI."""

from connect311_notifier.cli import main

main()
