"""Benchmark: the per-stage times of ``tfforensics reproduce`` (from its ``results.json``).

Runs ``python -m tfforensics reproduce --quick`` (or the default profile with ``--full``)
into ``--out`` and prints the stage table that ``results.json`` records (``timings_s``),
each stage's share, and the total against the target (90 s quick, 10 min default, on
2 cores). ``--results FILE`` prints the table of a finished run instead of running one;
``--baseline FILE`` adds a column with the times of another run's ``results.json`` and the
ratio per stage: run the two side by side (e.g. two checkouts at once) so that both see the
same machine load, as the figures in benchmarks/README.md were taken.

    python benchmarks/reproduce_stages.py --out /tmp/quick
    python benchmarks/reproduce_stages.py --results new/results.json --baseline old/results.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

TARGETS = {"quick": 90.0, "default": 600.0}


def timings(path: Path) -> tuple[dict, str]:
    results = json.loads(Path(path).read_text())
    return results["timings_s"], results.get("profile", "quick")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/bench-reproduce", help="output folder of the run")
    parser.add_argument("--full", action="store_true", help="the default profile instead of --quick")
    parser.add_argument("--results", help="a finished run's results.json (no run)")
    parser.add_argument("--baseline", help="results.json of a run to compare with (ideally run beside this one)")
    args = parser.parse_args()

    if args.results:
        path = Path(args.results)
    else:
        command = [sys.executable, "-m", "tfforensics", "reproduce", "--out", args.out, "--overwrite", "-q"]
        subprocess.run(command + ([] if args.full else ["--quick"]), check=True)
        path = Path(args.out) / "results.json"
    stages, profile = timings(path)
    baseline = timings(Path(args.baseline))[0] if args.baseline else None
    total = sum(stages.values())
    print(f"reproduce ({profile} profile), {path}")
    header = f"  {'stage':52s} {'seconds':>8s} {'share':>6s}"
    print(header + (f" {'baseline':>9s} {'ratio':>6s}" if baseline else ""))
    for name, seconds in stages.items():
        line = f"  {name:52s} {seconds:8.1f} {seconds / total:6.1%}"
        if baseline and name in baseline:
            line += f" {baseline[name]:9.1f} {baseline[name] / max(seconds, 0.05):5.2f}x"
        print(line)
    line = f"  {'total':52s} {total:8.1f} {1:6.0%}"
    if baseline:
        line += f" {sum(baseline.values()):9.1f} {sum(baseline.values()) / total:5.2f}x"
    print(line)
    target = TARGETS[profile]
    print(f"ratio target / total: {target / total:5.2f}x (target {target:.0f} s on 2 cores; below 1 misses it)")


if __name__ == "__main__":
    main()
