"""`python -m connect311_ingestor` runs the CLI."""

from connect311_ingestor.cli import main

main()
