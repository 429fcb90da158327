"""Writes that never lose data: failures leave the destination as it was and no temp file."""

import contextlib
import errno
import glob
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kqcodec
from kqcodec import paletteimage, safefile
from kqcodec.errors import OutputExistsError, OutputKeptError, WriteError

from .test_cli import one_line


def temps(folder):
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


@pytest.fixture()
def failing_write(monkeypatch):
    """Make the disk full once a file's bytes are handed over: its fsync fails with ENOSPC.

    As on a file system that allocates at write-back: the bytes of the
    temporary file are written, and the disk turns out full when they are
    forced to it.
    """
    real = os.fsync

    def full(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            assert os.fstat(fd).st_size > 0  # the PNG was made before
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(safefile.os, "fsync", full)


def test_failed_write_keeps_existing_output(tmp_path, pictures, failing_write):
    dest = tmp_path / "o.png"
    dest.write_bytes(b"the previous file")
    with pytest.raises(WriteError, match="No space left"):
        kqcodec.encode(pictures["skimage_rocket"], dest, 8, force=True)
    assert dest.read_bytes() == b"the previous file"
    assert temps(tmp_path) == []


def test_failed_write_leaves_no_output(tmp_path, pictures, failing_write):
    dest = tmp_path / "o.png"
    with pytest.raises(WriteError):
        kqcodec.encode(pictures["skimage_rocket"], dest, 8)
    assert os.listdir(tmp_path) == []


def test_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    def refuse(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(safefile.os, "replace", refuse)
    monkeypatch.setattr(safefile.os, "link", refuse)
    with pytest.raises(WriteError, match="Input/output error"):
        with safefile.atomic_output(tmp_path / "x.bin", force=True) as f:
            f.write(b"data")
    assert os.listdir(tmp_path) == []


def test_output_appearing_meanwhile_is_not_replaced(tmp_path):
    dest = tmp_path / "x.bin"
    with pytest.raises(OutputKeptError):
        with safefile.atomic_output(dest) as f:
            f.write(b"new")
            dest.write_bytes(b"someone else's")
    assert dest.read_bytes() == b"someone else's"
    assert temps(tmp_path) == []


def test_only_an_existing_file_is_kept_the_input_and_a_folder_are_mistakes(tmp_path):
    # A caller tells a file that --force would replace from an output that
    # can never be written: the report counts the first kind as kept.
    existing = tmp_path / "x.png"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputKeptError):
        safefile.check_output(existing)
    for dest, source in ((existing, existing), (tmp_path, None)):
        with pytest.raises(OutputExistsError) as caught:
            safefile.check_output(dest, source=source, force=True)
        assert not isinstance(caught.value, OutputKeptError)


def test_interrupt_inside_write_removes_temp(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with safefile.atomic_output(tmp_path / "x.bin") as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_permission_denied_is_a_write_error(tmp_path, monkeypatch):
    # CI runs as root, where chmod cannot forbid anything: simulate EACCES.
    real_open = safefile.os.open

    def denied(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(safefile.os, "open", denied)
    with pytest.raises(WriteError, match="Permission denied"):
        safefile.write_bytes(tmp_path / "x.bin", b"data")
    assert os.listdir(tmp_path) == []


def test_write_bytes_keeps_identical_file(tmp_path):
    dest = tmp_path / "x.bin"
    assert safefile.write_bytes(dest, b"abc") is True
    before = os.stat(dest).st_mtime_ns
    assert safefile.write_bytes(dest, b"abc") is False
    assert os.stat(dest).st_mtime_ns == before
    with pytest.raises(OutputKeptError):
        safefile.write_bytes(dest, b"xyz")
    assert safefile.write_bytes(dest, b"xyz", force=True) is True
    assert dest.read_bytes() == b"xyz"


def test_write_bytes_racing_a_twin_writer(tmp_path, monkeypatch):
    # A retried task and the attempt it replaced write the same encoding:
    # whoever publishes second finds the same bytes, which is no conflict.
    dest = tmp_path / "x.bin"
    real_link = safefile.os.link

    def other_writer_first(src, dst):
        Path(dst).write_bytes(content)
        return real_link(src, dst)

    monkeypatch.setattr(safefile.os, "link", other_writer_first)
    content = b"abc"
    assert safefile.write_bytes(dest, b"abc") is False
    assert dest.read_bytes() == b"abc" and temps(tmp_path) == []
    dest.unlink()
    content = b"other"
    with pytest.raises(OutputKeptError):
        safefile.write_bytes(dest, b"abc")
    assert dest.read_bytes() == b"other" and temps(tmp_path) == []


def test_new_file_has_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    safefile.write_bytes(tmp_path / "x.bin", b"abc")
    assert os.stat(tmp_path / "x.bin").st_mode & 0o777 == 0o666 & ~mask


def in_foreground_until_a_file(args, out):
    """``python -m kqcodec ARGS`` in a session of its own, once it has written a PNG in `out`.

    A job started in the background by a shell ignores Ctrl-C, and so do
    its children, this test's among them when the suite itself runs in the
    background: the command gets Ctrl-C's default handling, as a job in a
    terminal's foreground has it.
    """
    proc = subprocess.Popen([sys.executable, "-m", "kqcodec", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not glob.glob(str(out / "*.png")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize("command", ["encode", "report"])
def test_ctrl_c_pressed_again_while_workers_stop_still_exits_130(tmp_path, pictures, command):
    # A second Ctrl-C (a user pressing it twice, or `timeout -s INT`, which
    # signals the process and then its group) lands while the first one
    # stops the worker processes; it must not cut that stop short.
    folder, out = tmp_path / "pics", tmp_path / "out"
    folder.mkdir()
    for i in range(8):
        (folder / f"c{i}.png").write_bytes(pictures["skimage_coffee"].read_bytes())
    args = (["encode", str(folder), "--out-dir", str(out), "-k", "256"] if command == "encode"
            else ["report", str(folder), "--out", str(out)])
    proc = in_foreground_until_a_file([*args, "--quiet", "--jobs", "2"], out)
    for _ in range(25):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.02)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the command hung after the second Ctrl-C")
    # A Ctrl-C after the command's own exit began ends it as Python ends on
    # Ctrl-C, once the work is stopped: by the signal, silently.
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    [line] = err.strip().splitlines()
    assert line == "kqcodec: interrupted" if command == "report" else re.fullmatch(
        r"kqcodec: interrupted after \d written, 0 skipped, 0 failed; .*", line), line
    assert temps(out) == []


# A Ctrl-C that lands while numpy's core imports datetime, the way a
# terminal's would: the signal raised as that import starts.
_CTRL_C_AT_IMPORT = """
import signal, sys
class Interrupt:
    def find_spec(self, name, path, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            signal.raise_signal(signal.SIGINT)
sys.meta_path.insert(0, Interrupt())
from kqcodec.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", ["encode", "decode", "report"])
def test_ctrl_c_while_numpy_loads_is_an_interruption(tmp_path, pictures, command):
    # numpy turned it into an ImportError blaming the installation: 55
    # lines and exit 1.
    src = pictures["skimage_coffee"]
    args = {"encode": ["encode", str(src), str(tmp_path / "o.png"), "-k", "4"],
            "decode": ["decode", str(src), str(tmp_path / "o.png")],
            "report": ["report", str(src.parent), "--out", str(tmp_path / "out"), "-k", "4",
                       "--quiet"]}[command]
    done = subprocess.run([sys.executable, "-c", _CTRL_C_AT_IMPORT, "datetime", *args],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (done.returncode, done.stderr) == (130, "kqcodec: interrupted\n")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "out").exists()


def test_ctrl_c_during_report_exits_130_and_leaves_no_temp(tmp_path, pictures):
    folder, out = tmp_path / "pics", tmp_path / "out"
    folder.mkdir()
    for i in range(6):
        (folder / f"c{i}.png").write_bytes(pictures["skimage_coffee"].read_bytes())
    proc = in_foreground_until_a_file(["report", str(folder), "--out", str(out), "--quiet",
                                       "--jobs", "2"], out)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _, err = proc.communicate(timeout=60)
    # 130, or the end by SIGINT itself, which a shell reports as 130 too
    # (seen once in some 150 runs, after the same one line).
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err,
                                                      sorted(os.listdir(out)))
    assert err.strip().splitlines() == ["kqcodec: interrupted"]
    assert temps(out) == []
    # Every file left is complete.
    for path in glob.glob(str(out / "*.png")):
        assert kqcodec.decode(path).shape[:2] == (400, 600)


def test_ctrl_c_during_a_batch_says_what_was_done_and_the_same_command_finishes(tmp_path,
                                                                                pictures):
    folder, out = tmp_path / "pics", tmp_path / "out"
    folder.mkdir()
    for i in range(10):
        (folder / f"c{i}.png").write_bytes(pictures["skimage_coffee"].read_bytes())
    args = ["encode", str(folder), "--out-dir", str(out), "-k", "256", "-v", "--jobs", "1"]
    proc = in_foreground_until_a_file(args, out)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    lines = err.strip().splitlines()
    said = [line.split(":")[0] for line in lines[:-1]]
    assert lines[-1] == (f"kqcodec: interrupted after {len(said)} written, 0 skipped, 0 failed; "
                         "the same command again finishes the batch, keeping the files written")
    assert 1 <= len(said) < 10
    assert temps(out) == []
    # Every file said written is there, and kept as it is by the run that finishes.
    kept = {path: Path(path).stat() for path in said}
    again = subprocess.run([sys.executable, "-m", "kqcodec", *args[:-3]], capture_output=True,
                           text=True, timeout=120)
    assert (again.returncode, again.stderr) == (0, "kqcodec: 10 written, 0 skipped, 0 failed\n")
    for path, before in kept.items():
        after = Path(path).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(os.listdir(out)) == sorted(f"c{i}.png" for i in range(10))


def test_a_signal_as_the_temporary_file_is_made_leaves_none(tmp_path, pictures, monkeypatch):
    # Python runs a signal's handler as soon as a call returns: its
    # exception can come after the file exists and before anything else.
    real = os.open

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(safefile.os, "open", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kqcodec.encode(pictures["skimage_rocket"], tmp_path / "a.png", 8)
    assert list(tmp_path.iterdir()) == []


def test_no_temporary_file_exists_while_the_png_is_made(tmp_path, pictures, monkeypatch):
    # A process killed meanwhile (out of memory, kill -9) leaves nothing behind.
    real, seen = paletteimage.PaletteImage.to_png, []

    def making(self, *args, **kwargs):
        seen.append(sorted(os.listdir(tmp_path)))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(paletteimage.PaletteImage, "to_png", making)
    kqcodec.encode(pictures["skimage_rocket"], tmp_path / "a.png", 8)
    kqcodec.quantize(kqcodec.read_image(pictures["skimage_rocket"]), 8).save(tmp_path / "b.png")
    assert seen == [[], ["a.png"]]


def test_a_link_that_leads_nowhere_takes_its_name(tmp_path, pictures):
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "round.png")
    (tmp_path / "round.png").symlink_to(tmp_path / "loop.png")
    for name in ("dangling.png", "loop.png"):
        dest = tmp_path / name
        # Refused before any work, as an existing file is...
        with pytest.raises(OutputKeptError, match="a symbolic link that leads nowhere"):
            safefile.check_output(dest)
        with pytest.raises(OutputKeptError):
            kqcodec.encode(pictures["skimage_rocket"], dest, 8)
        assert dest.is_symlink()
        # ... and replaced, the link itself, with force.
        assert kqcodec.encode(pictures["skimage_rocket"], dest, 8, force=True).k == 8
        assert not dest.is_symlink() and dest.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "nowhere.png").exists() and temps(tmp_path) == []


def test_an_output_folder_whose_links_loop_is_one_line(tmp_path, pictures):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for args in (["report", str(pictures["skimage_rocket"].parent), "-k", "2", "--out"],
                 ["encode", str(pictures["skimage_rocket"]), "-k", "2", "--out-dir"]):
        proc = subprocess.run([sys.executable, "-m", "kqcodec", *args, str(tmp_path / "a")],
                              capture_output=True, text=True)
        assert proc.returncode == 74
        assert proc.stderr.startswith(f"kqcodec: error: {tmp_path / 'a'}: cannot write there: ")
        assert "loop" in one_line(proc.stderr)
