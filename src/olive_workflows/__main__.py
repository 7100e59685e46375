"""`python -m olive_workflows` runs the CLI."""

from olive_workflows.cli import main

main()
