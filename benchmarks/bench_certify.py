"""How long the conformance kit's ``certify`` profile takes against the reference proxy.

    python benchmarks/bench_certify.py [--workers 1 2] [--seed 7]

Prints the wall time of one ``vcbsim-conformance --profile certify`` run per worker count
(the run is the one ``tests/unit/conformance/test_parallel.py`` checks for correctness; its
duration used to be asserted there, and failed on a busy two-core machine at 125-207 s).
No assertions: figures are printed for people and for the benchmark report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time

from vcbsim.conformance._cli import main_conformance


def certify_seconds(workers: int, seed: int) -> tuple[float, int]:
    """Wall time of one certify run with ``workers`` processes, and its exit code."""
    with tempfile.TemporaryDirectory(prefix="vcbsim-bench-certify-") as tmp:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = main_conformance(["--profile", "certify", "--seed", str(seed), "--workers", str(workers),
                                     "--report", os.path.join(tmp, "report")])
        return time.perf_counter() - t0, code


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args()
    rows = []
    for w in ns.workers:
        secs, code = certify_seconds(w, ns.seed)
        rows.append({"workers": w, "seconds": round(secs, 1), "exit_code": code})
    if ns.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"certify profile, seed {ns.seed}, reference proxy (cpus: {os.cpu_count()})")
    for r in rows:
        print(f"  workers={r['workers']}: {r['seconds']:7.1f} s  (exit {r['exit_code']})")


if __name__ == "__main__":
    main()
