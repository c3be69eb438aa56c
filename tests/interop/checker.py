"""Runs named checks, reporting each failure and going on to the next.

Shared by the interop scripts; their last line is the runner-neutral
"interop: N passed, N failed" that CI logs are read for.
"""
import traceback


class Checker:
    def __init__(self, announce=False):
        self.passed = 0
        self.failed = 0
        self.announce = announce  # print each check's label before running it

    def check(self, label, fn):
        if self.announce:
            print(f"---- {label}")
        try:
            fn()
        except Exception:  # any failure of a check is reported, then the next runs
            self.failed += 1
            print(f"FAIL {label}")
            traceback.print_exc(limit=3)
        else:
            self.passed += 1
            print(f"ok   {label}")
