"""Storage: the schema, its migrations and the repositories.

Every module that declares tables is imported here so that ``Base.metadata`` (migrations, the
models-versus-migrations test) always sees the whole schema.
"""

from adflywheel.store import (
    audit,
    crosslearn,
    dna,
    ensemble,
    fetching,
    guardrails,
    memory,
    models,
    monitoring,
    power,
    registry,
    rollups,
)

__all__ = [
    "audit",
    "crosslearn",
    "dna",
    "ensemble",
    "fetching",
    "guardrails",
    "memory",
    "models",
    "monitoring",
    "power",
    "registry",
    "rollups",
]
