"""What the Python host scripts in tests/ (run by the Rust tests) share: their checks, each
counted, a failed one printed, and the last line `N passed, N failed`, which CI counts; and a
connection of Debian's sqlite3 module with the extension loaded."""

import math
import sqlite3
import sys


def seed_distance(lat0, lon0, lat1, lon1):
    """The seed post's distance in meters between two points, computed here, to check the
    sandbox's results against."""
    if lat0 == lat1 and lon0 == lon1:
        return 0.0
    r0, r1, t = math.pi * lat0 / 180, math.pi * lat1 / 180, math.pi * (lon0 - lon1) / 180
    d = min(1.0, math.sin(r0) * math.sin(r1) + math.cos(r0) * math.cos(r1) * math.cos(t))
    return math.acos(d) * 180 / math.pi * 60 * 1853.159


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
