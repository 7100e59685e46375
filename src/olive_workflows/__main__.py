"""`python -m olive_workflows` runs the CLI."""

from olive_workflows.cli.app import main

main()
