"""The checks of the Python host scripts in tests/ (run by the Rust tests): each check is
counted, a failed one printed, and the last line is `N passed, N failed`, which CI counts."""

import sys


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
