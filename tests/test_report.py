"""The report: every column checked against the files it wrote, errors, exit codes."""

import io
import re
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

import kqcodec
from kqcodec import imagereport, journal, reporting, scan, table as tables, textreport

from .conftest import ihdr, png_chunks
from .test_cli import one_line

KS = (2, 16, 64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pictures):
    """Two small real pictures, one truncated JPEG and a text file."""
    root = tmp_path_factory.mktemp("pics")
    Image.open(pictures["skimage_rocket"]).crop((200, 100, 360, 220)).save(root / "rocket.jpg", quality=90)
    Image.open(pictures["mpl_present_rgba"]).save(root / "present.png")
    data = pictures["sklearn_china"].read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 3])
    (root / "notes.txt").write_text("not a picture")
    return root


@pytest.fixture(scope="module")
def table(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return reporting.report(folder, KS, out=out, jobs=1), out


def independent_psnr(original, decoded):
    """PSNR recomputed from scratch: RGB, or premultiplied RGB + alpha."""
    a, b = original.astype(np.float64), decoded.astype(np.float64)
    if a.shape[2] == 4:
        a[..., :3] *= a[..., 3:] / 255
        b[..., :3] *= b[..., 3:] / 255
    mse = np.mean((a - b) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255**2 / mse)


def test_columns_and_rows(table):
    table, _ = table
    assert list(table.columns) == tables.COLUMNS
    assert sorted(table["image"].unique()) == ["broken.jpg", "present.png", "rocket.jpg"]
    ok = table[table["status"] == "ok"]
    assert len(ok) == 2 * len(KS)
    assert sorted(ok["k"].unique()) == list(KS)


def test_every_column_matches_the_written_files(table, folder):
    table, out = table
    for row in table[table["status"] == "ok"].itertuples():
        src = folder / row.image
        assert row.encoded_file == f"{src.stem}_k{row.k}.png"
        written = out / row.encoded_file
        original = np.asarray(Image.open(src).convert("RGBA" if row.image.endswith("png") else "RGB"))
        decoded = np.asarray(Image.open(written).convert("RGBA" if original.shape[2] == 4 else "RGB"))
        chunks = dict(png_chunks(written))
        assert (row.width, row.height) == Image.open(src).size
        assert row.original_bytes == src.stat().st_size
        assert row.encoded_bytes == written.stat().st_size
        assert row.colors == len(chunks[b"PLTE"]) // 3 <= row.k
        assert row.bitdepth == ihdr(written)[2]
        assert row.ratio == pytest.approx(row.original_bytes / row.encoded_bytes)
        assert row.raw_ratio == pytest.approx(row.width * row.height * 3 / row.encoded_bytes)
        assert row.bpp == pytest.approx(8 * row.encoded_bytes / (row.width * row.height))
        assert row.psnr == pytest.approx(independent_psnr(original, decoded), abs=1e-9)
        a = original.astype(np.float64)
        b = decoded.astype(np.float64)
        if a.shape[2] == 4:
            a[..., :3] *= a[..., 3:] / 255
            b[..., :3] *= b[..., 3:] / 255
        assert row.ssim == pytest.approx(structural_similarity(a, b, channel_axis=2, data_range=255))
        assert row.seconds > 0 and row.error == ""


def test_unreadable_file_gets_an_error_row(table):
    table, _ = table
    bad = table[table["image"] == "broken.jpg"]
    assert len(bad) == 1
    row = bad.iloc[0]
    assert row["status"] == "error" and "truncated" in row["error"]
    assert pd.isna(row["k"]) and pd.isna(row["psnr"]) and row["encoded_file"] == ""


def test_recommendation_is_smallest_k_reaching_target():
    rows = [dict(image="a", k=k, psnr=p, status="ok", encoded_bytes=k * 10)
            for k, p in [(4, 20.0), (16, 30.0), (64, 36.0), (256, 41.0)]]
    rows += [dict(image="b", k=k, psnr=p, status="ok", encoded_bytes=k)
             for k, p in [(4, 25.0), (16, 33.0)]]
    table = pd.DataFrame(rows)
    recs = tables.recommend(table, 35).set_index("image")
    assert recs.loc["a", "k"] == 64
    assert pd.isna(recs.loc["b", "k"]) and "best: k=16" in recs.loc["b", "note"]
    assert tables.recommend(table, 30).set_index("image").loc["a", "k"] == 16


def test_a_listed_k_below_the_searched_one_is_recommended():
    # Each listed k is encoded apart from the search, and can reach the
    # target where the search's own encoding of that k fell short.
    rows = [dict(image="a", k=64, psnr=37.9, status="ok", encoded_bytes=640),
            dict(image="a", k=66, psnr=38.06, status="ok", encoded_bytes=660),
            dict(image="a", k=67, psnr=38.01, status="ok", encoded_bytes=670, target_psnr=38.0),
            dict(image="b", k=66, psnr=38.5, status="ok", encoded_bytes=66),
            dict(image="b", k=64, psnr=37.2, status="ok", encoded_bytes=64, target_psnr=38.0),
            dict(image="c", k=66, psnr=37.0, status="ok", encoded_bytes=66),
            dict(image="c", k=80, psnr=38.2, status="ok", encoded_bytes=80, target_psnr=38.0)]
    recs = tables.recommend(pd.DataFrame(rows), 38.0).set_index("image")
    assert recs.loc["a", "k"] == 66 and not recs.loc["a", "searched"]
    assert recs.loc["a", "note"] == "k=66 reaches 38 dB (a listed k; the search found k=67)"
    # The search stopped at 64 (--max-colors) without reaching the target.
    assert recs.loc["b", "k"] == 66
    assert recs.loc["b", "note"].endswith("(a listed k; the search found none up to k=64)")
    # Otherwise the searched k stands.
    assert recs.loc["c", "k"] == 80 and recs.loc["c", "searched"]


def test_summary_medians(table):
    table, _ = table
    summary = tables.summary(table)
    ok = table[table["status"] == "ok"]
    for k in KS:
        assert summary.loc[k, "median_psnr"] == pytest.approx(ok[ok["k"] == k]["psnr"].median())
        assert summary.loc[k, "images"] == 2


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "kqcodec", *map(str, args)],
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def test_command_exit_codes_csv_plot_and_sheet(folder, tmp_path):
    out, csv = tmp_path / "out", tmp_path / "t.csv"
    plot, sheet = tmp_path / "rd.png", tmp_path / "cmp.png"
    code, text, err = run("report", folder, "-k", "4,16", "--out", out, "--csv", csv,
                          "--plot", plot, "--compare", sheet, "--quiet", "--jobs", "2")
    assert code == 1, err  # the truncated JPEG failed, the rest is still written
    assert "present.png" in text and "recommend" not in err
    saved = pd.read_csv(csv)
    assert list(saved.columns) == tables.COLUMNS
    assert len(saved) == 5
    for path in (plot, sheet):
        img = Image.open(path)
        img.verify()
        assert img.format == "PNG" and img.size[0] > 200
    (folder / "broken.jpg").rename(tmp_path / "broken.jpg")
    try:
        code, text, err = run("report", folder, "-k", "4", "--out", out, "--format", "json")
        assert code == 0, err
        # A run without trouble says nothing more (numpy 1.24.0 warned on every NaN its
        # libraries cast to text: pandas writing the table's empty cells).
        assert err == ""
        records = json.loads(text)
        assert {r["image"] for r in records} == {"rocket.jpg", "present.png"}
    finally:
        (tmp_path / "broken.jpg").rename(folder / "broken.jpg")


