"""A larger fuzz campaign than CI's: every command's options and files (tests/test_fuzz.py)
with N examples per command (default 200), printing the inputs tried per command.

    python benchmarks/fuzz.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "200"
    env = {**os.environ, "FLOPCAST_FUZZ_EXAMPLES": examples}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_fuzz.py")], env=env, cwd=ROOT)
    print(f"{examples} examples per command: {time.perf_counter() - start:.0f} s, "
          f"exit {done.returncode}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
