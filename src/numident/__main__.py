"""``python -m numident`` runs the CLI."""

from numident.cli.entry import main

main()
