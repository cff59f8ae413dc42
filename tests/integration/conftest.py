"""pytest configuration for the integration suites: the fixtures and hooks
live in harness.py (shared with tests/chaos)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import *  # noqa: E402,F401,F403
