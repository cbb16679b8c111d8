"""Benchmark: the per-stage times of ``tfforensics reproduce`` (from its ``results.json``).

Runs ``python -m tfforensics reproduce --quick`` (or the default profile with ``--full``)
into ``--out`` and prints the stage table that ``results.json`` records (``timings_s``),
each stage's share, and the wall-clock total (``wall_s``; stages 3-10 run side by side,
so their times overlap) against the target (90 s quick, 10 min default, on 2 cores).
``--serial`` then runs the same profile again with ``--workers 1`` (the stages one after
the other, in one process) into ``OUT-serial``, checks that every number of the two
``results.json`` is equal, and prints the ratio of the wall-clock totals.
``--results FILE`` prints the table of a finished run instead of running one;
``--baseline FILE`` adds a column with the times of another run's ``results.json`` and the
ratio per stage.

    python benchmarks/reproduce_stages.py --out /tmp/quick --serial
    python benchmarks/reproduce_stages.py --full --out /tmp/full
    python benchmarks/reproduce_stages.py --results new/results.json --baseline old/results.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

TARGETS = {"quick": 90.0, "default": 600.0}


#: results.json fields that describe the run, not its results.
RUN_FIELDS = {"timings_s", "wall_s", "stage_workers", "command", "platform"}


def timings(path: Path) -> tuple[dict, str, float]:
    results = json.loads(Path(path).read_text())
    stages = results["timings_s"]
    return stages, results.get("profile", "quick"), results.get("wall_s", sum(stages.values()))


def differences(a, b, where="") -> list[str]:
    """Where two results.json differ (run fields and the runs' own paths aside)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in {**a, **b} if not (where == "" and k in RUN_FIELDS)]
        return [d for k in keys for d in (differences(a.get(k), b.get(k), f"{where}/{k}"))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, str) and isinstance(b, str) and a.startswith("/") and b.startswith("/"):
        return []  # a path into each run's own --out
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def run(out: str, full: bool, workers=None) -> Path:
    command = [sys.executable, "-m", "tfforensics", "reproduce", "--out", out, "--overwrite", "-q"]
    command += ([] if full else ["--quick"]) + ([] if workers is None else ["--workers", str(workers)])
    subprocess.run(command, check=True)
    return Path(out) / "results.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports/bench-reproduce", help="output folder of the run")
    parser.add_argument("--full", action="store_true", help="the default profile instead of --quick")
    parser.add_argument("--results", help="a finished run's results.json (no run)")
    parser.add_argument("--baseline", help="results.json of a run to compare with (ideally run beside this one)")
    parser.add_argument("--serial", action="store_true",
                        help="then run again with --workers 1 into OUT-serial: same numbers checked, wall-clock ratio")
    args = parser.parse_args()

    path = Path(args.results) if args.results else run(args.out, args.full)
    stages, profile, wall = timings(path)
    baseline, _, baseline_wall = timings(Path(args.baseline)) if args.baseline else (None, None, None)
    print(f"reproduce ({profile} profile), {path}")
    header = f"  {'stage':52s} {'seconds':>8s}"
    print(header + (f" {'baseline':>9s} {'ratio':>6s}" if baseline else ""))
    for name, seconds in stages.items():
        line = f"  {name:52s} {seconds:8.1f}"
        if baseline and name in baseline:
            line += f" {baseline[name]:9.1f} {baseline[name] / max(seconds, 0.05):5.2f}x"
        print(line)
    print(f"  {'total (wall clock)':52s} {wall:8.1f}" + (f" {baseline_wall:9.1f} {baseline_wall / wall:5.2f}x"
                                                         if baseline else ""))
    if args.serial:
        serial = run(f"{args.out}-serial", args.full, workers=1)
        serial_wall = timings(serial)[2]
        found = differences(json.loads(path.read_text()), json.loads(serial.read_text()))
        print(f"  {'total with --workers 1 (wall clock)':52s} {serial_wall:8.1f}")
        print(f"ratio --workers 1 / this run: {serial_wall / wall:5.2f}x; same numbers: {not found}")
        for line in found[:20]:
            print("  differs:", line)
    target = TARGETS[profile]
    print(f"ratio target / total: {target / wall:5.2f}x (target {target:.0f} s on 2 cores; below 1 misses it)")


if __name__ == "__main__":
    main()
