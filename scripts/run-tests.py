#!/usr/bin/env python3
"""Run every rampart test and print one closing line: "N passed, N failed".

Sections: the repository guard (no key material tracked), the cmocka unit
binaries, the integration suite (real rampartd processes over real sockets),
and a short libFuzzer run of each fuzz target.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def add(self, name, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append((name, detail))


def section(title):
    print(f"\n=== {title} ===", flush=True)


def guard_secrets(tally):
    section("repository guard")
    out = subprocess.run(["git", "ls-files", "*.key", "*.pem", "*.srl"], cwd=ROOT,
                         capture_output=True, text=True)
    tracked = [line for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0:
        print("not a git checkout; skipping the tracked-secrets check")
        return
    for path in tracked:
        print(f"FAIL: key material tracked by git: {path}")
    tally.add("no tracked key material", not tracked, ", ".join(tracked))
    print("ok: no *.key, *.pem or *.srl tracked" if not tracked else "")


CMOCKA_PASSED = re.compile(r"^\[  PASSED  \] (\d+) test")
CMOCKA_FAILED = re.compile(r"^\[  FAILED  \] (\d+) test")


def run_unit(tally, build, timeout):
    section("unit tests (cmocka)")
    # Unit binaries are the test_* executables anywhere in the build tree
    # (core units under tests/, plugin units under plugins/<name>/).
    binaries = []
    for dirpath, dirnames, filenames in os.walk(build):
        dirnames[:] = [d for d in dirnames if not d.endswith(".p") and not d.startswith("meson-")]
        for f in filenames:
            path = os.path.join(dirpath, f)
            if f.startswith("test_") and "." not in f and os.access(path, os.X_OK):
                binaries.append(path)
    binaries.sort()
    if not binaries:
        tally.add("unit binaries exist", False, f"none under {build}")
        return
    for path in binaries:
        name = os.path.relpath(path, build)
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="stdout")
        try:
            proc = subprocess.run([path], capture_output=True, text=True,
                                  timeout=timeout, env=env, cwd=ROOT)
        except subprocess.TimeoutExpired:
            tally.add(name, False, "timed out")
            print(f"FAIL {name}: timed out")
            continue
        passed = failed = 0
        # cmocka prints its summary lines on stderr.
        for line in (proc.stdout + "\n" + proc.stderr).splitlines():
            m = CMOCKA_PASSED.match(line)
            if m:
                passed += int(m.group(1))
            m = CMOCKA_FAILED.match(line)
            if m:
                failed += int(m.group(1))
        if proc.returncode != 0 and failed == 0:
            failed = 1  # crashed before cmocka could count
        tally.passed += passed
        tally.failed += failed
        status = "ok" if failed == 0 else "FAIL"
        print(f"{status} {name}: {passed} passed, {failed} failed")
        if failed:
            tally.failures.append((name, proc.stdout[-4000:] + proc.stderr[-4000:]))
            print(proc.stdout[-4000:])
            print(proc.stderr[-4000:])


class CountingResult(unittest.TextTestResult):
    pass


def run_integration(tally, build, pattern):
    section("integration tests (real rampartd)")
    os.environ["RAMPART_BUILD"] = os.path.abspath(build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    loader = unittest.TestLoader()
    suite = loader.discover(os.path.join(ROOT, "tests", "integration"), pattern=pattern,
                            top_level_dir=os.path.join(ROOT, "tests", "integration"))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=CountingResult)
    result = runner.run(suite)
    bad = len(result.failures) + len(result.errors)
    tally.passed += result.testsRun - bad - len(result.skipped)
    tally.failed += bad
    for test, trace in result.failures + result.errors:
        tally.failures.append((str(test), trace))


def run_fuzz_smoke(tally, fuzz_build, seconds):
    section(f"fuzz smoke ({seconds}s per target)")
    for target in ("fuzz_http_parser", "fuzz_config", "fuzz_tls_session"):
        exe = os.path.abspath(os.path.join(fuzz_build, "tests", target))
        if not os.access(exe, os.X_OK):
            tally.add(target, False, f"{exe} not built")
            print(f"FAIL {target}: not built")
            continue
        corpus_src = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
        args = [exe, f"-max_total_time={seconds}", "-max_len=65536", "-timeout=10", "-rss_limit_mb=2048"]
        # libFuzzer adds new inputs to its first corpus directory: give it a
        # scratch copy so the repository's seeds stay as committed.
        scratch = subprocess.run(["mktemp", "-d"], capture_output=True, text=True).stdout.strip()
        if os.path.isdir(corpus_src):
            corpus = os.path.join(scratch, "corpus")
            shutil.copytree(corpus_src, corpus)
            args.append(corpus)
        proc = subprocess.run(args, capture_output=True, text=True, cwd=scratch,
                              env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
        ok = proc.returncode == 0
        runs = re.findall(r"Done (\d+) runs", proc.stderr)
        print(f"{'ok' if ok else 'FAIL'} {target}: {runs[-1] if runs else '?'} runs")
        if not ok:
            print(proc.stderr[-6000:])
        tally.add(target, ok, proc.stderr[-3000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--fuzz-build", default="build-fuzz")
    ap.add_argument("--no-fuzz", action="store_true")
    ap.add_argument("--fuzz-seconds", type=int, default=int(os.environ.get("RAMPART_FUZZ_SECONDS", "20")))
    ap.add_argument("--slow-factor", type=float, default=1.0,
                    help="stretch integration timeouts (sanitizer builds)")
    ap.add_argument("--pattern", default="test_*.py", help="integration test files to run")
    ap.add_argument("--only", choices=["unit", "integration", "fuzz"], default=None)
    args = ap.parse_args()
    os.environ["RAMPART_SLOW_FACTOR"] = str(args.slow_factor)
    started = time.monotonic()
    tally = Tally()
    if args.only is None:
        guard_secrets(tally)
    if args.only in (None, "unit"):
        run_unit(tally, args.build, timeout=300 * args.slow_factor)
    if args.only in (None, "integration"):
        run_integration(tally, args.build, args.pattern)
    if args.only in (None, "fuzz") and not args.no_fuzz:
        run_fuzz_smoke(tally, args.fuzz_build, args.fuzz_seconds)
    section("summary")
    for name, _ in tally.failures:
        print(f"failed: {name}")
    print(f"took {time.monotonic() - started:.0f}s")
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 0 if tally.failed == 0 and tally.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
