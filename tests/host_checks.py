"""What the Python host scripts in tests/ (run by the Rust tests) share: their checks, each
counted, a failed one printed, and the last line `N passed, N failed`, which CI counts; and a
connection of Debian's sqlite3 module with the extension loaded."""

import sqlite3
import sys


def connect(extension):
    """An in-memory connection, usable from any thread, with the extension at `extension` loaded."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.enable_load_extension(True)
    conn.load_extension(extension)
    return conn


class Checks:
    def __init__(self, verbose=False):
        self.passed = self.failed = 0
        self.verbose = verbose

    def check(self, name, condition, detail=""):
        if condition:
            self.passed += 1
            if self.verbose:
                print(f"ok {name}: {detail}", flush=True)
        else:
            self.failed += 1
            print(f"FAILED {name}: {detail}", flush=True)

    def finish(self):
        """Prints the summary and exits non-zero if a check failed."""
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)
