"""Put a benchmark's generated tables into benchmarks/RESULTS.md and the README.

A document names the place of each generated block with two markers, ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``; ``replace_block`` rewrites what lies between them and nothing else, so
the prose around a table stays the author's and a re-run can never duplicate or lose a section.
A document without the markers is left alone and the caller is told (``False``).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
README = ROOT / "README.md"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def replace_block(path: Path, name: str, text: str) -> bool:
    """Replace the block ``name`` in ``path`` by ``text``; False when the markers are missing
    (or out of order), and then the file is not touched."""
    start, end = markers(name)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    i = content.find(start)
    j = content.find(end, i + len(start)) if i >= 0 else -1
    if i < 0 or j < 0:
        return False
    updated = f"{content[: i + len(start)]}\n{text.strip()}\n{content[j:]}"
    if updated != content:
        path.write_text(updated, encoding="utf-8")
    return True


def publish(blocks: dict[tuple[Path, str], str]) -> dict[str, bool]:
    """Several blocks at once: ``{(path, name): text}`` -> ``{"FILE#name": written}``."""
    return {
        f"{path.name}#{name}": replace_block(path, name, text)
        for (path, name), text in blocks.items()
    }
