"""Storage: the schema, its migrations and the repositories.

Every module that declares tables is imported here so that ``Base.metadata`` (migrations, the
models-versus-migrations test) always sees the whole schema.
"""

from adflywheel.store import dna, guardrails, models

__all__ = ["dna", "guardrails", "models"]
