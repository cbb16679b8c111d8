"""Benchmark: images/s of ``prepare --runner beam`` (DirectRunner) against the local runner.

Both encode the same 128x128 RGB PNGs (crops of the bundled photos) as colour log-DCT,
normalised with the train split's statistics (so both stages run: statistics, then
encode + write), in one process run, into fresh output folders:

(a) the local runner: ``prepare(..., runner="local", workers=N)`` (a process pool);
(b) the Beam runner: ``prepare(..., runner="beam")`` on the DirectRunner, by default in
    ``multi_processing`` mode with N workers (``--beam-options`` replaces that).

It checks that both outputs hold the same records (every array, label and count) and
prints images/s of each and the ratio (b)/(a). On one machine the local pool is the
faster: Beam adds its own serialisation, a shuffle (group by shard) and the runner's
start-up; its point is that the same pipeline runs on Flink, Spark or Dataflow.

Usage: python benchmarks/prepare_beam.py [--images 2000] [--workers 2] [--beam-options "..."]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.prepare import make_images  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="images (default: 2000)")
    parser.add_argument("--size", type=int, default=128, help="image side (default: 128)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="local pool processes and DirectRunner workers (default: all cores)")
    parser.add_argument("--beam-options", default=None,
                        help='Beam flags (default: "--direct_num_workers=N --direct_running_mode=multi_processing")')
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)

    from tfforensics.data import Encoding, as_numpy, prepare

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="prepare_beam_"))
    beam_options = args.beam_options or (f"--direct_num_workers={args.workers} "
                                         "--direct_running_mode=multi_processing")
    try:
        source = root / "src"
        if not source.exists():
            make_images(source, args.images, args.size)
        encoding = Encoding(log=True, color=True, normalize=True)
        times = {}
        outputs = {}
        for runner in ("local", "beam"):
            out = root / runner
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            outputs[runner] = prepare(source, out, encoding, workers=args.workers, seed=0, progress=False,
                                      runner=runner, beam_options=beam_options if runner == "beam" else None)
            times[runner] = time.perf_counter() - start
        local, beam = outputs["local"], outputs["beam"]
        same = local.splits == beam.splits
        for split in ("train", "val", "test"):
            (xl, yl), (xb, yb) = as_numpy(local, split), as_numpy(beam, split)
            same = same and np.array_equal(yl, yb) and np.allclose(xl, xb, rtol=0, atol=1e-6)
        rate = {runner: args.images / seconds for runner, seconds in times.items()}
        print(f"{args.images} images {args.size}x{args.size} RGB -> colour log-DCT, normalised; "
              f"{args.workers} workers; beam options: {beam_options}")
        print(f"(a) local runner:  {times['local']:7.1f} s  {rate['local']:8.1f} images/s")
        print(f"(b) Beam (Direct): {times['beam']:7.1f} s  {rate['beam']:8.1f} images/s")
        print(f"ratio (b)/(a): {rate['beam'] / rate['local']:.2f}   same records: {same}")
        return 0 if same else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
