"""``python -m tests.golden.regenerate [name-substring ...]``: rewrite the golden files."""

from __future__ import annotations

import sys

from tests.golden.cases import CASES, DATA


def main(filters: list[str]) -> None:
    DATA.mkdir(exist_ok=True)
    for case in CASES:
        if filters and not any(f in case.name for f in filters):
            continue
        case.path.write_text(case.produce())
        print(f"wrote {case.path.relative_to(DATA.parent.parent.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
