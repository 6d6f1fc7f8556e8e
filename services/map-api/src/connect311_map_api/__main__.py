"""`python -m connect311_map_api` runs the CLI."""

from connect311_map_api.cli import main

main()
