"""Worker processes: how the pool ends, and the memory they keep."""

import multiprocessing.pool
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kqcodec.errors import KqcodecError
from kqcodec.workers import run_jobs, start_pool, stopping_once, terminate


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


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


@pytest.fixture(params=[(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)],
                ids=["SIGINT", "SIGTERM"])
def handled(request):
    """A signal this process handles as the command does, and the exception it raises.

    Set here: a suite run in the background by a shell inherits Ctrl-C ignored.
    """
    signum, error = request.param
    saved = signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                          else _exit_on_term)
    yield signum, error
    signal.signal(signum, saved)


def _signal_lost(signum, error):
    """Send `signum` to this process, and drop its exception as some code does."""
    try:
        os.kill(os.getpid(), signum)
        time.sleep(1)  # not reached: the handler runs as kill returns
    except error:
        pass


def test_a_signal_whose_exception_was_lost_is_raised_by_the_next(handled):
    signum, error = handled
    with pytest.raises(error):
        with stopping_once():
            _signal_lost(signum, error)
            os.kill(os.getpid(), signum)
            time.sleep(1)
            pytest.fail("the second signal was ignored")


def test_a_signal_whose_exception_was_lost_is_raised_as_the_block_ends(handled):
    signum, error = handled
    went_on = []
    with pytest.raises(error):
        with stopping_once():
            _signal_lost(signum, error)
            went_on.append(True)
    assert went_on == [True]
    assert signal.getsignal(signum) in (signal.default_int_handler, _exit_on_term)


def test_a_handler_that_raises_nothing_is_called_once_per_signal():
    calls = []
    saved = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with stopping_once():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        assert calls == [signal.SIGTERM]
        with stopping_once():
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.01)
        assert calls == [signal.SIGTERM] * 3
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_a_signal_while_the_first_one_stops_the_work_is_ignored(handled):
    signum, error = handled
    stopped = []
    with pytest.raises(error) as info:
        with stopping_once():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(1)
            finally:
                # The stop: the first signal's exception is being handled.
                for other in (signal.SIGINT, signal.SIGTERM):
                    if callable(signal.getsignal(other)):
                        os.kill(os.getpid(), other)
                stopped.append(True)
    assert stopped == [True]
    assert info.value.__context__ is None  # the first signal's exception, not a later one's


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


def test_terminate_ends_a_pool_whose_result_lock_a_dead_worker_kept():
    """A worker that ends holding the result queue's lock does not hang the pool's end.

    The lock is taken here and never given back, as by a worker whose
    SystemExit came between taking it and the block that gives it back.
    """
    pool, processes = start_pool(2)
    assert pool.map(abs, [-1, -2]) == [1, 2]
    assert pool._outqueue._wlock.acquire(timeout=5)
    ender = threading.Thread(target=terminate, args=(pool, processes), daemon=True)
    ender.start()
    ender.join(30)
    assert not ender.is_alive()
    assert all(p.exitcode is not None for p in processes)


def test_terminate_ends_the_workers_of_a_busy_pool():
    pool, processes = start_pool(2)
    pool.imap(time.sleep, [30, 30, 30, 30])
    time.sleep(0.5)
    terminate(pool, processes)
    pool.join()
    assert len(processes) == 2
    # Ended by SIGTERM: by its handler's SystemExit, or by the default action.
    assert {p.exitcode for p in processes} <= {128 + signal.SIGTERM, -signal.SIGTERM}


def second_block_faults(_=None):
    """Minor page faults of writing a 20 MB block from malloc, after one was freed in this process."""
    import ctypes
    import resource

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 20 << 20

    def block():
        address = libc.malloc(size)
        assert address
        ctypes.memset(address, 1, size)
        libc.free(address)

    block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc options")
def test_workers_keep_the_memory_they_free_for_the_next_picture():
    code = ("from tests.test_workers import second_block_faults; "
            "print(second_block_faults())")
    alone = int(subprocess.run([sys.executable, "-c", code], check=True, text=True,
                               capture_output=True, cwd=Path(__file__).parents[1]).stdout)
    in_workers = list(run_jobs(second_block_faults, [0, 1], workers=2))
    # Measured: 5,119 faults alone (glibc gives the block back, then maps
    # it afresh: a fault per 4 KB page), 0 in a worker, which keeps it.
    assert alone > 1000
    assert max(in_workers) < 0.1 * alone


