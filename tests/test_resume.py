"""The table written as it grows, and --resume: nothing done twice, nothing lost."""

import errno
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

import kqcodec
from kqcodec import imagereport, journal, reporting, scan, table as tables
from kqcodec.errors import OutputExistsError, WriteError

KS = (2, 16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pictures):
    """Four small crops of a real photo and one truncated JPEG."""
    root = tmp_path_factory.mktemp("pics")
    photo = Image.open(pictures["skimage_coffee"])
    for i in range(4):
        photo.crop((i * 100, 50, i * 100 + 96, 130)).save(root / f"p{i}.png")
    data = pictures["sklearn_china"].read_bytes()
    (root / "p9_broken.jpg").write_bytes(data[: len(data) // 3])
    return root


@pytest.fixture(scope="module")
def whole(folder, tmp_path_factory):
    """The table of an uninterrupted run."""
    return kqcodec.report(folder, KS, out=tmp_path_factory.mktemp("whole"), jobs=1)


def same_table(a, b):
    """Equal apart from the time each encoding took."""
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


@pytest.fixture()
def calls(monkeypatch):
    """Record the (picture, ks) each job is given."""
    seen = []
    real = reporting._report_job

    def recording(job):
        seen.append((job[1]["name"], tuple(job[1]["ks"])))
        return real(job)

    monkeypatch.setattr(reporting, "_report_job", recording)
    return seen


def test_the_file_holds_the_table(whole, folder, tmp_path):
    table = kqcodec.report(folder, KS, out=tmp_path, jobs=2)
    same_table(table, whole)
    same_table(tables.read_csv(tmp_path / journal.FILENAME), table)
    assert not table.duplicated(["image", "k"]).any()


def test_interrupted_run_resumes_with_only_the_missing_pairs(folder, whole, tmp_path,
                                                             monkeypatch, calls):
    real = imagereport.picture_rows

    def interrupt_third(path, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imagereport, "picture_rows", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        kqcodec.report(folder, KS, out=tmp_path, jobs=1)
    # The rows of the two finished pictures were on disk already.
    partial = tables.read_csv(tmp_path / journal.FILENAME)
    assert sorted(set(partial["image"])) == ["p0.png", "p1.png"] and len(partial) == 4
    monkeypatch.setattr(imagereport, "picture_rows", real)
    del calls[:]
    table = kqcodec.report(folder, KS, out=tmp_path, jobs=1, resume=True)
    assert calls == [("p2.png", KS), ("p3.png", KS), ("p9_broken.jpg", KS)]
    same_table(table, whole)
    same_table(tables.read_csv(tmp_path / journal.FILENAME), whole)
    # Resuming a finished run only tries the failures again.
    del calls[:]
    same_table(kqcodec.report(folder, KS, out=tmp_path, jobs=1, resume=True), whole)
    assert calls == [("p9_broken.jpg", KS)]


def test_a_run_stopped_before_its_first_row_resumes(folder, whole, tmp_path, monkeypatch):
    real = imagereport.picture_rows

    def interrupt(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(imagereport, "picture_rows", interrupt)
    with pytest.raises(KeyboardInterrupt):
        kqcodec.report(folder, KS, out=tmp_path, jobs=1)
    assert len((tmp_path / journal.FILENAME).read_text().splitlines()) == 1  # the header
    monkeypatch.setattr(imagereport, "picture_rows", real)
    same_table(kqcodec.report(folder, KS, out=tmp_path, jobs=1, resume=True), whole)


def test_a_resume_with_nothing_left_gives_only_what_is_asked(folder, tmp_path, calls):
    good = tmp_path / "good"
    good.mkdir()
    for name in ("p0.png", "p1.png", "p2.png"):
        (good / name).write_bytes((folder / name).read_bytes())
    out = tmp_path / "out"
    first = kqcodec.report(good, KS, out=out, jobs=1)
    (good / "p2.png").unlink()
    del calls[:]
    table = kqcodec.report(good, [16], out=out, jobs=1, resume=True)
    assert calls == []
    expected = first[(first["k"] == 16) & (first["image"] != "p2.png")].reset_index(drop=True)
    same_table(table, expected)
    same_table(tables.read_csv(out / journal.FILENAME), expected)


def test_resume_checks_the_rows_against_the_files(folder, whole, tmp_path, calls):
    kqcodec.report(folder, [2], out=tmp_path, jobs=1)
    store = tmp_path / journal.FILENAME
    # A crash mid-append leaves a line cut short; a deleted encoding must be
    # made again; a wider k list needs only the new k.
    with open(store, "a") as stream:
        stream.write("p3.png,96,80,16,16,4,")
    (tmp_path / "p1_k2.png").unlink()
    del calls[:]
    table = kqcodec.report(folder, KS, out=tmp_path, jobs=1, resume=True)
    assert calls == [("p0.png", (16,)), ("p1.png", KS), ("p2.png", (16,)), ("p3.png", (16,)),
                     ("p9_broken.jpg", KS)]
    same_table(table, whole)


def test_without_resume_the_file_starts_anew(folder, tmp_path, calls):
    kqcodec.report(folder, [2], out=tmp_path, jobs=1)
    del calls[:]
    table = kqcodec.report(folder, [16], out=tmp_path, jobs=1)
    assert len(calls) == 5 and set(table["k"].dropna()) == {16}
    assert set(tables.read_csv(tmp_path / journal.FILENAME)["k"].dropna()) == {16}


@pytest.mark.parametrize("name, content", [(journal.FILENAME, "name,size\na.png,3\n"),
                                           (journal.FILENAME, ""),
                                           (journal.OPTIONS, '{"width": 3}\n'),
                                           (journal.OPTIONS, "not json")])
def test_a_file_no_report_wrote_is_replaced_only_with_force(folder, tmp_path, calls, name,
                                                            content):
    # `--out .` among a user's files: their own report.csv was replaced.
    (tmp_path / name).write_text(content)
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2",
                           "--out", str(tmp_path), "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 73
    assert proc.stderr == (f"kqcodec: error: {tmp_path}: holds a report.csv or "
                           "report.options.json that no report wrote; use --force to replace "
                           "them, or give another --out\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert (tmp_path / name).read_text() == content
    with pytest.raises(OutputExistsError, match="force=True"):
        kqcodec.report(folder, [2], out=tmp_path, jobs=1)
    assert calls == []
    kqcodec.report(folder, [2], out=tmp_path, jobs=1, force=True)
    assert set(tables.read_csv(tmp_path / journal.FILENAME)["k"].dropna()) == {2}
    # A report's own files are started anew without it, as before.
    kqcodec.report(folder, [4], out=tmp_path, jobs=1)
    assert set(tables.read_csv(tmp_path / journal.FILENAME)["k"].dropna()) == {4}


def test_resume_refuses_a_foreign_file_in_one_line(folder, tmp_path):
    (tmp_path / journal.FILENAME).write_text("name,size\na.png,3\n")
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2",
                           "--out", str(tmp_path), "--resume", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 65
    assert proc.stderr.startswith("kqcodec: error: ") and len(proc.stderr.splitlines()) == 1
    assert "cannot resume" in proc.stderr


def test_resume_refuses_a_table_that_is_not_text_in_one_line(folder, tmp_path):
    (tmp_path / journal.FILENAME).write_bytes(b"\x00\xff garbage\n")
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2",
                           "--out", str(tmp_path), "--resume", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 65, proc.stderr
    assert proc.stderr.startswith("kqcodec: error: ") and len(proc.stderr.splitlines()) == 1
    assert "not UTF-8" in proc.stderr


def test_a_file_name_that_is_not_utf8_is_reported_and_resumed(folder, tmp_path, calls):
    pics, out = tmp_path / "pics", tmp_path / "out"
    pics.mkdir()
    raw = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name, as old archives hold them
    (pics / raw).write_bytes((folder / "p0.png").read_bytes())
    (pics / "p1.png").write_bytes((folder / "p1.png").read_bytes())
    (pics / os.fsdecode(b"bad\xe8.png")).write_bytes(b"not a picture")
    args = [str(pics), "-k", "2", "--out", str(out), "--quiet", "--format", "json",
            "--compare", str(tmp_path / "sheet.png"), "--html", str(tmp_path / "page.html")]
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", *args],
                          capture_output=True, text=True)
    # One file that cannot be read: exit 1, every other output written.
    assert proc.returncode == 1, proc.stderr
    rows = {row["image"]: row for row in json.loads(proc.stdout)}
    assert set(rows) == {"caf\\xe9.png", "p1.png", "bad\\xe8.png"}
    assert rows["caf\\xe9.png"]["status"] == "ok"
    assert rows["caf\\xe9.png"]["encoded_file"] == "caf\\xe9_k2.png"
    assert (out / "caf\\xe9_k2.png").is_file()
    assert rows["bad\\xe8.png"]["error"].endswith("bad\\xe8.png: not a supported picture "
                                                    "(PNG, JPEG, WebP, GIF, BMP or TIFF)")
    (out / journal.FILENAME).read_bytes().decode("utf-8")  # the table is UTF-8 text
    assert Image.open(tmp_path / "sheet.png").size[0] > 0
    # The page shows the picture through a copy: no URL leads to its own name.
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert '"names":["bad\\\\xe8.png","caf\\\\xe9.png","p1.png"]' in page
    assert '"copies":{"1":"page_files/original-1.png"}' in page
    # A resumed run finds the picture under the name the table gives it.
    del calls[:]
    table = kqcodec.report(pics, (2, 16), out=out, jobs=1, resume=True)
    assert sorted(calls) == [("bad\\xe8.png", (2, 16)), ("caf\\xe9.png", (16,)), ("p1.png", (16,))]
    assert len(table) == 5


def test_a_raw_byte_and_its_escape_in_a_name_stay_two_pictures(folder, tmp_path):
    pics, out = tmp_path / "pics", tmp_path / "out"
    pics.mkdir()
    (pics / os.fsdecode(b"a\x89.png")).write_bytes((folder / "p0.png").read_bytes())
    (pics / "a\\x89.png").write_bytes((folder / "p1.png").read_bytes())  # a backslash, x, 8, 9
    table = kqcodec.report(pics, (2,), out=out, jobs=1)
    assert sorted(table["image"]) == ["a\\\\x89.png", "a\\x89.png"]
    assert (table["status"] == "ok").all()
    assert sorted(p.name for p in out.glob("*.png")) == ["a\\\\x89_k2.png", "a\\x89_k2.png"]
    for name, original in zip(table["image"], table["original_bytes"]):
        assert scan.source_path(pics, name).stat().st_size == original


def test_resume_refuses_rows_made_with_other_options(folder, tmp_path, calls):
    kqcodec.report(folder, [2], out=tmp_path, jobs=1)
    del calls[:]
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2,16",
                           "--out", str(tmp_path), "--resume", "--space", "oklab", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("kqcodec: error: ") and len(proc.stderr.splitlines()) == 1
    assert "space=rgb" in proc.stderr
    # Refused before any work: the table is still the first run's.
    assert set(tables.read_csv(tmp_path / journal.FILENAME)["k"].dropna()) == {2}
    table = kqcodec.report(folder, [2, 16], out=tmp_path, jobs=1, resume=True)
    assert sorted(name for name, _ in calls) == sorted(set(table["image"]))
    assert all(ks == (16,) for name, ks in calls if name != "p9_broken.jpg")


def test_resume_names_an_option_left_out_of_the_record_by_its_value(folder, tmp_path):
    # reuse is recorded only when on: a table made without it says reuse=0.0.
    kqcodec.report(folder, [2], out=tmp_path, jobs=1)
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "2",
                           "--out", str(tmp_path), "--resume", "--reuse", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "made with reuse=0.0;" in proc.stderr


@pytest.mark.parametrize("content", [b'garbage,"', b"image,width"])
def test_a_table_without_one_complete_line_is_refused(tmp_path, pictures, content):
    pics, out = tmp_path / "pics", tmp_path / "out"
    pics.mkdir()
    out.mkdir()
    Image.open(pictures["mpl_present_rgba"]).save(pics / "a.png")
    (out / journal.FILENAME).write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(pics), "-k", "4",
                           "--out", str(out), "--resume", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 65, proc.stderr
    assert "cannot resume from this table: it holds no complete line" in proc.stderr
    assert (out / journal.FILENAME).read_bytes() == content


def _rows(table):
    return table[["image", "k", "encoded_file", "encoded_bytes", "psnr"]].astype(str).to_dict("records")


def test_a_run_stopped_as_it_records_new_options_leaves_no_rows_of_the_old(folder, tmp_path,
                                                                           monkeypatch):
    kqcodec.report(folder, [2], out=tmp_path / "out", jobs=1)
    real = journal.save_options

    def stopped(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C right after the options are recorded

    monkeypatch.setattr(journal, "save_options", stopped)
    with pytest.raises(KeyboardInterrupt):
        kqcodec.report(folder, [2], out=tmp_path / "out", jobs=1, space="oklab")
    monkeypatch.undo()
    resumed = kqcodec.report(folder, [2], out=tmp_path / "out", jobs=1, space="oklab",
                             resume=True, force=True)
    fresh = kqcodec.report(folder, [2], out=tmp_path / "fresh", jobs=1, space="oklab")
    assert _rows(resumed) == _rows(fresh)


def test_a_picture_that_takes_the_stem_of_another_leaves_no_stale_row(tmp_path, pictures):
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.open(pictures["skimage_rocket"]).crop((0, 0, 64, 48)).save(pics / "x.png")
    kqcodec.report(pics, [4], out=tmp_path / "out", jobs=1)
    # x.jpg comes first: it takes the stem x, and x.png's rows name x_k4.png.
    Image.open(pictures["skimage_coffee"]).crop((0, 0, 64, 48)).save(pics / "x.jpg")
    resumed = kqcodec.report(pics, [4], out=tmp_path / "out", jobs=1, resume=True, force=True)
    fresh = kqcodec.report(pics, [4], out=tmp_path / "fresh", jobs=1)
    assert _rows(resumed) == _rows(fresh)
    assert sorted(resumed["encoded_file"]) == ["x-png_k4.png", "x_k4.png"]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory, pictures):
    """A crop of a real photo eighteen times as large as the other picture."""
    root = tmp_path_factory.mktemp("uneven")
    photo = Image.open(pictures["skimage_coffee"])
    photo.crop((150, 100, 390, 280)).save(root / "large.png")
    photo.crop((0, 0, 40, 60)).save(root / "small.png")
    return root


def test_parts_of_a_picture_cover_its_ks_once_largest_first(uneven):
    plan = [(uneven / "large.png", dict(name="large.png", ks=[2, 4, 16, 64], target_psnr=30.0)),
            (uneven / "small.png", dict(name="small.png", ks=[2, 4, 16, 64], target_psnr=30.0))]
    assert reporting._balanced(plan, 1) == plan
    parts = reporting._balanced(plan, 2)
    large = [kwargs for path, kwargs in parts if kwargs["name"] == "large.png"]
    # Its cost is 18 times the other's: split into one part per k, the
    # search (counted as 4 ks) apart and first; the small picture stays
    # whole, last.
    assert [(kw["ks"], kw["target_psnr"]) for kw in large] == [
        ([], 30.0), ([2], None), ([4], None), ([16], None), ([64], None)]
    assert parts[-1] == plan[1]
    # With larger shares the ks are interleaved over fewer parts.
    plain = [(path, dict(kw, target_psnr=None)) for path, kw in plan]
    parts = reporting._balanced(plain[:1] * 3 + plain[1:], 2)
    assert [kw["ks"] for _, kw in parts] == [[2, 16], [4, 64]] * 3 + [[2, 4, 16, 64]]


def test_parts_give_the_table_and_files_of_one_job_per_picture(uneven, tmp_path):
    one, parts = tmp_path / "one", tmp_path / "parts"
    whole = kqcodec.report(uneven, [2, 16, 64], out=one, jobs=1, target_psnr=30)
    split = kqcodec.report(uneven, [2, 16, 64], out=parts, jobs=2, target_psnr=30)
    same_table(split, whole)
    same_table(tables.read_csv(parts / journal.FILENAME), whole)
    assert len(whole) == 8 and (whole["status"] == "ok").all()
    written = sorted(path.name for path in one.glob("*.png"))
    assert written == sorted(path.name for path in parts.glob("*.png")) and len(written) == 8
    for name in written:
        assert (parts / name).read_bytes() == (one / name).read_bytes()


class _FullDisk:
    """A file on a full disk: what it is handed stays in its buffer, and every flush fails."""

    def __init__(self, real):
        self.real, self.closed = real, False

    def write(self, data):
        return len(data)

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self):
        return self.real.fileno()

    def close(self):
        self.closed = True
        self.real.close()
        self.flush()


def test_a_full_disk_while_rows_are_appended_is_one_write_error(tmp_path):
    with pytest.raises(WriteError, match="cannot append to the table: No space left") as caught:
        with journal.Journal(tmp_path / journal.FILENAME, "image,k\n") as rows:
            rows._file = _FullDisk(rows._file)
            rows.append("a.png,2\n")
    assert rows._file.closed
    # Closing alone says so too.
    rows = journal.Journal(tmp_path / journal.FILENAME, "image,k\n")
    rows._file = _FullDisk(rows._file)
    with pytest.raises(WriteError, match="cannot write the table: No space left"):
        rows.close()
    assert rows._file.closed


def test_two_reports_never_write_one_table_at_once(folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with journal.locked(out):  # a report at work there
        code = ("import sys; from kqcodec.cli import main; "
                f"sys.exit(main(['report', {str(folder)!r}, '-k', '2', '--out', {str(out)!r}]))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 73
    assert proc.stderr == (f"kqcodec: error: {out}: another report is writing its table there; "
                           "wait for it to end, or give another --out\n")
    assert list(out.iterdir()) == []
    # Once it ends, the folder is free.
    assert len(kqcodec.report(folder, [2], out=out, jobs=1)) == 5


def test_a_cut_just_after_a_line_break_inside_a_name_resumes(folder, tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("p0.png", "z\nname.png"):
        (pics / name).write_bytes((folder / "p0.png").read_bytes())
    out = tmp_path / "out"
    first = kqcodec.report(pics, KS, out=out, jobs=1)
    store = out / journal.FILENAME
    data = store.read_bytes()
    # The crash wrote the last row up to the line break inside its quoted name.
    store.write_bytes(data[: data.rindex(b'"z\n') + 3])
    same_table(kqcodec.report(pics, KS, out=out, jobs=1, resume=True), first)
