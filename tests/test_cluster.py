"""The report on a Dask cluster: same table, a killed worker, a stopped client, paths.

The tests start a LocalCluster of two worker processes and run the command
against its tcp:// address, as against a remote scheduler.  To stop a task
at a chosen point, the workers' report job is wrapped (sent by value with
``client.run``): it logs each call to a file and, for a picture named in a
``hold-<name>`` file, writes its first encoding, then its pid, and waits.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import cloudpickle
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from PIL import Image

import kqcodec
from kqcodec import journal, table as tables

KS = (2, 16)
NAMES = [f"p{i}.png" for i in range(5)]

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pictures):
    root = tmp_path_factory.mktemp("pics")
    photo = Image.open(pictures["skimage_coffee"])
    for i, name in enumerate(NAMES):
        photo.crop((i * 90, 40, i * 90 + 96, 120)).save(root / name)
    return root


@pytest.fixture(scope="module")
def local_table(folder, tmp_path_factory):
    return kqcodec.report(folder, KS, out=tmp_path_factory.mktemp("local"), jobs=1)


def on_both_workers(client, function, *args):
    """Run `function` on the two workers, once a replaced worker has joined."""
    deadline = time.monotonic() + 60
    while True:
        try:
            client.wait_for_workers(2, timeout=60)
            results = client.run(function, *args)
            if len(results) == 2:
                return results
        except OSError:
            pass  # a dead worker not yet removed from the scheduler
        assert time.monotonic() < deadline, "the cluster did not come back to two workers"
        time.sleep(0.1)


@pytest.fixture()
def control(client, tmp_path):
    """A folder steering the wrapped job on every worker."""
    path = tmp_path / "control"
    path.mkdir()
    on_both_workers(client, _wrap_job, str(path))
    yield path
    on_both_workers(client, _unwrap_job)


def _wrap_job(control):
    from kqcodec import reporting

    real = getattr(reporting, "_unwrapped_job", reporting._report_job)
    reporting._unwrapped_job = real

    def job(args):
        path, kwargs = args
        name = kwargs["name"]
        with open(os.path.join(control, "calls"), "a") as log:
            log.write(f"{name} {','.join(map(str, kwargs['ks']))}\n")
        hold = os.path.join(control, f"hold-{name}")
        if os.path.exists(hold):
            real((path, dict(kwargs, ks=kwargs["ks"][:1])))
            note = os.path.join(control, f"pid-{name}")
            with open(note + ".tmp", "w") as stream:
                stream.write(str(os.getpid()))
            os.rename(note + ".tmp", note)
            deadline = time.monotonic() + 60
            while os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.02)
        return real(args)

    reporting._report_job = job
    return os.getpid()


def _unwrap_job():
    from kqcodec import reporting

    reporting._report_job = getattr(reporting, "_unwrapped_job", reporting._report_job)
    return os.getpid()


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def command(*args):
    return [sys.executable, "-m", "kqcodec", "report", *map(str, args)]


def same_table(a, b):
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def calls(control):
    path = control / "calls"
    return sorted(path.read_text().splitlines()) if path.exists() else []


def test_the_api_with_a_local_cluster(folder, local_table, tmp_path, capsys):
    messages = []
    table = kqcodec.report(folder, KS, out=tmp_path, scheduler="local", jobs=1,
                           announce=messages.append)
    same_table(table, local_table)
    assert len(messages) == 1 and messages[0].startswith("Dask dashboard: http")


def test_a_killed_worker_loses_and_repeats_nothing(client, folder, local_table, control,
                                                    tmp_path):
    (control / "hold-p1.png").touch()
    out, csv = tmp_path / "out", tmp_path / "t.csv"
    run = subprocess.Popen(command(folder, "-k", "2,16", "--out", out, "--quiet", "--csv", csv,
                                   "--scheduler", client.scheduler.address),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (control / "pid-p1.png").exists())
        pid = int((control / "pid-p1.png").read_text())
        # Mid-picture: its k=2 encoding is written, k=16 is not.
        assert (out / "p1_k2.png").exists() and not (out / "p1_k16.png").exists()
        os.kill(pid, signal.SIGKILL)
        (control / "hold-p1.png").unlink()
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, err
    table = tables.read_csv(out / journal.FILENAME)
    assert not table.duplicated(["image", "k"]).any()
    same_table(table, local_table)
    same_table(tables.read_csv(csv), local_table)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(
        f"{n[:-4]}_k{k}.png" for n in NAMES for k in KS)
    # The killed process was replaced by a new one.
    assert pid not in on_both_workers(client, os.getpid).values()


def test_a_stopped_client_resumes_with_only_the_missing_pictures(client, folder, local_table,
                                                                  control, tmp_path):
    (control / "hold-p3.png").touch()
    out = tmp_path / "out"
    store = out / journal.FILENAME
    run = subprocess.Popen(command(folder, "-k", "2,16", "--out", out, "--quiet",
                                   "--scheduler", client.scheduler.address),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # While p3 is held, the other worker finishes the four others; p3
        # may start a moment after their rows are written.
        wait_for(lambda: store.exists() and len(store.read_text().splitlines()) == 1 + 4 * 2)
        wait_for(lambda: (control / "pid-p3.png").exists())
        run.kill()
        run.wait(timeout=30)
    finally:
        run.kill()
    # The held task goes on without its client: let it end, and leave a
    # line cut short by the crash.
    (control / "hold-p3.png").unlink()
    wait_for(lambda: (out / "p3_k16.png").exists())
    wait_for(lambda: not any(client.processing().values()))
    with open(store, "a") as stream:
        stream.write("p3.png,96,80,16")
    (control / "calls").unlink()
    proc = subprocess.run(command(folder, "-k", "2,16", "--out", out, "--quiet", "--resume",
                                  "--scheduler", client.scheduler.address),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert calls(control) == ["p3.png 2,16"]
    same_table(tables.read_csv(store), local_table)


def test_a_folder_the_workers_cannot_see_is_one_line(client, pictures, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to hide a folder from the workers")
    # The command runs in its own mount namespace, where a tmpfs holds the
    # pictures; the workers, outside it, see an empty folder at that path.
    private = tmp_path / "private"
    private.mkdir()
    pics = private / "pics"
    script = (f"mount -t tmpfs none {private} && mkdir {pics} && "
              f"cp {pictures['mpl_present_rgba']} {pics}/ && "
              + " ".join(command(pics, "-k", "2", "--out", tmp_path / "out", "--quiet",
                                 "--scheduler", client.scheduler.address)))
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    if "mount" in proc.stderr and proc.returncode != 66:
        pytest.skip(f"cannot make a mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 66, proc.stderr
    assert proc.stderr.startswith(f"kqcodec: error: {pics}: not found by 2 of 2 Dask workers")
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "out" / journal.FILENAME).exists()


def test_the_local_engine_never_imports_dask(folder, tmp_path):
    code = ("import sys; from kqcodec.cli import main; "
            f"code = main(['report', {str(folder)!r}, '-k', '2', '--out', {str(tmp_path)!r}, "
            "'--quiet', '--jobs', '1', '--format', 'csv']); "
            "sys.exit(code or 10 * any(m.split('.')[0] in ('dask', 'distributed') "
            "for m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_scheduler_without_dask_is_a_usage_error(folder, tmp_path):
    code = ("import sys; sys.modules['distributed'] = sys.modules['dask'] = None; "
            "from kqcodec.cli import main; "
            f"sys.exit(main(['report', {str(folder)!r}, '--out', {str(tmp_path)!r}, "
            "'--scheduler', 'local']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == ("kqcodec: error: the Dask engine needs the dask extra: "
                           "pip install 'kqcodec[dask]'\n")
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_not_running_is_one_line_and_leaves_no_options(folder, tmp_path):
    # A port nothing listens on: bound, then freed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2",
                           "--out", str(out), "--scheduler", f"tcp://127.0.0.1:{port}"],
                          capture_output=True, text=True)
    assert proc.returncode == 66
    assert proc.stderr == (f"kqcodec: error: tcp://127.0.0.1:{port}: cannot reach the Dask "
                           "scheduler: connection refused (is it running?)\n")
    # Nothing was started: no options file to pair with another run's table.
    assert not out.exists() or list(out.iterdir()) == []


def test_error_rows_name_files_as_the_local_engine_does(client, tmp_path, monkeypatch, pictures):
    # The workers get absolute paths; the table says them as they were given.
    pics = tmp_path / "pics"
    pics.mkdir()
    data = pictures["sklearn_china"].read_bytes()
    (pics / "broken.jpg").write_bytes(data[: len(data) // 3])
    Image.open(pictures["skimage_coffee"]).crop((0, 0, 40, 30)).save(pics / "a.png")
    monkeypatch.chdir(tmp_path)
    local = kqcodec.report("pics", [4], out="local", jobs=1)
    remote = kqcodec.report("pics", [4], out="remote", jobs=1, scheduler=client.scheduler.address)
    assert list(local["error"]) == list(remote["error"])
    assert any(error.startswith("pics/broken.jpg: ") for error in remote["error"])