def parent_death_signal(_):
    """The signal Linux sends this process when its parent ends (prctl PR_GET_PDEATHSIG)."""
    import ctypes

    value = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)
    return value.value


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's prctl")
def test_workers_end_when_their_parent_is_killed(tmp_path):
    assert set(run_jobs(parent_death_signal, [0, 1], workers=2)) == {signal.SIGTERM}
    # A parent killed outright: its workers, each at a long task, end too.
    code = ("import time; from kqcodec.workers import run_jobs; "
            "list(run_jobs(time.sleep, [60, 60], workers=2))")
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while len(children(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = children(parent.pid)
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_a_batch_ends_whatever_starts_its_workers(tmp_path, method, pictures):
    # Under forkserver a worker's parent is the fork server, not the pool's process.
    code = (f"import multiprocessing; multiprocessing.set_start_method({method!r}); "
            "from kqcodec import batch; "
            f"print(sorted(o.status for o in batch.encode_batch([{str(pictures['skimage_rocket'])!r}, "
            f"{str(pictures['mpl_present_rgba'])!r}], {str(tmp_path)!r}, 8, jobs=2)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['written', 'written']"


@pytest.fixture
def deadline():
    """Fail a test still running after 60 s (what hangs should fail, not stop the suite)."""
    def late(signum, frame):
        raise TimeoutError("still running after 60 s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def killed_on_negative(job):
    """``10 * job``; a negative job kills its worker, as the out-of-memory killer would."""
    if job < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return 10 * job


def test_a_job_whose_worker_is_killed_is_lost_and_the_others_come_back(deadline):
    # multiprocessing.Pool replaces the dead worker but never returns its
    # job: run_jobs waited for it forever.
    results = run_jobs(killed_on_negative, [1, 2, -1, 3, 4], workers=2,
                       lost=lambda job: ("lost", job))
    assert list(results) == [10, 20, ("lost", -1), 30, 40]


def test_a_killed_worker_without_a_stand_in_is_an_error(deadline):
    with pytest.raises(KqcodecError, match="worker process ended without its result"):
        list(run_jobs(killed_on_negative, [1, -1, 2], workers=2))


@pytest.mark.parametrize("shared", [False, True])
def test_a_batch_goes_on_past_a_picture_whose_worker_is_killed(tmp_path, monkeypatch, pictures,
                                                             shared, deadline):
    from kqcodec import batch, codec

    doomed = pictures["mpl_present_rgba"]
    step = "histogram_of" if shared else "encode"
    real = getattr(codec, step)

    def killed_on_doomed(source, *args, **kwargs):
        if Path(source) == doomed:
            if not shared:  # killed while writing: atomic_output's temporary file stays
                (tmp_path / "out" / ".mpl_present_rgba.png.0badf00d.tmp").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(codec, step, killed_on_doomed)  # the forked workers inherit it
    inputs = [pictures["skimage_rocket"], doomed, pictures["skimage_coffee"]]
    outcomes = list(batch.encode_batch(inputs, tmp_path / "out", 8, jobs=2, shared=shared))
    assert [o.status for o in outcomes] == ["written", "failed", "written"]
    assert outcomes[1].message.startswith(f"{doomed}: the process ")
    assert "killed" in outcomes[1].message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "skimage_coffee.png", "skimage_rocket.png"]  # and no temporary file


@pytest.mark.parametrize("target", [None, 30.0])
def test_a_report_goes_on_past_a_picture_whose_worker_is_killed(tmp_path, monkeypatch, pictures,
                                                                 target, deadline):
    # The report's pool waited forever for the picture of a killed worker,
    # and the temporary files of the encodings it was writing stayed.
    import shutil

    from kqcodec import imagereport, reporting

    pics, out = tmp_path / "pics", tmp_path / "out"
    pics.mkdir()
    out.mkdir()
    for stem in ("mpl_present_rgba", "skimage_coffee", "skimage_rocket"):
        shutil.copy(pictures[stem], pics)
    # Not the killed job's: another picture's, and a file of the user's.
    others = [".skimage_rocket_k5.png.0badf00d.tmp", ".skimage_coffee_k4.png.0badf00d.tmpx"]
    for name in others:
        (out / name).write_bytes(b"not ours")
    real = imagereport.picture_rows

    def killed_on_coffee(path, *args, **kwargs):
        if Path(path).stem == "skimage_coffee":
            # Killed while writing: atomic_output's temporary files stay.
            (out / ".skimage_coffee_k4.png.0badf00d.tmp").write_bytes(b"half")
            (out / ".skimage_coffee_k37_psnr30.png.12345678.tmp").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imagereport, "picture_rows", killed_on_coffee)  # the forked workers inherit it
    table = reporting.report(pics, [4], out=out, jobs=2, target_psnr=target)
    errors = table[table.error.fillna("") != ""]
    assert sorted(set(table.image)) == ["mpl_present_rgba.png", "skimage_coffee.png",
                                        "skimage_rocket.jpg"]
    assert list(errors.image) == ["skimage_coffee.png"]
    assert "ended without a result (killed" in errors.error.iloc[0]
    assert sorted(p.name for p in out.glob("*_k4.png")) == [
        "mpl_present_rgba_k4.png", "skimage_rocket_k4.png"]
    left = sorted(p.name for p in out.glob(".*"))
    # The search's temporary file is the killed job's only when it searched.
    assert left == sorted(others + ([] if target else [".skimage_coffee_k37_psnr30.png.12345678.tmp"]))


def killed_now():
    os.kill(os.getpid(), signal.SIGKILL)


class KilledWhenUnpickled:
    """A job whose unpickling kills its worker: as a kill before the job starts would."""

    def __reduce__(self):
        return killed_now, ()


def same(job):
    return job


def test_a_worker_killed_before_its_job_starts_loses_only_that_job(deadline):
    # The job said which process ran it only once it ran: killed while its
    # job was unpickled (0.2 s under spawn, importing modules), the worker
    # left a job no one was known to run, waited for forever.
    bomb = KilledWhenUnpickled()
    results = list(run_jobs(same, [1, bomb, 3], workers=2, lost=lambda job: ("lost", job)))
    assert results == [1, ("lost", bomb), 3]


def failing_on_two(job):
    if job == 2:
        raise ValueError("two")
    time.sleep(0.5 if job == 1 else 0)
    return job


def test_a_job_s_exception_comes_after_the_results_before_it(deadline):
    results = run_jobs(failing_on_two, [1, 2, 3], workers=2)
    assert next(results) == 1
    with pytest.raises(ValueError, match="two"):
        next(results)
