"""adflywheel: the self-learning ad flywheel for video ads on Meta."""

__version__ = "0.1.0"
