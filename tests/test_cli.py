"""The command line: exit codes, one-line errors, and nothing lost on failure."""

import contextlib
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import quantizer
from kqcodec.cli import main
from kqcodec.errors import OutputKeptError

from .conftest import ihdr


def run(*args, cwd=None):
    """Run ``python -m kqcodec`` in a real process; return (code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "kqcodec", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_encode_then_decode_through_the_command(tmp_path, pictures):
    out, back = tmp_path / "c.png", tmp_path / "back.png"
    code, _, err = run("encode", pictures["sklearn_china"], out, "-k", "16")
    assert code == 0, err
    assert ihdr(out)[2:4] == (4, 3)
    code, _, err = run("decode", out, back)
    assert code == 0, err
    np.testing.assert_array_equal(np.asarray(Image.open(back)), np.asarray(Image.open(out).convert("RGB")))


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("encode", "decode", "65", "73", "74"):
        assert word in text


@pytest.mark.parametrize("command", ["encode", "decode", "report"])
def test_the_parser_of_one_command_is_that_of_the_whole_command_line(command, capsys):
    # main() adds only the arguments of the command it is given.
    from kqcodec.cli import build_parser

    def helps(parser, argv):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        return capsys.readouterr().out

    for argv in ([command, "--help"], ["--help"]):
        assert helps(build_parser(command), argv) == helps(build_parser(), argv)
    argv = {"encode": ["encode", "a.jpg", "b.png", "-k", "16", "--speed", "3"],
            "decode": ["decode", "a.png", "b.png", "--strict"],
            "report": ["report", "pics", "-k", "4,8", "--metrics", "psnr"]}[command]
    assert (vars(build_parser(command).parse_args(argv))
            == vars(build_parser().parse_args(argv)))


def test_encode_usage_shows_both_forms(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--help"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "usage: kqcodec encode INPUT OUTPUT -k K [options]"
    assert lines[1].split() == ["kqcodec", "encode", "INPUT...", "--out-dir", "DIR", "-k", "K",
                                "[options]"]


@pytest.mark.parametrize("args", [
    ["encode", "IN", "OUT", "-k", "1"],
    ["encode", "IN", "OUT", "-k", "257"],
    ["encode", "IN", "OUT", "-k", "many"],
    ["encode", "IN", "OUT"],
    ["encode", "IN", "OUT", "-k", "16", "--speed", "0"],
    ["encode", "IN", "OUT", "-k", "16", "--speed", "11"],
    ["report", "DIR", "--out", "OUT", "--target-ssimulacra2", "nan"],
    ["report", "DIR", "--out", "OUT", "--target-ssimulacra2", "101"],
    ["report", "DIR", "--out", "OUT", "-k", "2,,4"],
    ["report", "DIR", "--out", "OUT", "-k", "16,"],
    ["report", "DIR", "--out", "OUT", "-k", ""],
    ["report", "DIR", "--out", "OUT", "--metrics", "psnr,,ssim"],
    ["frobnicate"],
])
def test_bad_usage_exits_2_with_one_line(tmp_path, pictures, args):
    named = {"IN": pictures["skimage_rocket"], "DIR": pictures["skimage_rocket"].parent,
             "OUT": tmp_path / "o.png"}
    args = [str(named.get(a, a)) for a in args]
    code, _, err = run(*args)
    assert code == 2
    assert "error" in one_line(err)
    assert not (tmp_path / "o.png").exists()


def test_unknown_output_extension_exits_2(tmp_path, pictures):
    src = tmp_path / "c.png"
    assert run("encode", pictures["skimage_rocket"], src, "-k", "4")[0] == 0
    code, _, err = run("decode", src, tmp_path / "out.xyz")
    assert code == 2 and ".xyz" in one_line(err)
    assert list(tmp_path.iterdir()) == [src]


def test_not_an_image_exits_65(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")
    code, _, err = run("encode", notes, tmp_path / "o.png", "-k", "4")
    assert code == 65 and "not a supported picture" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_truncated_jpeg_exits_65_and_leaves_nothing(tmp_path, pictures):
    data = pictures["sklearn_china"].read_bytes()
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(data[: len(data) // 2])
    code, _, err = run("encode", bad, tmp_path / "o.png", "-k", "8")
    assert code == 65
    # kqcodec's words, not the decoder library's ("... bytes not processed"),
    # after the name of the file.
    assert one_line(err) == f"kqcodec: error: {bad}: corrupt JPEG: its image data is truncated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.jpg"]


def test_decode_of_non_png_exits_65(tmp_path, pictures):
    code, _, err = run("decode", pictures["skimage_rocket"], tmp_path / "o.png")
    assert code == 65 and "not a PNG" in one_line(err)


def test_missing_input_exits_66(tmp_path):
    code, _, err = run("encode", tmp_path / "nope.jpg", tmp_path / "o.png", "-k", "4")
    assert code == 66 and "no such file" in one_line(err)
    code, _, err = run("decode", tmp_path, tmp_path / "o.png")
    assert code == 66 and "directory" in one_line(err)


# Braces in a name are said as they are, not taken for an option's placeholder.
@pytest.mark.parametrize("name", ["o.png", "x{force}{out}.png"])
def test_existing_output_exits_73_unless_forced(tmp_path, pictures, name):
    out = tmp_path / name
    out.write_bytes(b"precious")
    code, _, err = run("encode", pictures["skimage_rocket"], out, "-k", "4")
    assert code == 73
    assert one_line(err) == f"kqcodec: error: {out}: already exists (use --force to replace it)"
    assert out.read_bytes() == b"precious"
    # The library names the option as Python code sets it.
    with pytest.raises(OutputKeptError) as caught:
        kqcodec.encode(pictures["skimage_rocket"], out, 4)
    assert str(caught.value) == f"{out}: already exists (use force=True to replace it)"
    code, _, err = run("encode", pictures["skimage_rocket"], out, "-k", "4", "--force")
    assert code == 0, err
    assert ihdr(out)[3] == 3


def test_output_is_input_exits_73_even_forced_and_through_links(tmp_path, pictures):
    src = tmp_path / "in.png"
    src.write_bytes(pictures["mpl_present_rgba"].read_bytes())
    before = src.read_bytes()
    os.symlink(src, tmp_path / "sym.png")
    os.link(src, tmp_path / "hard.png")
    for out in (src, tmp_path / "sym.png", tmp_path / "hard.png"):
        code, _, err = run("encode", src, out, "-k", "4", "--force")
        assert code == 73 and "input" in one_line(err)
    assert src.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_forced_output_replaces_a_link_not_its_target(tmp_path, pictures):
    # Writing through the link would change a file the command line never named.
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"precious")
    link = tmp_path / "out.png"
    os.symlink(target, link)
    code, _, err = run("encode", pictures["skimage_rocket"], link, "-k", "4")
    assert code == 73 and "--force" in one_line(err)
    assert link.is_symlink()
    code, _, err = run("encode", pictures["skimage_rocket"], link, "-k", "4", "--force")
    assert code == 0, err
    assert not link.is_symlink() and ihdr(link)[3] == 3
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_unwritable_folder_exits_74_and_leaves_nothing(tmp_path, pictures):
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "missing" / "o.png", "-k", "4")
    assert code == 74
    one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_exits_74(pictures):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    code, _, err = run("encode", pictures["skimage_rocket"], "/dev/full", "-k", "4", "--force")
    assert code == 74 and "No space left" in one_line(err)


@pytest.mark.parametrize("command", ["encode", "report"])
def test_standard_output_that_fails_exits_74_in_one_line(tmp_path, pictures, command):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    args = (["encode", str(pictures["skimage_rocket"]), "-", "-k", "16"] if command == "encode"
            else ["report", str(pictures["skimage_rocket"].parent), "-k", "2", "--quiet",
                  "--out", str(tmp_path / "out"), "--csv", str(tmp_path / "t.csv")])
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "kqcodec", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 74
    assert one_line(proc.stderr).startswith("kqcodec: error: standard output: write failed: "
                                            "No space left on device")
    if command == "report":
        assert proc.stderr.endswith(f"({tmp_path / 'out' / 'report.csv'} holds it)\n")
        assert (tmp_path / "out" / "report.csv").stat().st_size > 0
        # The extras asked for are written all the same.
        assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "out" / "report.csv").read_bytes()


def test_a_reader_that_closes_the_pipe_exits_74_in_one_line(pictures):
    proc = subprocess.Popen([sys.executable, "-m", "kqcodec", "encode",
                             str(pictures["skimage_rocket"]), "-", "-k", "256"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the file is ready: its first write meets a closed pipe
    err = proc.stderr.read()
    assert proc.wait() == 74
    assert one_line(err) == "kqcodec: error: standard output: write failed: the reader closed the pipe"


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_reader_that_closes_the_pipe_mid_file_exits_74(pictures, unbuffered):
    # Unbuffered (-u), standard output is the raw file: a pipe took the
    # first 64 KB of the PNG, and the rest was dropped with exit 0.
    proc = subprocess.Popen([sys.executable, *(["-u"] if unbuffered else []), "-m", "kqcodec",
                             "encode", str(pictures["skimage_coffee"]), "-", "-k", "256"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10) == b"\x89PNG\r\n\x1a\n\x00\x00"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 74
    assert one_line(err) == "kqcodec: error: standard output: write failed: the reader closed the pipe"


@pytest.mark.parametrize("command", [["encode", "{picture}", "-", "-k", "4"],
                                     ["report", "{folder}", "--out", "{out}", "-k", "4"]])
def test_a_closed_standard_output_exits_74_in_one_line(tmp_path, pictures, command):
    picture = pictures["mpl_present_rgba"]
    argv = [part.format(picture=picture, folder=picture.parent, out=tmp_path / "out")
            for part in command]
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m kqcodec "$@" >&-', sys.executable, *argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 74
    assert one_line(proc.stderr).startswith("kqcodec: error: standard output is closed")


@pytest.mark.parametrize("stem", ["skimage_rocket", "mpl_present_rgba"])
def test_a_picture_named_by_a_pipe_is_read_whole(tmp_path, pictures, stem):
    # /dev/stdin here is a pipe, as <(...) is: it can be read once only, and
    # reading the PNG signature first left the rest for Pillow to misread.
    source = pictures[stem]
    piped = subprocess.run([sys.executable, "-m", "kqcodec", "encode", "/dev/stdin",
                            str(tmp_path / "piped.png"), "-k", "16"],
                           input=source.read_bytes(), capture_output=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    named = subprocess.run([sys.executable, "-m", "kqcodec", "encode", str(source),
                            str(tmp_path / "named.png"), "-k", "16"], capture_output=True,
                           timeout=120)
    assert named.returncode == 0, named.stderr
    assert (tmp_path / "piped.png").read_bytes() == (tmp_path / "named.png").read_bytes()


@pytest.mark.parametrize("redirect", [">>", "1<>"])
def test_standard_output_redirected_onto_the_input_is_refused(tmp_path, pictures, redirect):
    source = tmp_path / "in.png"
    shutil.copy(pictures["mpl_present_rgba"], source)
    before = source.read_bytes()
    proc = subprocess.run(["sh", "-c", f'exec "$0" -m kqcodec encode "$1" - -k 16 {redirect} "$1"',
                           sys.executable, str(source)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 73
    assert one_line(proc.stderr) == (f"kqcodec: error: standard output is the input file {source}; "
                                     "redirect it elsewhere")
    assert source.read_bytes() == before


def test_a_file_name_with_a_newline_is_said_on_one_line(tmp_path, pictures):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad\nname.png").write_bytes(b"not a picture")
    shutil.copy(pictures["mpl_present_rgba"], folder / "good\r.png")
    code, _, err = run("encode", folder, "--out-dir", tmp_path / "out", "-k", "4", "-v")
    assert code == 1
    lines = err.splitlines()  # at \n and \r alike
    assert len(lines) == 3
    assert lines[0] == (f"kqcodec: error: {folder}/bad\\x0aname.png: not a supported picture "
                        "(PNG, JPEG, WebP, GIF, BMP or TIFF)")
    assert lines[1].startswith(f"{tmp_path}/out/good\\x0d.png: k=4, ")
    assert lines[2] == "kqcodec: 1 written, 0 skipped, 1 failed"


def test_standard_output_onto_standard_input_s_file_is_refused(tmp_path, pictures):
    source = tmp_path / "in.png"
    shutil.copy(pictures["mpl_present_rgba"], source)
    before = source.read_bytes()
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m kqcodec encode - - -k 16 < "$1" >> "$1"',
                           sys.executable, str(source)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 73
    assert one_line(proc.stderr) == ("kqcodec: error: standard output is standard input's file; "
                                     "redirect it elsewhere")
    assert source.read_bytes() == before
    # A pipe on both sides is no file to lose.
    piped = subprocess.run([sys.executable, "-m", "kqcodec", "encode", "-", "-", "-k", "16"],
                           input=before, capture_output=True, timeout=120)
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")


@pytest.mark.parametrize("how", ["<", "cat"])
def test_standard_input_from_the_output_file_is_refused_even_with_force(tmp_path, pictures, how):
    source = tmp_path / "in.png"
    shutil.copy(pictures["mpl_present_rgba"], source)
    before = source.read_bytes()
    command = 'exec "$0" -m kqcodec encode - "$1" -k 8 --force'
    script = f'{command} < "$1"' if how == "<" else f'cat "$1" | {command}'
    proc = subprocess.run(["sh", "-c", script, sys.executable, str(source)],
                          capture_output=True, text=True, timeout=120)
    if how == "<":
        assert proc.returncode == 73
        assert one_line(proc.stderr) == (f"kqcodec: error: standard input is the output file "
                                         f"{source}; choose another name")
        assert source.read_bytes() == before
    else:
        # A pipe is no file: the input was read whole before the output was replaced.
        assert proc.returncode == 0, proc.stderr
        assert source.read_bytes().startswith(b"\x89PNG") and source.read_bytes() != before


def test_standard_input_is_read_no_further_than_a_picture_can_hold(tmp_path):
    # Read whole, an endless pipe grew the process until memory ran out.
    proc = subprocess.run(["sh", "-c", 'head -c 200000000 /dev/zero | exec "$0" -m kqcodec '
                           'encode - "$1" -k 8 --max-pixels 1000',
                           sys.executable, str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 65
    limit = 8 * 1000 + (64 << 20)
    assert one_line(proc.stderr) == (f"kqcodec: error: standard input: more than {limit} bytes, "
                                     "more than a picture of 1000 pixels holds "
                                     "(raise it with --max-pixels)")
    assert list(tmp_path.iterdir()) == []


def test_a_closed_standard_input_exits_66_in_one_line(tmp_path):
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m kqcodec encode - "$1" -k 8 <&-',
                           sys.executable, str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, one_line(proc.stderr)) == (66, "kqcodec: error: standard input is "
                                                            "closed")


def test_a_closed_standard_error_sends_nothing_into_standard_output(tmp_path, pictures):
    # print() to a stderr that is None writes to stdout: -v's line, and any
    # error, went after the PNG written there.
    source = pictures["mpl_present_rgba"]
    out = tmp_path / "v.png"
    shell = 'exec "$0" -m kqcodec encode "$1" - -k 8 -v 2>&- > "$2"'
    proc = subprocess.run(["sh", "-c", shell, sys.executable, str(source), str(out)],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0
    run("encode", source, tmp_path / "file.png", "-k", "8")
    assert out.read_bytes() == (tmp_path / "file.png").read_bytes()
    failed = subprocess.run(["sh", "-c", 'exec "$0" -m kqcodec encode "$1" - -k 8 2>&-',
                             sys.executable, str(tmp_path / "missing.png")],
                            capture_output=True, timeout=120)
    assert (failed.returncode, failed.stdout) == (66, b"")


def test_an_endless_device_is_read_no_further_than_a_picture_can_hold(tmp_path):
    code, _, err = run("encode", "/dev/zero", tmp_path / "o.png", "-k", "8",
                       "--max-pixels", "1000")
    assert code == 65
    assert one_line(err).startswith("kqcodec: error: /dev/zero: more than ")
    assert not (tmp_path / "o.png").exists()


def test_file_size_limit_exits_74_and_removes_temp(tmp_path, pictures):
    out = tmp_path / "o.png"
    # ulimit -f counts 512- or 1024-byte blocks; 1 block is far below the output size.
    script = f'ulimit -f 1; exec "{sys.executable}" -m kqcodec encode "{pictures["skimage_coffee"]}" "{out}" -k 64'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 74, proc.stderr
    one_line(proc.stderr)
    assert list(tmp_path.iterdir()) == []


def test_encode_output_must_be_png(tmp_path, pictures):
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "o.jpg", "-k", "4")
    assert code == 2 and ".png" in one_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", str(2**32), "x"])
def test_seed_out_of_range_exits_2(tmp_path, pictures, seed):
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "o.png", "-k", "4",
                       "--engine", "sklearn", "--seed", seed)
    assert code == 2 and "--seed" in one_line(err)


def test_long_output_name_works(tmp_path, pictures):
    out = tmp_path / ("n" * 240 + ".png")
    code, _, err = run("encode", pictures["mpl_present_rgba"], out, "-k", "4")
    assert code == 0, err
    assert out.exists() and leftovers(tmp_path) == []


def test_picture_too_wide_for_webp_exits_2(tmp_path):
    src = tmp_path / "wide.png"
    Image.new("RGB", (17000, 2), (9, 9, 9)).save(src)
    code, _, err = run("decode", src, tmp_path / "wide.webp")
    assert code == 2 and "16383" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.png"]


def test_verbose_encode_prints_what_was_written(tmp_path, pictures, capsys):
    out = tmp_path / "c.png"
    assert main(["encode", str(pictures["skimage_rocket"]), str(out), "-k", "16", "-v"]) == 0
    line = capsys.readouterr().err.strip()
    depth = ihdr(out)[2]  # 4, or 8 when that compressed better
    assert line.startswith(f"{out}: 16 colors, {depth}-bit, {out.stat().st_size} bytes, PSNR ")
    assert line.endswith(" dB")


def test_dither_and_space_through_the_command(tmp_path, pictures):
    plain, dithered = tmp_path / "p.png", tmp_path / "d.png"
    assert run("encode", pictures["skimage_rocket"], plain, "-k", "16")[0] == 0
    code, _, err = run("encode", pictures["skimage_rocket"], dithered, "-k", "16", "--dither",
                      "--space", "oklab")
    assert code == 0, err
    a, b = Image.open(plain), Image.open(dithered)
    assert a.mode == b.mode == "P" and dithered.stat().st_size > plain.stat().st_size
    mixed = tmp_path / "m.png"
    assert run("encode", pictures["skimage_rocket"], mixed, "-k", "16", "--space", "rgb+oklab")[0] == 0
    assert Image.open(mixed).mode == "P" and mixed.read_bytes() != plain.read_bytes()
    weighted = tmp_path / "w.png"
    assert main(["encode", str(pictures["skimage_rocket"]), str(weighted), "-k", "16", "--space",
                 "perceptual"]) == 0
    expected = quantizer.quantize(kqcodec.read_image(pictures["skimage_rocket"]), 16,
                                  space="perceptual")
    assert np.array_equal(np.asarray(Image.open(weighted).convert("RGB")), expected.to_pixels())
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "x.png", "-k", "16",
                      "--dither", "1.5")
    assert code == 2 and "the strength must be from 0 to 1" in err


def test_reuse_through_the_command(tmp_path, pictures):
    out = tmp_path / "r.png"
    assert main(["encode", str(pictures["skimage_rocket"]), str(out), "-k", "64", "--space",
                 "oklab", "--reuse"]) == 0
    expected = quantizer.quantize(kqcodec.read_image(pictures["skimage_rocket"]), 64,
                                  space="oklab", reuse=1.0)
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expected.to_pixels())
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "x.png", "-k", "16",
                      "--reuse", "1", "--dither")
    assert code == 2 and "--reuse does not go with --dither" in one_line(err)
    # Bad usage is said before an output that exists (exit 73 came first).
    code, _, err = run("encode", pictures["skimage_rocket"], out, "-k", "16",
                      "--reuse", "1", "--dither")
    assert code == 2 and "--reuse does not go with --dither" in one_line(err)
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "y.png", "-k", "16",
                      "--reuse", "20")
    assert code == 2 and "the margin must be from 0 to 16" in err


def test_what_a_start_imports(tmp_path, pictures):
    """--help without numpy; a PNG encoded without Pillow, pandas, secrets (hmac, OpenSSL) or numpy.ma.

    Modules that numpy itself imports are not kqcodec's choice: numpy 1.x
    imports numpy.random, and with it secrets and hmac, at start.  numpy 2
    imports numpy.ma (9 ms) at the first ``np.unique`` without an inverse.
    """
    def imported(code, *args):
        code += "\nprint(' '.join(sorted(sys.modules)))"
        proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, check=True)
        return set(proc.stdout.split("\n")[-2].split())

    def packages(modules):
        return {name.split(".")[0] for name in modules}

    cli = ("import sys; from kqcodec.cli import main\n"
           "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass")
    assert "numpy" not in packages(imported(cli, "--help"))
    out = tmp_path / "out.png"
    modules = packages(imported(cli, "encode", pictures["skimage_coffee"], out, "-k", "16"))
    assert out.stat().st_size > 0 and "numpy" in modules
    by_numpy = imported("import sys, numpy")
    assert not (modules - packages(by_numpy)) & {"PIL", "pandas", "secrets", "hmac"}
    # At k = 256 the default speed ranks the coffee photo's layouts on bands of rows.
    modules = imported(cli, "encode", pictures["skimage_coffee"], out, "-k", "256", "--force")
    assert "numpy.ma" not in modules - by_numpy


def test_blas_starts_one_thread_unless_the_user_chose(tmp_path, pictures):
    """The command loads OpenBLAS with one thread, or with the number the user set."""
    code = ("import sys; from kqcodec.cli import main; main(sys.argv[1:])\n"
            "from threadpoolctl import threadpool_info\n"
            "print(sorted({i['num_threads'] for i in threadpool_info() "
            "if i['internal_api'] == 'openblas'}))")
    argv = ["encode", str(pictures["skimage_coffee"]), str(tmp_path / "out.png"), "-k", "16"]
    env = {key: value for key, value in os.environ.items()
           if key not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}

    def threads(**extra):
        proc = subprocess.run([sys.executable, "-c", code, *argv, "--force"], capture_output=True,
                              text=True, check=True, env=dict(env, **extra))
        return proc.stdout.split("\n")[-2]

    assert threads() == "[1]"
    assert threads(OPENBLAS_NUM_THREADS="2") == "[2]"


@pytest.mark.parametrize("command, code", [
    (["encode", "FOLDER/a.png", "OUT.png", "-k", "4"], 0),
    (["encode", "FOLDER/missing.png", "OUT.png", "-k", "4"], 66),
    (["report", "FOLDER", "-k", "2", "--jobs", "2", "--out", "OUT"], 0)])
def test_the_exit_skips_teardown_but_not_exit_handlers(tmp_path, pictures, command, code):
    # The command leaves without the interpreter's teardown (a global's
    # __del__ is not called), after running what is registered to run at
    # exit: here a handler of the caller's, which sees the report's workers
    # already gone.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(pictures["skimage_coffee"].read_bytes())
    argv = [arg.replace("FOLDER", str(folder)).replace("OUT", str(tmp_path / "out"))
            for arg in command]
    script = (
        "import atexit, sys\n"
        "from kqcodec import cli\n"
        "def handler():\n"
        "    pool = sys.modules.get('multiprocessing')\n"
        "    print('handler ran, children:', len(pool.active_children()) if pool else 0)\n"
        "atexit.register(handler)\n"
        "class Kept:\n"
        "    def __del__(self):\n"
        "        print('torn down')\n"
        "kept = Kept()\n"
        f"sys.argv = ['kqcodec'] + {argv!r}\n"
        "cli.run()\n"
        "print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.splitlines()[-1] == "handler ran, children: 0"
    assert "not reached" not in proc.stdout and "torn down" not in proc.stdout
    assert (proc.stderr == "") == (code == 0)


def test_a_report_prints_to_a_redirected_text_stream(tmp_path, pictures):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["report", str(pictures["skimage_rocket"].parent), "-k", "2", "--quiet",
                     "--out", str(tmp_path / "out"), "--format", "csv"]) == 0
    assert text.getvalue() == (tmp_path / "out" / "report.csv").read_text()


@pytest.mark.parametrize("args, said", [
    (["encode", "", "{tmp}/o.png", "-k", "8"],
     "kqcodec encode: error: argument INPUT: an empty name"),
    (["encode", "{picture}", "--out-dir", "", "-k", "8"],
     "kqcodec encode: error: argument --out-dir: an empty name"),
    (["decode", "{picture}", ""], "kqcodec decode: error: argument OUTPUT: an empty name"),
    (["report", "", "--out", "{tmp}/out"], "kqcodec report: error: argument FOLDER: an empty name"),
    (["report", "{tmp}", "--out", ""], "kqcodec report: error: argument --out: an empty name"),
    (["encode", "{picture}", "{tmp}/o.png/", "-k", "8"],
     "kqcodec: error: {tmp}/o.png/: names a folder; give the file to write, or --out-dir DIR"),
    (["decode", "{picture}", "{tmp}/o.bmp/"],
     "kqcodec: error: {tmp}/o.bmp/: names a folder; give the file to write"),
])
def test_an_empty_name_or_a_file_named_as_a_folder_is_refused(tmp_path, pictures, args, said):
    # "" was read as '.', the current folder; "o.png/" wrote the file o.png.
    fill = dict(tmp=tmp_path, picture=pictures["mpl_present_rgba"])
    code, _, err = run(*[arg.format(**fill) for arg in args])
    assert code == 2
    assert one_line(err) == said.format(**fill) + (" (see --help)" if "argument" in said else "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["report", "{top}", "--out", "{tmp}/out", "-k", "4"],
                                     ["encode", "{top}", "--out-dir", "{tmp}/out", "-k", "4"]])
def test_a_folder_whose_pictures_are_all_in_sub_folders_hints_at_recursive(tmp_path, pictures,
                                                                         command):
    top = tmp_path / "top"
    (top / "2024" / "june").mkdir(parents=True)
    shutil.copy(pictures["mpl_present_rgba"], top / "2024" / "june")
    code, _, err = run(*[part.format(top=top, tmp=tmp_path) for part in command])
    assert code == 66
    assert one_line(err) == (f"kqcodec: error: {top}: no pictures found (PNG, JPEG, WebP, GIF, "
                             f"BMP, TIFF); {top}/2024/june holds some: read the sub-folders with "
                             "--recursive")
    (top / "2024" / "june" / "mpl_present_rgba.png").unlink()
    code, _, err = run(*[part.format(top=top, tmp=tmp_path) for part in command])
    assert (code, one_line(err)) == (66, f"kqcodec: error: {top}: no pictures found (PNG, JPEG, "
                                         "WebP, GIF, BMP, TIFF)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["top"]


@pytest.mark.parametrize("command, written", [
    (["report", "{pics}", "--out", "{out}", "-k", "4", "--quiet"], ["___k4.png", "__k4.png"]),
    (["encode", "{pics}", "--out-dir", "{out}", "-k", "4"], ["_.png", "__.png"])])
def test_a_picture_named_dot_dot_png_gets_a_file_name(tmp_path, pictures, command, written):
    # "..png" has the stem "."; the name of its output failed with a ValueError.
    pics, out = tmp_path / "pics", tmp_path / "out"
    pics.mkdir()
    for name in ("..png", "...png"):
        shutil.copy(pictures["mpl_present_rgba"], pics / name)
    code, _, err = run(*[part.format(pics=pics, out=out) for part in command])
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == written
