"""Worker processes: how the pool ends, and the memory they keep."""

import multiprocessing.pool
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kqcodec.workers import run_jobs, start_pool, terminate


@pytest.fixture()
def terminations(monkeypatch):
    """Count the pools terminated rather than closed."""
    calls = []
    real = multiprocessing.pool.Pool.terminate

    def terminate(self):
        calls.append(self)
        real(self)

    monkeypatch.setattr(multiprocessing.pool.Pool, "terminate", terminate)
    return calls


def test_a_caller_stopping_after_the_last_result_lets_the_workers_go(terminations):
    jobs = [-3, -1, -2, -5]
    results = run_jobs(abs, jobs, workers=2)
    assert [next(results) for _ in jobs] == [3, 1, 2, 5]
    results.close()
    assert terminations == []



def test_stopping_early_ends_every_time(tmp_path):
    """Pools stopped with jobs in flight end, again and again.

    One SIGTERM per worker is not enough: it can arrive just before a worker
    blocks waiting for a task (the handler then stays pending), or land in a
    weakref callback that swallows its SystemExit; Pool.terminate() then
    waited forever.  Before terminate() sent SIGTERM again, about half of
    the runs of 300 such pools hung.
    """
    script = (
        "from kqcodec.workers import run_jobs\n"
        "for _ in range(120):\n"
        "    results = run_jobs(abs, [-3, -1, -2, -5], workers=2)\n"
        "    assert next(results) == 3\n"
        "    results.close()\n"
        "print('ended')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "ended\n"


def test_terminate_ends_the_workers_of_a_busy_pool():
    pool, processes = start_pool(2)
    pool.imap(time.sleep, [30, 30, 30, 30])
    time.sleep(0.5)
    terminate(pool, processes)
    pool.join()
    assert len(processes) == 2
    # Ended by SIGTERM: by its handler's SystemExit, or by the default action.
    assert {p.exitcode for p in processes} <= {128 + signal.SIGTERM, -signal.SIGTERM}


def second_encode_faults(path):
    """Minor page faults of encoding a picture at two ks, the second time in this process."""
    import resource

    from kqcodec import imageio, quantizer

    def encode():
        pixels, _ = imageio.read_picture(path)
        histogram = quantizer.prepare(pixels)
        for k in (16, 256):
            quantizer.quantize(pixels, k, histogram=histogram).to_png()

    encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    encode()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc options")
def test_workers_keep_the_memory_they_free_for_the_next_picture(pictures):
    path = str(pictures["skimage_coffee"])
    code = ("import sys; from tests.test_workers import second_encode_faults; "
            "print(second_encode_faults(sys.argv[1]))")
    alone = int(subprocess.run([sys.executable, "-c", code, path], check=True, text=True,
                               capture_output=True, cwd=Path(__file__).parents[1]).stdout)
    in_workers = list(run_jobs(second_encode_faults, [path, path], workers=2))
    # Measured: about 2,200 faults alone, 400-500 in a worker (1,100 with
    # glibc's default options, which the workers inherit from the parent).
    assert max(in_workers) < 0.35 * alone
