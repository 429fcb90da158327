"""Many pictures at once, standard input and output, skip-if-larger, shared palettes."""

import os
import pty
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import batch, quantizer
from kqcodec.errors import UsageError

from .conftest import png_chunks
from .test_cli import one_line, run


@pytest.fixture()
def small_jpeg(tmp_path, coffee):
    """A real photo saved as a strongly compressed JPEG: its palette PNG is larger."""
    path = tmp_path / "small.jpg"
    Image.fromarray(coffee).save(path, quality=30)
    return path


def test_skip_if_larger_exits_98_and_writes_nothing(tmp_path, small_jpeg):
    dest = tmp_path / "out.png"
    code, _, err = run("encode", small_jpeg, dest, "-k", "256", "--skip-if-larger")
    assert code == 98
    assert "nothing written" in one_line(err)
    assert not dest.exists()
    # Without the option the larger file is written.
    code, _, err = run("encode", small_jpeg, dest, "-k", "256")
    assert code == 0, err
    assert dest.stat().st_size >= small_jpeg.stat().st_size


@pytest.fixture()
def folder(tmp_path, pictures):
    """Three good pictures with a truncated JPEG in the middle."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(pictures["mpl_present_rgba"], src / "a.png")
    (src / "b.jpg").write_bytes(pictures["sklearn_china"].read_bytes()[:3000])
    shutil.copy(pictures["skimage_rocket"], src / "c.jpg")
    shutil.copy(pictures["skimage_coffee"], src / "d.png")
    return src


def test_batch_goes_past_a_bad_file(tmp_path, folder):
    out = tmp_path / "out"
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "16", "--jobs", "2")
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1] == "kqcodec: 3 written, 0 skipped, 1 failed"
    assert any("b.jpg" in line and line.startswith("kqcodec: error:") for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]
    for name in ("a.png", "c.png", "d.png"):
        assert png_chunks(out / name)[0][0] == b"IHDR"


def test_batch_never_overwrites_without_force(tmp_path, folder):
    out = tmp_path / "out"
    (folder / "b.jpg").unlink()
    assert run("encode", folder, "--out-dir", out, "-k", "8")[0] == 0
    written = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    (out / "a.png").write_bytes(b"keep me")
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "8", "--jobs", "2")
    assert code == 1
    lines = err.strip().splitlines()
    # The files it finds with the same bytes count as written, and are left as they are.
    assert lines[-1] == "kqcodec: 2 written, 0 skipped, 1 failed"
    for name in ("c.png", "d.png"):
        assert ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) == written[name]
    # Said from a worker process, in the command line's words.
    assert f"kqcodec: error: {folder / 'a.png'}: {out / 'a.png'}: already exists " \
           "(use --force to replace it)" in lines
    assert (out / "a.png").read_bytes() == b"keep me"
    # The library says it in Python's.
    outcomes = list(batch.encode_batch([folder], out, 8, jobs=1))
    assert [o.status for o in outcomes] == ["failed", "written", "written"]
    # Kept without the frames that raised it, which hold the picture's arrays.
    assert outcomes[0].error.__traceback__ is None
    assert outcomes[0].message == (f"{folder / 'a.png'}: {out / 'a.png'}: already exists "
                                   "(use force=True to replace it)")
    assert outcomes[0].said(lambda option: f"<{option}>").endswith("(use <force> to replace it)")
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "8", "--force")
    assert code == 0, err
    assert (out / "a.png").read_bytes() != b"keep me"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_inputs_in_the_output_folder_are_never_outputs(tmp_path, pictures, jobs):
    # What a shell glob hands over: logo.jpg's output would be logo.png, an input.
    shutil.copy(pictures["mpl_present_rgba"], tmp_path / "logo.png")
    shutil.copy(pictures["skimage_rocket"], tmp_path / "logo.jpg")
    (tmp_path / "link.png").symlink_to(tmp_path / "logo.png")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run("encode", *sorted(tmp_path.iterdir()), "--out-dir", tmp_path, "-k", "8",
                       "--force", "--jobs", jobs)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in before} == before
    assert (tmp_path / "link.png").is_symlink()
    written = {p.name for p in tmp_path.iterdir()} - set(before)
    # link.png comes first and is logo.png: encoded once, under the first name.
    assert written == {"link-png.png", "logo-jpg.png"}
    with Image.open(tmp_path / "logo-jpg.png") as img:
        assert img.size == Image.open(pictures["skimage_rocket"]).size


def test_an_output_folder_that_is_a_file_is_one_error(tmp_path, folder):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "8")
    assert code == 73
    assert one_line(err) == f"kqcodec: error: {out}: exists and is not a folder"
    assert out.read_bytes() == b"keep me"


def test_batch_names_suffix_recursion_and_skips(tmp_path, folder, small_jpeg):
    (folder / "b.jpg").unlink()
    (folder / "sub").mkdir()
    shutil.copy(folder / "a.png", folder / "sub" / "a.png")
    shutil.copy(small_jpeg, folder / "sub" / "small.jpg")
    out = tmp_path / "out"
    code, _, err = run("encode", folder, small_jpeg, "--out-dir", out, "-k", "256",
                       "--recursive", "--suffix=-q", "--skip-if-larger", "--jobs", "1")
    assert code == 0, err
    assert err.strip().splitlines()[-1] == "kqcodec: 4 written, 2 skipped, 0 failed"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["a-q.png", "c-q.png", "d-q.png", "sub/a-q.png"]


def test_batch_of_folders_without_pictures_exits_66(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a picture")
    code, _, err = run("encode", tmp_path / "empty", "--out-dir", tmp_path / "out", "-k", "8")
    assert code == 66
    assert one_line(err) == (f"kqcodec: error: {tmp_path / 'empty'}: no pictures found "
                             "(PNG, JPEG, WebP, GIF, BMP, TIFF)")
    assert not (tmp_path / "out").exists()
    # One empty folder among pictures is no error.
    code, _, err = run("encode", tmp_path / "empty", folder / "a.png", "--out-dir",
                       tmp_path / "out", "-k", "8")
    assert code == 0, err


def test_a_batch_of_missing_inputs_exits_66_before_any_work(tmp_path, folder):
    # It exited 1, "0 written, 0 skipped, 1 failed", and had made the folder.
    missing = [tmp_path / "nope.png", tmp_path / "gone"]
    code, _, err = run("encode", *missing, "--out-dir", tmp_path / "out", "-k", "8")
    assert (code, one_line(err)) == (66, f"kqcodec: error: {missing[0]}, {missing[1]}: "
                                         "no such file or folder")
    assert not (tmp_path / "out").exists()
    # One missing among pictures is one picture failed.
    code, _, err = run("encode", missing[0], folder / "a.png", "--out-dir", tmp_path / "out",
                       "-k", "8")
    assert code == 1
    assert err.strip().splitlines() == [f"kqcodec: error: {missing[0]}: no such file or folder",
                                        "kqcodec: 1 written, 0 skipped, 1 failed"]


def test_an_input_that_cannot_be_looked_at_fails_alone(tmp_path, folder):
    # A name too long for the file system was a traceback (OSError from is_dir) and
    # nothing was written.
    long_name = tmp_path / ("a" * 300 + ".png")
    out = tmp_path / "out"
    code, _, err = run("encode", folder / "a.png", long_name, "--out-dir", out, "-k", "8")
    assert code == 1
    assert err.strip().splitlines() == [
        f"kqcodec: error: {long_name}: cannot open: File name too long",
        "kqcodec: 1 written, 0 skipped, 1 failed"]
    assert [p.name for p in out.iterdir()] == ["a.png"]
    # Alone, it is said before any work, as a missing input is.
    code, _, err = run("encode", long_name, "--out-dir", tmp_path / "out2", "-k", "8")
    assert (code, one_line(err)) == (66, f"kqcodec: error: {long_name}: cannot open: "
                                         "File name too long")
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_mirrored_folder_named_like_an_output_keeps_its_name(tmp_path, pictures, jobs):
    # in/x.png/a.png needs out/x.png as a folder, in/x.jpg would write out/x.png: one
    # of the two failed, which one depending on the jobs.
    src = tmp_path / "in"
    (src / "x.png").mkdir(parents=True)
    shutil.copy(pictures["mpl_present_rgba"], src / "x.png" / "a.png")
    shutil.copy(pictures["skimage_rocket"], src / "x.jpg")
    out = tmp_path / "out"
    code, _, err = run("encode", src, "--out-dir", out, "--recursive", "-k", "8", "--jobs", jobs)
    assert code == 0, err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if p.is_file()) == [
        "x-jpg.png", "x.png/a.png"]


def test_a_link_in_the_output_folder_to_an_input_is_a_taken_name(tmp_path, pictures):
    # DIR/a.png leads to the input: the picture failed ("output is the input file").
    (tmp_path / "x").mkdir()
    (tmp_path / "d").mkdir()
    source = tmp_path / "x" / "a.png"
    shutil.copy(pictures["mpl_present_rgba"], source)
    before = source.read_bytes()
    (tmp_path / "d" / "a.png").symlink_to(Path("..") / "x" / "a.png")
    for force in ([], ["--force"]):
        code, _, err = run("encode", source, "--out-dir", tmp_path / "d", "-k", "8", *force)
        assert code == 0, err
    assert source.read_bytes() == before
    assert (tmp_path / "d" / "a.png").is_symlink()
    with Image.open(tmp_path / "d" / "a-png.png") as img:
        assert img.mode == "P"


def test_a_batch_that_writes_nothing_leaves_no_folder_it_made(tmp_path, pictures, small_jpeg):
    # Every picture failed or was skipped: the batch left DIR (and its sub-folders) empty.
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "bad.jpg").write_bytes(pictures["sklearn_china"].read_bytes()[:3000])
    shutil.copy(small_jpeg, src / "sub" / "small.jpg")
    out = tmp_path / "out"
    code, _, err = run("encode", src, "--out-dir", out, "--recursive", "-k", "256",
                       "--skip-if-larger")
    assert code == 1
    assert err.strip().splitlines()[-1] == "kqcodec: 0 written, 1 skipped, 1 failed"
    assert not out.exists()
    # A folder that was there stays, and so does whatever is in it.
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, _ = run("encode", src, "--out-dir", out, "--recursive", "-k", "256",
                     "--skip-if-larger")
    assert code == 1
    assert (out / "mine.txt").read_text() == "keep"


def test_a_picture_given_twice_is_encoded_once(tmp_path, folder):
    out = tmp_path / "out"
    code, _, err = run("encode", folder / "a.png", folder / "a.png", folder, "--out-dir", out,
                       "-k", "8")
    assert code == 1  # b.jpg is truncated
    assert err.strip().splitlines()[-1] == "kqcodec: 3 written, 0 skipped, 1 failed"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]


def test_batch_output_is_the_same_whatever_the_jobs(tmp_path, folder):
    (folder / "b.jpg").unlink()
    (folder / "d.png").unlink()
    for jobs in ("1", "2"):
        code, _, err = run("encode", folder, "--out-dir", tmp_path / jobs, "-k", "auto",
                           "--max-bytes", "40000", "--jobs", jobs)
        assert code == 0, err
    for name in ("a.png", "c.png"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_stdin_to_stdout_gives_the_same_bytes_as_files(tmp_path, pictures):
    source = pictures["skimage_rocket"]
    assert run("encode", source, tmp_path / "f.png", "-k", "32")[0] == 0
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", "-", "-", "-k", "32"],
                          input=source.read_bytes(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (tmp_path / "f.png").read_bytes()


def test_dev_stdout_redirected_to_a_file_is_standard_output(tmp_path, pictures):
    source = pictures["skimage_rocket"]
    assert run("encode", source, tmp_path / "f.png", "-k", "32")[0] == 0
    with open(tmp_path / "redirected.png", "wb") as stdout:
        proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", source, "/dev/stdout",
                               "-k", "32"], stdout=stdout, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "redirected.png").read_bytes() == (tmp_path / "f.png").read_bytes()


@pytest.mark.parametrize("stream, said", [
    ("stdout", "standard output is a terminal: redirect it to a file or a pipe"),
    # The command waited for a picture to be typed.
    ("stdin", "standard input is a terminal: redirect a picture into it")])
def test_no_picture_goes_to_or_comes_from_a_terminal(tmp_path, pictures, stream, said):
    source, output = ((pictures["skimage_rocket"], "-") if stream == "stdout"
                      else ("-", tmp_path / "o.png"))
    main, terminal = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", source, output,
                               "-k", "8"], stderr=subprocess.PIPE, text=True, timeout=60,
                              **{stream: terminal})
    finally:
        os.close(terminal)
        os.close(main)
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"kqcodec: error: {said}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [("decode", "-", "x.png"), ("decode", "IN", "-"),
                                  ("decode", "IN", "/dev/stdout")])
def test_decode_refuses_standard_streams_in_one_line(tmp_path, pictures, args):
    src = tmp_path / "p.png"
    assert run("encode", pictures["skimage_rocket"], src, "-k", "8")[0] == 0
    code, out, err = run(*(src if a == "IN" else a for a in args), cwd=tmp_path)
    assert code == 2 and out == ""
    assert "decode takes files, not standard input or output" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_damaged_standard_input_is_named_as_the_input(tmp_path, pictures):
    # A file's errors start with its name; standard input has none.
    cut = pictures["skimage_rocket"].read_bytes()[:3000]
    for data, what in ((cut, "corrupt JPEG: its image data is truncated"),
                       (b"hello", "not a supported picture (PNG, JPEG, WebP, GIF, BMP or TIFF)")):
        proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", "-", tmp_path / "o.png",
                               "-k", "8"], input=data, capture_output=True, text=False)
        assert proc.returncode == 65
        assert one_line(proc.stderr.decode()) == f"kqcodec: error: the input: {what}"
    assert not (tmp_path / "o.png").exists()


def test_stdin_is_for_a_single_picture(tmp_path, pictures):
    code, _, err = run("encode", "-", pictures["skimage_rocket"], "--out-dir", tmp_path, "-k", "8")
    assert code == 2
    assert "single picture" in one_line(err)


def test_shared_palette_gives_identical_palette_chunks(tmp_path, folder, present):
    (folder / "b.jpg").unlink()
    out = tmp_path / "out"
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "32", "--shared-palette")
    assert code == 0, err
    files = sorted(out.iterdir())
    chunks = [dict(png_chunks(path)) for path in files]
    assert len({c[b"PLTE"] for c in chunks}) == 1
    assert len({c[b"tRNS"] for c in chunks}) == 1  # one picture has transparency
    plte = np.frombuffer(chunks[0][b"PLTE"], np.uint8).reshape(-1, 3)
    alpha = np.full(len(plte), 255, np.uint8)
    trns = np.frombuffer(chunks[0][b"tRNS"], np.uint8)
    alpha[: len(trns)] = trns
    palette = np.column_stack([plte, alpha])
    for path in files:
        with Image.open(path) as img:
            indices = np.asarray(img)  # mode P: the stored indices
            rgba = np.asarray(img.convert("RGBA"))
        np.testing.assert_array_equal(rgba, palette[indices])
    # Each pixel of the transparent picture took its nearest shared entry.
    with Image.open(out / "a.png") as img:
        a = np.asarray(img.convert("RGBA"))
    np.testing.assert_array_equal(a, quantizer.remap(present, palette).to_pixels())


def test_shared_palette_keeps_the_strict_rules_and_says_each_warning_once(tmp_path, pictures):
    folder, out = tmp_path / "pics", tmp_path / "out"
    folder.mkdir()
    good = pictures["skimage_coffee"].read_bytes()
    (folder / "good.png").write_bytes(good)
    (folder / "trail.png").write_bytes(good + b"junk")  # bytes after IEND
    code, _, err = run("encode", folder, "--out-dir", out, "-k", "8", "--shared-palette",
                       "--jobs", "1")
    assert code == 0, err
    warned = [line for line in err.splitlines() if "trail.png" in line]
    assert len(warned) == 1, err
    code, _, err = run("encode", folder, "--out-dir", tmp_path / "strict", "-k", "8",
                       "--shared-palette", "--strict", "--jobs", "1")
    assert code == 1
    assert "trail.png: corrupt PNG" in err and "0 skipped, 1 failed" in err
    assert sorted(p.name for p in (tmp_path / "strict").iterdir()) == ["good.png"]


@pytest.mark.parametrize("args", [["--space", "oklab"], ["--engine", "sklearn"]])
def test_shared_palette_refuses_options_it_would_ignore(tmp_path, pictures, args):
    code, _, err = run("encode", pictures["skimage_coffee"], "--out-dir", tmp_path / "out",
                       "-k", "8", "--shared-palette", *args)
    assert code == 2
    assert f"{args[0]} does not go with --shared-palette" in one_line(err)
    assert not (tmp_path / "out").exists()


def test_shared_palette_weighs_pictures_by_pixels():
    # Two flat pictures: a large red one and a small blue one.  With k=2 both
    # colors are kept; a shared palette of the summed histograms is the same
    # whatever order the pictures come in.
    red = (np.array([[255, 0, 0]], np.uint8), np.array([900]))
    blue = (np.array([[0, 0, 255]], np.uint8), np.array([100]))
    green = (np.array([[0, 200, 0]], np.uint8), np.array([100]))
    one = quantizer.shared_palette([red, blue, green], 2)
    two = quantizer.shared_palette([green, blue, red], 2)
    np.testing.assert_array_equal(one, two)
    # Red weighs most: it keeps its own entry exactly.
    assert [255, 0, 0] in one.tolist()


def test_the_batch_checks_its_options_before_any_work(tmp_path, folder):
    out = tmp_path / "out"
    for k, options, words in ((1, {}, "k must be an integer from 2 to 256"),
                              ("auto", {}, "give one target"),
                              (8, {"space": "hsv"}, "space"),
                              (8, {"max_pixels": 0}, "pixel limit"),
                              (8, {"seed": -1}, "seed"),
                              ("auto", {"max_bytes": 10**5, "max_colors": 1}, "k must be")):
        with pytest.raises(UsageError, match=words):
            next(batch.encode_batch([folder], out, k, **options))
    assert not out.exists()
    # One path given as a string is one input, not one per letter.
    outcomes = list(batch.encode_batch(str(folder / "a.png"), out, 8))
    assert [(Path(o.source).name, o.status) for o in outcomes] == [("a.png", "written")]


def test_the_output_folder_among_the_inputs_is_passed_over(tmp_path, pictures):
    # `pics/* --out-dir pics/out`, run twice: the second glob holds pics/out.
    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(pictures["mpl_present_rgba"], pics)
    inputs = lambda: sorted(pics.iterdir())  # noqa: E731 - the glob, as the shell makes it
    first = list(batch.encode_batch(inputs(), pics / "out", 4))
    second = list(batch.encode_batch(inputs(), pics / "out", 4))
    assert [o.status for o in first] == [o.status for o in second] == ["written"]
    assert [p.name for p in (pics / "out").iterdir()] == ["mpl_present_rgba.png"]


@pytest.mark.parametrize("recursive", [[], ["--recursive"]])
def test_the_output_folder_as_the_only_input_is_a_usage_error(tmp_path, pictures, recursive):
    # It said "no pictures found" (exit 66) of a folder of pictures; the
    # report refuses --out FOLDER so (exit 2).
    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(pictures["mpl_present_rgba"], pics)
    code, _, err = run("encode", pics, "--out-dir", pics, "-k", "4", *recursive)
    assert (code, one_line(err)) == (2, f"kqcodec: error: {pics}: the output folder must not "
                                        "be the picture folder")
    assert [p.name for p in pics.iterdir()] == ["mpl_present_rgba.png"]


@pytest.mark.parametrize("recursive", [False, True])
def test_a_folder_that_cannot_be_read_is_an_error_not_an_empty_folder(tmp_path, pictures,
                                                                      monkeypatch, recursive):
    from kqcodec.errors import InputError

    top = tmp_path / "pics"
    locked = top / "locked" if recursive else top
    locked.mkdir(parents=True)
    shutil.copy(pictures["mpl_present_rgba"], top)
    shutil.copy(pictures["skimage_coffee"], locked)

    # As chmod 000 does to anyone but root (the tests may run as root).
    def refused(real):
        def listing(path="."):
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)
        return listing

    monkeypatch.setattr(os, "scandir", refused(os.scandir))
    monkeypatch.setattr(os, "listdir", refused(os.listdir))
    with pytest.raises(InputError, match=f"^{locked}: cannot read the folder: Permission denied$"):
        list(batch.encode_batch([top], tmp_path / "out", 4, recursive=recursive))


def animated_gifs(folder):
    """GIFs of 2, 3 and 4 frames (each warned about: only the first is used)."""
    paths = []
    for n in (2, 3, 4):
        path = folder / f"anim{n}.gif"
        shades = [Image.new("RGB", (30, 20), (40 * i, 0, 255 - 40 * i)) for i in range(n)]
        shades[0].save(path, save_all=True, append_images=shades[1:])
        paths.append(path)
    return paths


@pytest.mark.parametrize("shared", [False, True])
def test_the_pictures_warnings_come_from_the_batch_in_input_order(tmp_path, pictures, shared):
    # Each worker process showed its own warnings, across the progress bar
    # and in whatever order the workers met them.
    frames = animated_gifs(tmp_path)
    inputs = [frames[2], pictures["skimage_coffee"], frames[0], frames[1]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = list(batch.encode_batch(inputs, tmp_path / "out", 8, jobs=2, shared=shared))
    said = [str(w.message) for w in caught]
    assert said == [f"{path}: GIF has {n} frames; only the first is used"
                    for path, n in ((frames[2], 4), (frames[0], 2), (frames[1], 3))]
    assert all(w.category is kqcodec.KqcodecWarning for w in caught)
    if not shared:  # a shared palette's pictures say them as their colors are counted
        assert [len(o.warned) for o in outcomes] == [1, 0, 1, 1]


def test_batches_in_threads_lose_no_warning(tmp_path):
    # Each picture's warnings are recorded while it is encoded: two threads
    # recording at once left the process's warnings pointing at one's
    # finished list, and every later warning was lost.
    import threading

    gifs = animated_gifs(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=lambda n=n: list(
            batch.encode_batch(gifs, tmp_path / f"out{n}", 8, jobs=1))) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        warnings.warn("the last one", UserWarning)
    said = [str(w.message) for w in caught]
    for path, n in zip(gifs, (2, 3, 4)):
        assert said.count(f"{path}: GIF has {n} frames; only the first is used") == 4
    assert said[-1] == "the last one"


def test_a_shared_palette_refuses_a_pipe_it_would_read_twice(tmp_path, pictures):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    with pytest.raises(UsageError, match="reads each picture twice, and this one is a pipe"):
        list(batch.encode_batch([pictures["skimage_coffee"], pipe], tmp_path / "out", 8,
                                shared=True))
    assert not (tmp_path / "out").exists()  # before any work
