"""Collection of the doctests in src/: the web app's module needs the `web` extra; without it
the module is skipped (tests/test_web_api*.py skip themselves)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("fastapi") else ["src/flopcast/web/app.py"]
