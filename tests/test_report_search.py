"""The report's --target-psnr: every k searched, the searched file measured like the others."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kqcodec
from kqcodec import imageio, metrics, quantizer, table as tables, textreport

from .test_cli import one_line, run
from .test_search import decoded, nearest_psnr

KS = (16, 64)
TARGET = 33.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pictures):
    """Two crops of real photos: a JPEG and a PNG."""
    root = tmp_path_factory.mktemp("pics")
    Image.open(pictures["skimage_rocket"]).crop((200, 100, 360, 220)).save(root / "rocket.jpg",
                                                                            quality=90)
    Image.open(pictures["skimage_coffee"]).crop((150, 80, 330, 200)).save(root / "coffee.png")
    return root


@pytest.fixture(scope="module")
def searched(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return kqcodec.report(folder, KS, out=out, jobs=1, target_psnr=TARGET), out


def same_table(a, b):
    """Equal apart from the time each encoding took."""
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_searched_k_reaches_the_target_and_one_fewer_does_not(folder, searched):
    table, out = searched
    rows = table[tables.searched(table)]
    assert sorted(rows["image"]) == ["coffee.png", "rocket.jpg"]
    for row in rows.itertuples():
        assert row.target_psnr == TARGET and row.status == "ok"
        path = out / row.encoded_file
        assert row.encoded_file == f"{Path(row.image).stem}_k{row.k}_psnr33.png"
        original = imageio.read_image(folder / row.image)
        # The file as written, decoded by Pillow, reaches the target ...
        assert metrics.psnr(original, decoded(path)) == pytest.approx(row.psnr, abs=1e-9)
        assert row.psnr >= TARGET and row.encoded_bytes == path.stat().st_size
        # ... it is the file `encode -k auto` writes, and the search's
        # encoding at k - 1, recomputed by brute force from its palette, falls short.
        choice = quantizer.choose_k(original, target_psnr=TARGET)
        assert choice.k == row.k and choice.data == path.read_bytes()
        below = {t.k: t for t in choice.trials}[row.k - 1]
        assert nearest_psnr(original, below.palette) < TARGET
    # The rows of the list are those of a report without the search.
    listed = table[~tables.searched(table)].reset_index(drop=True)
    assert list(listed["k"]) == [16, 64, 16, 64]


def test_the_recommendation_is_the_searched_k(searched):
    table, _ = searched
    recs = tables.recommend(table, TARGET).set_index("image")
    rows = table[tables.searched(table)].set_index("image")
    for name, rec in recs.iterrows():
        assert rec["searched"] and rec["k"] == rows.loc[name, "k"]
        assert rec["psnr"] == rows.loc[name, "psnr"]
        assert rec["note"] == (f"searched: k={rec['k']} reaches 33 dB, k={rec['k'] - 1} does "
                               f"not; {rec['psnr']:.2f} dB, "
                               f"{rows.loc[name, 'encoded_bytes']:,} bytes")
    # The list alone would name a coarser k; the medians per k leave the search out.
    listed = tables.recommend(table[~tables.searched(table)], TARGET)
    assert (listed["k"].astype(int) >= recs["k"].astype(int).values).all()
    assert list(tables.summary(table).index) == list(KS)
    text = textreport.render(table, "table", TARGET)
    assert "target_psnr" in text and "(searched: k=" in text


def test_unreachable_target_is_a_row_below_it_and_a_note(folder, tmp_path):
    table = kqcodec.report(folder, (4,), out=tmp_path, jobs=1, target_psnr=45, max_colors=8)
    rows = table[tables.searched(table)]
    assert list(rows["k"]) == [8, 8] and (rows["psnr"] < 45).all()
    assert (rows["status"] == "ok").all()
    recs = tables.recommend(table, 45)
    for rec, psnr in zip(recs.itertuples(), rows["psnr"]):
        assert pd.isna(rec.k)
        assert rec.note == f"searched: no k up to 8 reaches 45 dB (k=8: {psnr:.2f} dB)"


def test_command_line_prints_the_searched_k_and_exits_0(folder, tmp_path):
    code, out, err = run("report", folder, "-k", "16", "--out", tmp_path, "--quiet",
                         "--jobs", "1", "--target-psnr", "60", "--max-colors", "12")
    assert code == 0, err
    assert "no k up to 12 reaches 60 dB" in out
    code, out, err = run("report", folder, "-k", "16", "--out", tmp_path / "b", "--quiet",
                         "--jobs", "1", "--max-colors", "12")
    assert code == 2 and err == "kqcodec: error: --max-colors bounds the search of --target-psnr\n"
    code, out, err = run("report", folder, "-k", "16", "--out", tmp_path / "c", "--quiet",
                         "--target-psnr", "30", "--dither")
    assert code == 2 and "does not dither" in one_line(err)


def test_resume_keeps_the_searched_rows_of_the_same_target(folder, searched, tmp_path,
                                                           monkeypatch):
    from kqcodec import reporting

    first = kqcodec.report(folder, KS, out=tmp_path, jobs=1, target_psnr=TARGET)
    same_table(first, searched[0])
    seen = []
    real = reporting._report_job

    def recording(job):
        seen.append((job[1]["name"], tuple(job[1]["ks"]), job[1]["target_psnr"]))
        return real(job)

    monkeypatch.setattr(reporting, "_report_job", recording)
    again = kqcodec.report(folder, KS, out=tmp_path, jobs=1, target_psnr=TARGET, resume=True)
    assert seen == []
    same_table(again, first)
    # Another target: only the searches run again, and the old searched rows go.
    other = kqcodec.report(folder, KS, out=tmp_path, jobs=1, target_psnr=36, resume=True)
    assert sorted(seen) == [("coffee.png", (), 36.0), ("rocket.jpg", (), 36.0)]
    assert set(other["target_psnr"].dropna()) == {36.0}
    same_table(other[~tables.searched(other)].reset_index(drop=True),
               first[~tables.searched(first)].reset_index(drop=True))


def test_the_dask_engine_runs_the_search_in_its_task(folder, searched, tmp_path):
    table = kqcodec.report(folder, KS, out=tmp_path, scheduler="local", jobs=1,
                           target_psnr=TARGET)
    same_table(table, searched[0])


def test_page_marks_the_searched_row(searched, tmp_path, folder):
    from kqcodec import htmlpage

    table, out = searched
    data = htmlpage.page_data(table, tmp_path, folder=folder, out=out, target_psnr=TARGET)
    assert data["target"]["searched"] is True
    recs = tables.recommended_ks(table, TARGET)
    assert data["recommended"] == [recs[name] for name in data["names"]]
    # The medians per k are those of the list.
    assert [row[:2] for row in data["medians"]["rows"]] == [[16, 2], [64, 2]]


@pytest.mark.parametrize("ks, target, max_colors, box", [([2, 256], 35, 8, (0, 0, 600, 400)),
                                                         (None, 30, 256, (0, 0, 120, 80))])
def test_the_sheet_captions_the_recommended_k_with_its_own_file(tmp_path, pictures, monkeypatch,
                                                                ks, target, max_colors, box):
    # The searched encoding was shown for the recommended k even when a
    # listed k was the recommendation: with another k's bytes and PSNR.
    from kqcodec import figures, table as tables

    pics = tmp_path / "pics"
    pics.mkdir()
    Image.open(pictures["skimage_coffee"]).crop(box).save(pics / "c.png")
    if ks is None:
        # The listed ks around the search's answer: the smallest that reaches is listed.
        found = kqcodec.choose_k(np.asarray(Image.open(pics / "c.png")), target_psnr=target).k
        ks = [found - 1, found, found + 1]
    table = kqcodec.report(pics, ks, out=tmp_path / "out", jobs=1, target_psnr=target,
                           max_colors=max_colors)
    rec = tables.recommended_ks(table, target)["c.png"]
    listed = table[(table["k"] == rec) & ~tables.searched(table)]
    assert len(listed) == 1 and listed["psnr"].iloc[0] >= target
    captions = []
    monkeypatch.setattr(figures, "_show", lambda ax, pixels, caption: captions.append(caption))
    figures.compare_sheet(table, pics, tmp_path / "cmp.png", out=tmp_path / "out",
                          target_psnr=target)
    [shown] = [c for c in captions if "(recommended)" in c]
    assert shown == (f"k={rec} (recommended)\n{listed['encoded_bytes'].iloc[0]:,} B, "
                     f"{figures.number(listed['psnr'].iloc[0])} dB")
