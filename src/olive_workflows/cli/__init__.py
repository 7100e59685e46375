"""The `olive-workflows` command line: thin Typer commands over the public API."""