def test_existing_different_encodings_are_kept_without_force(folder, tmp_path):
    out = tmp_path / "out"
    assert run("report", folder, "-k", "4", "--out", out, "--quiet")[0] == 1
    target = out / "rocket_k4.png"
    target.write_bytes(b"my own file")
    code, text, err = run("report", folder, "-k", "4", "--out", out, "--quiet", "--format", "csv")
    table = pd.read_csv(io.StringIO(text))
    row = table[table["image"] == "rocket.jpg"].iloc[0]
    assert row["status"] == "kept"
    assert row["error"].endswith("rocket_k4.png: already exists (use --force to replace it)")
    assert target.read_bytes() == b"my own file"
    assert "kept 1 existing" in err
    # The library's table says it as Python code does.
    table = kqcodec.report(folder, [4], out=out, jobs=1)
    [error] = table.loc[table["status"] == "kept", "error"]
    assert error.endswith("rocket_k4.png: already exists (use force=True to replace it)")
    code, text, err = run("report", folder, "-k", "4", "--out", out, "--quiet", "--force",
                          "--format", "csv")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_and_missing_folder_exit_66(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing to see")
    code, _, err = run("report", tmp_path)
    assert code == 66 and "no pictures" in err
    code, _, err = run("report", tmp_path / "nope")
    assert code == 66 and len(err.strip().splitlines()) == 1


def test_markdown_format(folder, tmp_path):
    table = kqcodec.report(folder, [4], out=tmp_path, jobs=1)
    text = textreport.render(table, "markdown")
    assert text.splitlines()[0].startswith("| image")
    assert "rocket.jpg" in text
    # Any other format printed the terminal table.
    with pytest.raises(kqcodec.UsageError, match="format must be one of table, markdown, csv, json"):
        textreport.render(table, "xml")


def test_an_output_folder_that_holds_the_picture_folder(tmp_path, pictures):
    # kqcodec report photos --out .
    folder = tmp_path / "photos"
    (folder / "photos").mkdir(parents=True)
    Image.open(pictures["mpl_present_rgba"]).save(folder / "a.png")
    Image.open(pictures["mpl_present_rgba"]).save(folder / "photos" / "a.png")
    code, text, err = run("report", folder, "-k", "2", "--out", tmp_path, "--quiet",
                          "--format", "csv")
    assert code == 0, err
    assert list(pd.read_csv(io.StringIO(text))["image"]) == ["a.png"]
    assert (tmp_path / "a_k2.png").is_file()
    # Read recursively, photos/photos/a.png's encoding would be photos/a_k2.png: among the
    # pictures, where a picture of that name could be.
    code, _, err = run("report", folder, "-k", "2", "--out", tmp_path, "--recursive")
    assert code == 2
    assert one_line(err) == (f"kqcodec: error: {tmp_path}: the output folder must not hold the "
                             "picture folder with --recursive: its sub-folders' outputs could "
                             "land among the pictures")


def test_a_compare_sheet_of_nothing_is_said_not_silently_skipped(folder, tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "broken.jpg").write_bytes((folder / "broken.jpg").read_bytes())
    code, _, err = run("report", pics, "-k", "4", "--out", tmp_path / "out", "--quiet",
                       "--compare", tmp_path / "cmp.png")
    assert code == 1
    assert (f"kqcodec: warning: {tmp_path / 'cmp.png'}: no picture was encoded, no sheet written"
            in err.splitlines())
    assert not (tmp_path / "cmp.png").exists()


def test_a_plot_of_nothing_finite_is_said_and_not_written(tmp_path):
    # A flat picture is exact at every k: the figure was blank, with
    # matplotlib's legend warning.
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(pics / "flat.png")
    code, _, err = run("report", pics, "-k", "2,4", "--out", tmp_path / "out", "--quiet",
                       "--plot", tmp_path / "rd.png")
    assert code == 0
    assert err.splitlines() == [f"kqcodec: warning: {tmp_path / 'rd.png'}: no encoding with a "
                                "finite PSNR (failed, or exact), no figure written"]
    assert not (tmp_path / "rd.png").exists()


def test_a_split_picture_says_its_warnings_once(tmp_path, pictures):
    pics = tmp_path / "pics"
    pics.mkdir()
    photo = Image.open(pictures["skimage_coffee"]).crop((0, 0, 120, 80))
    frames = [photo.quantize(16), photo.rotate(180).quantize(16)]
    frames[0].save(pics / "anim.gif", save_all=True, append_images=frames[1:])
    # One picture on two processes: its ks are split into parts, each reading it.
    code, _, err = run("report", pics, "-k", "2,4,8,16", "--out", tmp_path / "out", "--quiet",
                       "--jobs", "2")
    assert code == 0, err
    assert [line for line in err.splitlines() if "2 frames" in line] == [
        f"kqcodec: warning: {pics / 'anim.gif'}: GIF has 2 frames; only the first is used"]


def test_extra_outputs_that_would_lose_work_are_refused_before_any(folder, tmp_path):
    out = tmp_path / "out"
    cases = [(["--csv", tmp_path / "same.png", "--plot", tmp_path / "same.png"], 2,
              "--csv and --plot would write the same file"),
             (["--csv", out / "rocket_k4.png", "--force"], 73, "the report writes this file itself"),
             (["--plot", out / "rocket_k17_psnr30.png", "--force"], 73,
              "the report writes this file itself"),
             (["--csv", out / "report.csv", "--force"], 73, "the report writes this file itself"),
             (["--csv", tmp_path / "nowhere" / "t.csv"], 74, "its folder does not exist")]
    for extra, code, words in cases:
        result, _, err = run("report", folder, "-k", "4", "--out", out, *extra)
        assert result == code and words in one_line(err), err
        assert not out.exists()  # nothing was started
    (out / journal.FILENAME).mkdir(parents=True)
    result, _, err = run("report", folder, "-k", "4", "--out", out)
    assert result == 73 and "is a directory" in one_line(err)
    assert [p.name for p in out.iterdir()] == [journal.FILENAME]


def test_json_keeps_paths_and_names_as_typed(tmp_path, pictures):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    # A 2-color picture at k = 4 is lossless: its PSNR is infinite.
    Image.open(pictures["mpl_present_rgba"]).convert("1").save(folder / "sub" / "caf\u00e9.png")
    table = kqcodec.report(folder, [4], out=tmp_path / "out", recursive=True, jobs=1)
    text = textreport.render(table, "json")
    assert '"sub/caf\u00e9.png"' in text  # not "sub\\/caf\\u00e9.png"
    [record] = json.loads(text)
    assert record["image"] == "sub/caf\u00e9.png" and record["psnr"] is None
    assert record["encoded_bytes"] == table["encoded_bytes"].iloc[0]


def test_outputs_never_become_inputs_or_overwrite_them(tmp_path, pictures):
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.open(pictures["mpl_present_rgba"]).save(folder / "a.png")
    Image.open(pictures["mpl_present_rgba"]).convert("RGB").save(folder / "a_k2.png")
    before = (folder / "a_k2.png").read_bytes()
    # The picture folder itself cannot hold the encodings.
    code, _, err = run("report", folder, "-k", "2", "--out", folder, "--force", "--quiet")
    assert code == 2 and "must not be the picture folder" in err
    assert (folder / "a_k2.png").read_bytes() == before
    # An output folder inside it is never read back as pictures.
    out = folder / "enc"
    for _ in range(2):
        code, text, err = run("report", folder, "-k", "2", "--out", out, "--recursive", "--quiet",
                              "--format", "csv")
        assert code == 0, err
        assert sorted(pd.read_csv(io.StringIO(text))["image"]) == ["a.png", "a_k2.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a_k2.png", "a_k2_k2.png", "report.csv",
                                                       "report.options.json"]
    assert (folder / "a_k2.png").read_bytes() == before


def test_stem_collisions_get_distinct_names():
    from pathlib import Path
    root = Path("/pics")
    names = [root / n for n in ("a-png.gif", "a.PNG", "a.jpg", "a.png", "b.png")]
    stems = scan.plan_outputs(names, root)
    assert len(set(map(str, stems.values()))) == len(names)
    assert str(stems["a-png.gif"]) == "a-png" and str(stems["b.png"]) == "b"


def test_extra_outputs_are_checked_before_the_work(folder, tmp_path):
    existing = tmp_path / "t.csv"
    existing.write_text("keep me")
    code, text, err = run("report", folder, "-k", "2", "--out", tmp_path / "o", "--csv", existing)
    assert code == 73 and text == "" and existing.read_text() == "keep me"
    code, _, err = run("report", folder, "-k", "2", "--out", tmp_path / "o", "--plot",
                       tmp_path / "fig.xyz")
    assert code == 2 and "--plot" in err
    code, _, err = run("report", folder, "-k", "2", "--out", tmp_path / "o", "--csv",
                       folder / "present.png", "--force")
    assert code == 73 and "input" in err
    assert Image.open(folder / "present.png").format == "PNG"


def test_missing_picture_gives_an_error_row(tmp_path):
    table = imagereport.report_image(tmp_path / "nope.png", [4], out=tmp_path)
    assert list(table["status"]) == ["error"] and "no such file" in table["error"][0]


def test_figures_leave_the_callers_backend_alone(table, folder, tmp_path):
    import matplotlib

    from kqcodec import figures

    table, out = table
    before = matplotlib.get_backend()
    figures.plot_rate_distortion(table, tmp_path / "rd.svg")
    figures.compare_sheet(table, folder, tmp_path / "cmp.png", out=out, per_image=2)
    assert matplotlib.get_backend() == before
    assert (tmp_path / "rd.svg").read_text().lstrip().startswith("<?xml")
    sheet = Image.open(tmp_path / "cmp.png")
    assert sheet.size == (3 * 260, 2 * 260)  # 2 pictures, original + 2 encodings each


def test_sheet_finds_encodings_by_the_file_column(folder, tmp_path):
    """Two pictures sharing a stem: the sheet must show each one's own files."""
    from kqcodec import figures

    pics = tmp_path / "pics"
    pics.mkdir()
    Image.open(folder / "present.png").save(pics / "a.png")
    Image.open(folder / "rocket.jpg").save(pics / "a.jpg")
    table = reporting.report(pics, [2], out=tmp_path / "out", jobs=1)
    assert sorted(table["encoded_file"]) == ["a-png_k2.png", "a_k2.png"]
    figures.compare_sheet(table, pics, tmp_path / "cmp.png", out=tmp_path / "out")
    assert Image.open(tmp_path / "cmp.png").size[1] == 2 * 260


def test_ssimulacra2_column_only_when_asked_and_equal_to_the_metric(table, folder, tmp_path):
    plain, _ = table
    assert "ssimulacra2" not in plain.columns
    rows = imagereport.report_image(folder / "present.png", (8, 64), out=tmp_path,
                                  metrics=("psnr", "ssimulacra2"))
    assert list(rows.columns) == tables.columns(("psnr", "ssimulacra2"))
    assert rows["ssim"].isna().all()  # not asked
    original = kqcodec.read_image(folder / "present.png")
    for row in rows.itertuples():
        decoded = kqcodec.decode(tmp_path / row.encoded_file)
        assert row.ssimulacra2 == kqcodec.metrics.ssimulacra2(original, decoded)
    assert rows["ssimulacra2"].iloc[0] < rows["ssimulacra2"].iloc[1]


def test_recommendation_by_ssimulacra2():
    rows = [dict(image="a", k=k, psnr=p, ssimulacra2=s, status="ok", encoded_bytes=k)
            for k, p, s in [(16, 30.0, 40.0), (64, 36.0, 65.0), (256, 41.0, 78.0)]]
    table = pd.DataFrame(rows)
    recs = tables.recommend(table, target_ssimulacra2=70).set_index("image")
    assert recs.loc["a", "k"] == 256 and recs.loc["a", "note"] == "k=256 reaches SSIMULACRA2 70"
    assert tables.recommend(table).set_index("image").loc["a", "k"] == 64
    with pytest.raises(kqcodec.UsageError, match="no ssimulacra2 column"):
        tables.recommend(table.drop(columns="ssimulacra2"), target_ssimulacra2=70)


def test_command_target_ssimulacra2_and_space(folder, tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "present.png").write_bytes((folder / "present.png").read_bytes())
    code, text, err = run("report", pics, "-k", "8,64", "--out", tmp_path / "o",
                          "--target-ssimulacra2", "60", "--space", "oklab", "--quiet",
                          "--format", "csv")
    assert code == 0, err
    saved = pd.read_csv(io.StringIO(text))
    assert "ssimulacra2" in saved.columns and saved["ssimulacra2"].notna().all()
    code, _, err = run("report", pics, "--metrics", "psnr,vmaf", "--out", tmp_path / "o")
    assert code == 2 and "unknown measure vmaf" in err
    code, _, err = run("report", pics, "--target-psnr", "30", "--target-ssimulacra2", "60")
    assert code == 2 and "not allowed with" in err


def test_report_with_dither_writes_what_encode_writes(folder, tmp_path):
    rows = imagereport.report_image(folder / "rocket.jpg", (8,), out=tmp_path, dither=0.7)
    image = kqcodec.quantize(kqcodec.read_image(folder / "rocket.jpg"), 8, dither=0.7)
    assert (tmp_path / rows["encoded_file"].iloc[0]).read_bytes() == image.to_png()


def test_report_reuse_writes_what_encode_reuse_writes(tmp_path, pictures):
    # The table's file at k is the one `encode -k K --reuse` writes, and
    # the option is kept with the table: a resumed run without it is refused.
    folder, out = tmp_path / "pics", tmp_path / "out"
    folder.mkdir()
    (folder / "rocket.jpg").write_bytes(pictures["skimage_rocket"].read_bytes())
    code, _, err = run("report", folder, "--out", out, "-k", "16", "--space", "oklab",
                       "--reuse", "--jobs", "1", "--quiet")
    assert code == 0, err
    written = (out / "rocket_k16.png").read_bytes()
    encoded = kqcodec.encode(folder / "rocket.jpg", None, 16, space="oklab", reuse=1.0).data
    assert written == encoded
    assert written != kqcodec.encode(folder / "rocket.jpg", None, 16, space="oklab").data
    code, _, err = run("report", folder, "--out", out, "-k", "16", "--space", "oklab",
                       "--jobs", "1", "--quiet", "--resume")
    assert code == 2 and "reuse" in err, err
    code, _, err = run("report", folder, "--out", tmp_path / "o2", "-k", "16", "--reuse",
                       "--target-psnr", "35", "--quiet")
    assert code == 2 and "reuse" in err, err


def test_workers_start_without_pandas_and_the_table_is_the_same(folder, table, tmp_path):
    # The workers are forked before the parent imports pandas and return
    # plain rows; the parent alone makes the table, the same as in one process.
    table, _ = table
    code = ("import sys\n"
            "from kqcodec import reporting\n"
            "from kqcodec.cli import main\n"
            "real = reporting._report_job\n"
            "def job(args):\n"
            "    rows = real(args)\n"
            "    with open(sys.argv[1], 'a') as log:\n"
            "        log.write(f\"{'pandas' in sys.modules}\\n\")\n"
            "    return rows\n"
            "reporting._report_job = job\n"
            "sys.exit(main(sys.argv[2:]))\n")
    log, out = tmp_path / "log", tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", code, log, "report", folder, "--out", out,
                           "-k", ",".join(map(str, KS)), "--jobs", "2", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr  # broken.jpg
    jobs = log.read_text().split()
    assert len(jobs) >= 3 and set(jobs) == {"False"}
    made = tables.read_csv(out / "report.csv")
    pd.testing.assert_frame_equal(made.drop(columns="seconds"), table.drop(columns="seconds"))


def test_csv_to_standard_output_is_refused_in_one_line(folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder), "--csv", "-",
                           "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("kqcodec: error: --csv -: --csv takes a file name; "
                                   "--format csv prints the table on standard output")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_text_table_of_rows_that_failed_or_were_kept(folder, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "kqcodec", "report", str(folder), "-k", "8", "--out", str(out)]
    assert subprocess.run(command, capture_output=True).returncode == 1  # broken.jpg
    # Again at another speed, without --force: every encoding is kept, none measured.
    proc = subprocess.run([*command, "--speed", "10"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "<NA>" not in proc.stdout and "Empty DataFrame" not in proc.stdout
    assert proc.stdout.rstrip().endswith("== median over pictures, per k\n(none: no encoding is ok)")
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("8 ")]
    assert len(rows) == 2 and all(row[1:9] == ["-"] * 8 and row[9] == "kept" for row in rows)


def test_report_of_a_file_says_it_is_not_a_folder(folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(folder / "rocket.jpg"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 66
    assert proc.stderr.strip() == (f"kqcodec: error: {folder / 'rocket.jpg'}: not a folder "
                                   "(a report reads the pictures of a folder)")


def test_a_sheet_of_many_pictures_shows_the_first_ones(folder, tmp_path):
    from kqcodec import figures

    pics = tmp_path / "pics"
    pics.mkdir()
    photo = Image.open(folder / "rocket.jpg")
    for i in range(12):
        photo.crop((i * 20, 0, i * 20 + 40, 30)).save(pics / f"p{i:02d}.png")
    table = reporting.report(pics, [2, 4], out=tmp_path / "out", jobs=1)
    figures.compare_sheet(table, pics, tmp_path / "cmp.png", out=tmp_path / "out", per_image=2,
                          max_pictures=3)
    # Three rows of 260 pixels, and a line of title saying how many were left out.
    assert Image.open(tmp_path / "cmp.png").size == (3 * 260, 3 * 260 + 40)
    # On a tall sheet too the title stands in that line, above the first row
    # (matplotlib's own place for it landed on the first row's pictures).
    figures.compare_sheet(table, pics, tmp_path / "tall.png", out=tmp_path / "out", per_image=2,
                          max_pictures=11)
    sheet = np.asarray(Image.open(tmp_path / "tall.png").convert("L"))
    assert sheet.shape == (11 * 260 + 40, 3 * 260)
    assert sheet[:40].min() < 100  # the title's letters


def test_markdown_cells_hold_pipes_and_line_breaks_of_names(tmp_path, pictures):
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("a|pipe.png", "new\nline.png"):
        Image.open(pictures["mpl_present_rgba"]).save(folder / name)
    table = kqcodec.report(folder, [2], out=tmp_path / "out", jobs=1)
    lines = textreport.render(table, "markdown").splitlines()
    assert len(lines) == 4  # header, rule, two rows
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    assert {len(row) for row in cells} == {len(tables.columns())}
    assert [row[0] for row in cells[2:]] == ["a\\|pipe.png", "new\\nline.png"]
    assert "\n== new\\nline.png  (" in textreport.render(table)  # the group's header, one line


def test_a_name_too_long_for_its_encodings_is_an_error_row(tmp_path, pictures):
    folder = tmp_path / "pics"
    folder.mkdir()
    long = "a" * 251 + ".png"  # 255 bytes: its encoding's name, a_k4.png, would be 259
    for name in (long, "b.png"):
        Image.open(pictures["mpl_present_rgba"]).save(folder / name)
    code, text, err = run("report", folder, "-k", "4", "--out", tmp_path / "out", "--quiet",
                          "--format", "csv")
    assert code == 1 and "Traceback" not in err
    rows = pd.read_csv(io.StringIO(text), keep_default_na=False).set_index("image")
    assert rows.loc["b.png", "status"] == "ok"
    assert rows.loc[long, "status"] == "error"
    assert rows.loc[long, "error"].endswith("cannot create the output: File name too long")


def test_extra_outputs_that_are_links_leading_nowhere(folder, tmp_path):
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "missing" / "t.csv")
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    for name in ("dangling.csv", "loop.csv"):
        link = tmp_path / name
        result, _, err = run("report", folder, "-k", "4", "--out", tmp_path / "out", "--csv", link)
        assert result == 73 and "symbolic link that leads nowhere" in one_line(err)
        # Replaced, the link itself, with --force.
        result, _, err = run("report", folder, "-k", "4", "--out", tmp_path / "out", "--csv", link,
                             "--force")
        assert result == 1 and not link.is_symlink(), err  # the truncated JPEG fails
        assert pd.read_csv(link)["k"].dropna().tolist() == [4, 4]


@pytest.mark.parametrize("option, value", [("seed", -1), ("max_pixels", 0), ("jobs", 0),
                                           ("jobs", "2"), ("speed", 0), ("reuse", 99)])
def test_report_refuses_an_option_out_of_range_before_any_work(folder, tmp_path, option, value):
    # A seed or pixel limit out of range made every row an error row, and
    # a table was written; a jobs of "2" failed in the pool with a TypeError.
    with pytest.raises(kqcodec.UsageError):
        kqcodec.report(folder, [4], out=tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists()
    if option != "jobs":
        with pytest.raises(kqcodec.UsageError):
            kqcodec.report_image(sorted(folder.iterdir())[0], [4], out=tmp_path / "one",
                                 **{option: value})
        assert not (tmp_path / "one").exists()


def test_quantize_auto_refuses_a_seed_out_of_range_as_a_fixed_k_does(coffee):
    for k in (8, "auto"):
        with pytest.raises(kqcodec.UsageError, match="seed"):
            kqcodec.quantize(coffee, k, target_psnr=30 if k == "auto" else None, seed=-1)


@pytest.mark.parametrize("stem", ["../escaped", "/tmp/anywhere", "", "sub/.."])
def test_report_image_keeps_its_files_inside_out(folder, tmp_path, stem):
    with pytest.raises(kqcodec.UsageError, match="stem"):
        kqcodec.report_image(folder / "present.png", [4], out=tmp_path / "out", stem=stem)
    assert list(tmp_path.iterdir()) == []
    rows = kqcodec.report_image(folder / "present.png", [4], out=tmp_path / "out",
                                stem="sub/present")
    assert (tmp_path / "out" / rows["encoded_file"][0]).is_file()


def test_a_picture_s_profile_warning_is_said_once_with_the_sheet_and_the_page(tmp_path,
                                                                              pictures):
    # The sheet read the picture again and said its warning a second time.
    from PIL import ImageCms

    pics = tmp_path / "pics"
    pics.mkdir()
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.open(pictures["skimage_coffee"]).convert("RGB").save(pics / "lab.jpg", icc_profile=lab)
    code, _, err = run("report", pics, "-k", "2", "--out", tmp_path / "out", "--quiet",
                       "--compare", tmp_path / "cmp.png", "--html", tmp_path / "page.html")
    assert code == 0, err
    assert err.splitlines() == [f"kqcodec: warning: {pics / 'lab.jpg'}: unusable color profile "
                                "(a Lab profile, for neither RGB nor grey samples); using the raw values"]
    assert (tmp_path / "cmp.png").exists() and (tmp_path / "page.html").exists()
