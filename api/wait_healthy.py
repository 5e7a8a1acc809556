"""Wait until a URL answers 200, for `make up`: python -m api.wait_healthy URL [SECONDS]."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request


def wait_healthy(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: python -m api.wait_healthy URL [SECONDS]", file=sys.stderr)
        sys.exit(2)
    ok = wait_healthy(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 30.0)
    if not ok:
        print(f"{sys.argv[1]} did not answer 200", file=sys.stderr)
    sys.exit(0 if ok else 1)
