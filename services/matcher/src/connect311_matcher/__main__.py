"""`python -m connect311_matcher` runs the CLI."""

from connect311_matcher.cli import main

main()
