"""pytest configuration for the chaos suite: the integration harness's
fixtures and hooks (per-test time limit, logs of failed tests' servers)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from harness import *  # noqa: E402,F401,F403


def pytest_terminal_summary(terminalreporter):
    """The failover times the scenarios measured (test_chaos.RESULTS)."""
    mod = sys.modules.get("test_chaos")
    lines = getattr(mod, "RESULTS", None)
    if lines:
        terminalreporter.section("chaos: measured failover")
        for line in lines:
            terminalreporter.write_line(line)
