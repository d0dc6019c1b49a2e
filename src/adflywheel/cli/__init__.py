"""The Typer command line (``adflywheel``); ``app`` is the entry point."""
