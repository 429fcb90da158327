"""Throughput and client memory of the report: local processes against a Dask cluster.

Generates N small pictures (crops of the bundled ``test_pictures/``), then runs
``kqcodec.report`` on them once with the local engine (processes) and once
with ``scheduler="local"`` (a Dask LocalCluster of the same number of worker
processes), each in a fresh Python process, and prints per engine and N the
wall time (start-up, listing, cluster start and the final table included),
pictures per second and the peak resident memory of the process that runs
the report (the client; with ``local`` the Dask scheduler lives in that
process too, so its memory is counted).  The load average before each run
is printed because the figures depend on what else the machine runs.

    python benchmarks/cluster.py [--n 1000,10000] [-k 16] [--jobs 2] [--size 64]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
import kqcodec
folder, ks, out, jobs, scheduler = sys.argv[1:]
table = kqcodec.report(folder, [int(k) for k in ks.split(",")], out=out, jobs=int(jobs),
                       scheduler=None if scheduler == "-" else scheduler)
print(json.dumps(dict(seconds=time.perf_counter() - start, rows=len(table),
                      ok=int((table["status"] == "ok").sum()),
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def make_pictures(folder, count, size, seed=0):
    """`count` PNG crops of side `size` from the bundled pictures."""
    rng = random.Random(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted((ROOT / "test_pictures").iterdir())
               if p.suffix in (".png", ".jpg")]
    for i in range(count):
        picture = sources[i % len(sources)]
        left = rng.randrange(picture.width - size)
        top = rng.randrange(picture.height - size)
        picture.crop((left, top, left + size, top + size)).save(folder / f"{i:06d}.png")


def run(folder, ks, out, jobs, scheduler):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), ks, str(out), str(jobs),
                           scheduler or "-"], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1000,10000", help="picture counts (default %(default)s)")
    parser.add_argument("-k", default="16", help="palette sizes (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(),
                        help="processes, or Dask workers (default: all cores)")
    parser.add_argument("--size", type=int, default=64, help="side of the pictures in pixels")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, --jobs {args.jobs}, -k {args.k}, "
          f"{args.size}x{args.size} PNG crops of test_pictures/")
    print(f"{'engine':<16}{'N':>7}{'seconds':>9}{'pictures/s':>12}{'client peak MB':>16}"
          f"{'rows ok':>9}{'load before':>13}")
    for count in [int(n) for n in args.n.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "pictures"
            folder.mkdir()
            make_pictures(folder, count, args.size)
            for engine, scheduler in (("local processes", None), ("dask local", "local")):
                load = os.getloadavg()[0]
                result = run(folder, args.k, Path(tmp) / f"out-{engine[0]}", args.jobs, scheduler)
                print(f"{engine:<16}{count:>7}{result['seconds']:>9.1f}"
                      f"{count / result['seconds']:>12.1f}{result['peak_mb']:>16.0f}"
                      f"{result['ok']:>9}{load:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
