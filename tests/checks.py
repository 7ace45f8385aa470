"""checks: the PASS/FAIL bookkeeping of lfp's Python tests (one line per check,
then a count; a section that raises is one failure, not a crash)."""
import traceback


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail="", note=""):
        """detail is printed on failure only, note on success only."""
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f" ({note})" if note else ""))
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return ok

    def section(self, name, fn, *args):
        """Run one section; an unexpected exception is one failure, not a crash."""
        print(f"--- {name}")
        try:
            fn(self, *args)
        except Exception:
            self.check(f"{name}: ran without a Python exception", False,
                       "\n" + traceback.format_exc().rstrip())
