"""``python -m numident`` runs the CLI."""

from numident.cli.main import main

main()
