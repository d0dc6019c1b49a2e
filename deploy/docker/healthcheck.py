"""The container's health check: exit 0 when ``GET /health`` of the service in this container
answers 200 (the database answered too), else 1. Standard library only: the slim image has no
curl, and the probe must not depend on anything the service itself may have broken."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("ADFLYWHEEL_PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
