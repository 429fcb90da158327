"""The interactive page, in a real browser: headless Chromium driven by Playwright.

One small report (three pictures, two with hostile names, one with
transparency) is opened in one browser; each test loads the page afresh and
checks what a user would do with it.  The browser is Debian's ``chromium``;
without it these tests are skipped (and fail under CI, which installs it).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kqcodec
from kqcodec import htmlpage, scan, table as tables
from kqcodec.errors import OutputExistsError

from .test_cli import one_line

KS = (4, 16, 64)
# File names are data: markup, quotes, ampersands and non-ASCII letters.
HOSTILE = "<img src=x onerror=alert(1)>.jpg"
QUOTED = "Tom's \"café\" & <b>co \U0001F3A8.png"  # a letter outside UTF-16's first plane
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Untagged PNGs are sRGB: show them unconverted, so pixels can be compared.
    "--force-color-profile=srgb",
]


def find_chromium():
    for candidate in (os.environ.get("KQCODEC_CHROMIUM"), shutil.which("chromium"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory, pictures):
    """A report page of three pictures, written by the command, and its table."""
    root = tmp_path_factory.mktemp("site")
    pics = root / "pictures"
    pics.mkdir()
    Image.open(pictures["skimage_coffee"]).crop((200, 100, 360, 220)).save(pics / "coffee.png")
    Image.open(pictures["skimage_rocket"]).crop((250, 150, 330, 210)).save(pics / HOSTILE)
    Image.open(pictures["mpl_present_rgba"]).resize((64, 64)).save(pics / QUOTED)
    data = pictures["sklearn_china"].read_bytes()
    (pics / "broken.jpg").write_bytes(data[: len(data) // 3])  # an error row, no encodings
    code = subprocess.run(
        [sys.executable, "-m", "kqcodec", "report", pics, "-k", ",".join(map(str, KS)),
         "--out", root / "out", "--html", root / "report.html", "--csv", root / "table.csv",
         "--metrics", "psnr,ssim,ssimulacra2",
         "--quiet", "--jobs", "1"], capture_output=True, text=True)
    assert code.returncode == 1 and "truncated" in code.stderr + code.stdout, code.stderr
    table = pd.read_csv(root / "table.csv", keep_default_na=False, dtype={"k": str})
    return root, table


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium in CI: .ci/run must install Debian's chromium")
        pytest.skip("no Chromium browser found (apt-get install chromium, or set KQCODEC_CHROMIUM)")
    profile = Path(__import__("tempfile").mkdtemp(prefix="kqcodec-chromium-"))
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=BROWSER_ARGS,
            viewport={"width": 1200, "height": 800}, device_scale_factor=1)
        context.set_default_timeout(10_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


class Page:
    """A freshly loaded report page, with everything it said and asked for."""

    def __init__(self, context, root):
        self.root = root
        self.page = context.new_page()
        self.errors, self.requests, self.dialogs = [], [], []
        self.page.on("console",
                     lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto((root / "report.html").as_uri())
        self.page.wait_for_selector("#rows tbody tr")

    def assert_clean(self):
        """No error, no dialog, no request outside the page's folder."""
        assert self.errors == [] and self.dialogs == []
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme == "data":
                continue
            assert parsed.scheme == "file", url
            assert Path(unquote(parsed.path)).resolve().is_relative_to(self.root.resolve()), url

    def viewer_file(self, selector="#pane-a img.enc"):
        """The file an image of the viewer shows, once it has loaded."""
        self.page.wait_for_function(
            f"() => {{ const i = document.querySelector({json.dumps(selector)}); "
            "return i.complete && i.naturalWidth > 0; }")
        src = self.page.get_attribute(selector, "src")
        return Path(unquote(urlparse(self.page.evaluate(
            f"document.querySelector({json.dumps(selector)}).src")).path)), src

    def visible(self, selector):
        return self.page.locator(selector).is_visible()

    def shown(self, selector):
        """Whether `selector` is visible within 5 s: an image shown first has to load."""
        from playwright.sync_api import TimeoutError as Timeout

        try:
            self.page.locator(selector).wait_for(state="visible", timeout=5000)
        except Timeout:
            return False
        return True


@pytest.fixture
def page(browser, site):
    opened = Page(browser, site[0])
    yield opened
    opened.page.close()


def row_of(table, name, k):
    return table[(table["image"] == name) & (table["k"] == str(k))].iloc[0]


def test_table_has_one_row_per_picture_and_k(page, site):
    _, table = site
    cells = page.page.eval_on_selector_all(
        "#rows tbody tr", "trs => trs.map(t => [t.querySelector('td.image').textContent, "
        "t.querySelector('td.k').textContent.replace(' \u2605', '')])")
    assert sorted(map(tuple, cells)) == sorted(zip(table["image"], table["k"]))
    assert len(cells) == 3 * len(KS) + 1
    # Every cell shows the table's value (measures to 4 significant digits).
    shown = page.page.eval_on_selector_all("#rows tbody tr", """trs => trs.map(t =>
        Object.fromEntries([...t.querySelectorAll('td')].slice(1).map(
            (td, i) => [document.querySelectorAll('#rows th[data-col]')[i].dataset.col,
                        td.firstChild ? td.firstChild.textContent : ''])))""")
    measures = ("psnr", "ssim", "ssimulacra2", "ratio", "raw_ratio", "bpp", "seconds")
    for cell in shown:
        row = table[(table["image"] == cell["image"]) & (table["k"] == cell["k"])].iloc[0]
        for column, text in cell.items():
            expected = row[column]
            if column in measures and expected != "":
                # Every digit shown is the table's (up to 4 significant), none made up.
                number = text.replace(",", "")
                decimals = len(number.partition(".")[2])
                assert abs(float(number) - float(expected)) <= 0.5 * 10.0**-decimals + 1e-12, \
                    (column, text, expected)
            elif column in ("width", "height", "colors", "bitdepth", "original_bytes",
                            "encoded_bytes") and expected != "":
                assert text == f"{int(float(expected)):,}", column
            else:
                assert text == str(expected), column
    error = page.page.locator("#rows tr", has_text="broken.jpg")
    assert "truncated" in error.locator("td.error").text_content()
    assert error.locator("img").count() == 0
    headers = page.page.eval_on_selector_all("#rows th[data-col]",
                                             "ths => ths.map(t => t.dataset.col)")
    assert headers == list(table.columns) and "ssimulacra2" in headers
    # The recommended k is marked on its row, and the medians have one row per k.
    ok = table[table["status"] == "ok"].astype({"k": int, "psnr": float})
    for name, k in tables.recommended_ks(ok).items():
        if k is not None:
            marked = page.page.locator("#rows tr.rec", has_text=name)
            assert marked.count() == 1 and marked.locator("td.k").text_content().startswith(str(k))
    assert page.page.locator("#medians tbody tr").count() == len(KS)
    # A median of whole numbers (bytes) is shown whole, to the byte.
    heads = page.page.eval_on_selector_all("#medians th", "ths => ths.map(t => t.textContent)")
    column = heads.index("median encoded_bytes")
    texts = page.page.eval_on_selector_all(
        "#medians tbody tr", f"trs => trs.map(t => t.children[{column}].textContent)")
    ok_bytes = ok.astype({"encoded_bytes": float}).groupby("k")["encoded_bytes"].median()
    assert texts == [f"{round(ok_bytes[k]):,}" for k in sorted(ok_bytes.index)]
    page.assert_clean()


def test_sorting_by_bytes_orders_the_rows(page):
    def column():
        texts = page.page.eval_on_selector_all("#rows td.encoded_bytes",
                                               "tds => tds.map(t => t.textContent)")
        return [int(t.replace(",", "")) if t else None for t in texts]

    unsorted = column()
    known = [v for v in unsorted if v is not None]
    page.page.click("#rows th[data-col=encoded_bytes]")
    assert column() == sorted(known) + [None] and column() != unsorted  # the error row last
    page.page.click("#rows th[data-col=encoded_bytes]")
    assert column() == sorted(known, reverse=True) + [None]
    page.assert_clean()


def test_chart_point_and_arrow_keys_load_the_right_encoding(page, site):
    root, table = site
    page.page.click("#chart circle[data-pic='0'][data-k='16']")
    assert page.visible("#viewer")
    name = page.page.text_content("#v-name")
    for key, k in ((None, 16), ("ArrowRight", 64), ("ArrowRight", 64), ("ArrowLeft", 16),
                   ("ArrowLeft", 4)):
        if key:
            page.page.keyboard.press(key)
        shown, _ = page.viewer_file()
        expected = root / "out" / row_of(table, name, k)["encoded_file"]
        assert shown == expected.resolve(), (key, k)
        assert f"k={k}" in page.page.text_content("#v-caption")
        assert page.viewer_file("#pane-b img.enc")[0] == shown
    # The list chooses k too; the caption has the measures, a perceptual score included.
    page.page.select_option("#v-k", label="k=64")
    assert page.viewer_file()[0].name == row_of(table, name, 64)["encoded_file"]
    row = row_of(table, name, 64)
    caption = page.page.text_content("#v-caption")
    for text in (f"{int(row['colors'])} colors", f"{int(row['encoded_bytes']):,} bytes",
                 f"PSNR {float(row['psnr']):.2f} dB", f"SSIM {float(row['ssim']):.4f}",
                 f"SSIMULACRA2 {float(row['ssimulacra2']):.2f}"):
        assert text in caption
    page.assert_clean()


def test_a_searched_encoding_at_a_listed_k_is_its_own_step(browser, tmp_path, pictures):
    # The search's file at k and the list's file at the same k are two encodings.
    pics = tmp_path / "pictures"
    pics.mkdir()
    Image.open(pictures["mpl_present_rgba"]).save(pics / "present.png")
    k = kqcodec.choose_k(kqcodec.read_image(pics / "present.png"), target_psnr=38).k
    proc = subprocess.run(
        [sys.executable, "-m", "kqcodec", "report", pics, "-k", f"16,{k},256", "--target-psnr",
         "38", "--out", tmp_path / "out", "--html", tmp_path / "report.html", "--quiet"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    opened = Page(browser, tmp_path)
    try:
        opened.page.click("#chart circle[data-pic='0'][data-k='16']")
        steps = [(16, False, "present_k16.png"), (k, False, f"present_k{k}.png"),
                 (k, True, f"present_k{k}_psnr38.png"), (256, False, "present_k256.png")]
        for i, (step_k, searched, name) in enumerate(steps):
            if i:
                opened.page.keyboard.press("ArrowRight")
            assert opened.viewer_file()[0].name == name
            state = opened.page.evaluate("window.kqcodecViewer()")
            assert (state["k"], state["searched"]) == (step_k, searched)
        opened.page.select_option("#v-k", label=f"k={k} \u2605 recommended")
        assert opened.viewer_file()[0].name == f"present_k{k}_psnr38.png"
        assert "(recommended)" in opened.page.text_content("#v-caption")
        opened.assert_clean()
    finally:
        opened.page.close()


def test_a_listed_k_recommended_beside_a_search_is_marked(browser, tmp_path, pictures):
    # The search found no k up to 8 that reaches 35 dB; the listed k = 256
    # does, and is recommended: the page marked nothing.
    pics = tmp_path / "pictures"
    pics.mkdir()
    shutil.copy(pictures["skimage_coffee"], pics / "coffee.png")
    proc = subprocess.run(
        [sys.executable, "-m", "kqcodec", "report", pics, "-k", "2,256", "--target-psnr", "35",
         "--max-colors", "8", "--out", tmp_path / "out", "--html", tmp_path / "report.html",
         "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "k=256 reaches 35 dB" in proc.stdout
    opened = Page(browser, tmp_path)
    try:
        marked = opened.page.locator("#rows tr.rec")
        assert marked.count() == 1
        assert marked.locator("td.k").text_content() == "256 \u2605"
        assert marked.locator("td.encoded_file").text_content() == "coffee_k256.png"
        assert opened.page.locator("#chart circle.rec-point").count() == 1
        assert opened.page.get_attribute("#chart circle.rec-point", "data-k") == "256"
        opened.assert_clean()
    finally:
        opened.page.close()


def test_chart_plots_any_numeric_column(page, site):
    _, table = site
    options = page.page.eval_on_selector_all("#chart-y option", "os => os.map(o => o.value)")
    assert {"psnr", "ssim", "ssimulacra2", "bpp", "encoded_bytes"} <= set(options)
    assert "image" not in options and "width" not in options  # text, and constant per picture
    page.page.select_option("#chart-y", "ssimulacra2")
    assert page.page.locator("#chart text", has_text="ssimulacra2").count() == 1
    assert page.page.locator("#chart circle").count() == (table["status"] == "ok").sum()
    page.assert_clean()


def test_split_slider_moves(page):
    page.page.click("#rows tbody tr")
    page.page.keyboard.press("2")
    assert page.visible("#v-split") and not page.visible("#pane-b")
    box = page.page.locator("#v-split").bounding_box()
    layer = "#pane-a .layer.enc"
    before = page.page.eval_on_selector(layer, "e => e.style.clipPath")
    page.page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
    after = page.page.eval_on_selector(layer, "e => e.style.clipPath")
    value = float(page.page.input_value("#v-split"))
    assert before == "inset(0px 0px 0px 50%)" and after != before
    assert 15 < value < 25 and after == f"inset(0px 0px 0px {value:g}%)"
    divider = page.page.locator("#pane-a .divider").bounding_box()
    pane = page.page.locator("#pane-a").bounding_box()
    assert divider["x"] + divider["width"] / 2 == pytest.approx(
        pane["x"] + pane["width"] * value / 100, abs=1)
    page.assert_clean()


def test_flip_key_swaps_the_images(page):
    page.page.click("#rows tbody tr")
    page.page.keyboard.press("3")
    assert page.shown("#pane-a img.enc") and not page.visible("#pane-a img.orig")
    page.page.keyboard.press("f")
    assert page.shown("#pane-a img.orig") and not page.visible("#pane-a img.enc")
    assert page.page.text_content("#pane-a .tag").startswith("original")
    page.page.keyboard.press("f")
    assert page.shown("#pane-a img.enc") and not page.visible("#pane-a img.orig")
    page.assert_clean()


def test_flipping_and_changing_mode_keep_the_detail_in_view(page):
    # Every mode change centred the picture again: a zoomed detail was lost.
    page.page.click("#rows tbody tr")
    for key in ("3", "+", "+", "Shift+ArrowLeft", "Shift+ArrowUp"):
        page.page.keyboard.press(key)
    view = page.page.get_attribute("#pane-a img.enc", "style")
    assert "scale(4)" in view
    for key, shown in (("f", "orig"), ("f", "enc"), ("2", "enc"), ("4", "enc")):
        page.page.keyboard.press(key)
        assert page.page.get_attribute(f"#pane-a img.{shown}", "style") == view, key
    page.page.keyboard.press("1")  # side by side: two narrower panes, centred again
    assert page.page.get_attribute("#pane-a img.enc", "style") != view
    page.assert_clean()


def test_arrows_choose_k_after_the_split_slider_is_used(page):
    # Once dragged, the slider kept the arrows: they moved it, not k.
    page.page.click("#rows tbody tr")
    page.page.keyboard.press("2")
    box = page.page.locator("#v-split").bounding_box()
    page.page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    split = page.page.evaluate("window.kqcodecViewer().split")
    assert split < 40
    before = page.page.evaluate("window.kqcodecViewer().k")
    page.page.keyboard.press("ArrowRight")
    state = page.page.evaluate("window.kqcodecViewer()")
    assert state["k"] > before and state["split"] == split
    page.assert_clean()


def test_a_page_of_failed_pictures_says_so_plainly(browser, tmp_path, pictures):
    pics = tmp_path / "pictures"
    pics.mkdir()
    (pics / "bad.png").write_bytes(pictures["mpl_present_rgba"].read_bytes()[:3000])
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", pics, "-k", "4,16",
                           "--out", tmp_path / "out", "--html", tmp_path / "report.html",
                           "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    opened = Page(browser, tmp_path)
    try:
        # It said "0 encodings at k = ." of no k at all.
        assert opened.page.text_content("#summary").startswith("1 picture, 0 encodings. ")
        opened.assert_clean()
    finally:
        opened.page.close()


def test_screenshot_at_1_1_shows_the_decoded_pixels(page, site, tmp_path):
    root, table = site
    name, k = "coffee.png", 16
    index = list(dict.fromkeys(table["image"])).index(name)
    page.page.click(f"#chart circle[data-pic='{index}'][data-k='{k}']")
    assert page.page.text_content("#v-name") == name
    page.page.keyboard.press("3")  # flip: the encoding alone
    shown, _ = page.viewer_file()
    box = page.page.locator("#pane-a img.enc").bounding_box()
    assert box["x"] == int(box["x"]) and box["y"] == int(box["y"])  # on whole pixels
    assert (box["width"], box["height"]) == (160, 120)  # 1:1
    shot = tmp_path / "viewer.png"
    page.page.screenshot(path=shot, clip=dict(x=box["x"], y=box["y"], width=160, height=120))
    seen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    decoded = np.asarray(Image.open(root / "out" / row_of(table, name, k)["encoded_file"])
                         .convert("RGB")).astype(int)
    assert seen.std() > 10  # not blank
    patch = (slice(40, 72), slice(60, 100))
    assert np.abs(seen[patch] - decoded[patch]).max() <= 1
    # Zoomed in 2x, each picture pixel is a 2x2 block of the same color.
    page.page.keyboard.press("+")
    box = page.page.locator("#pane-a img.enc").bounding_box()
    assert box["width"] == 320
    page.page.screenshot(path=shot,
                         clip=dict(x=box["x"] + 80, y=box["y"] + 80, width=40, height=40))
    seen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert np.abs(seen - np.repeat(np.repeat(decoded[40:60, 40:60], 2, 0), 2, 1)).max() <= 1
    page.assert_clean()


def test_transparency_sits_on_a_checkerboard(page):
    background = page.page.eval_on_selector("#pane-a", "e => getComputedStyle(e).backgroundImage")
    assert "conic-gradient" in background
    page.assert_clean()


def test_hostile_names_show_as_text_and_run_nothing(page, site):
    root, table = site
    cells = page.page.eval_on_selector_all("#rows td.image", "tds => tds.map(t => t.textContent)")
    assert HOSTILE in cells and QUOTED in cells
    legend = page.page.eval_on_selector_all("#legend li", "lis => lis.map(l => l.textContent)")
    assert HOSTILE in legend and QUOTED in legend
    assert page.page.locator("#rows img[src=x]").count() == 0
    assert page.page.locator("b").count() == 0
    page.page.locator("#rows tr", has_text=HOSTILE).first.click()
    assert page.page.text_content("#v-name") == HOSTILE
    original, _ = page.viewer_file("#pane-a img.orig")
    assert original == (root / "pictures" / HOSTILE).resolve()
    page.page.locator("#v-close").click()
    page.page.locator("#rows tr", has_text=QUOTED).first.click()
    assert page.page.text_content("#v-name") == QUOTED
    assert page.viewer_file("#pane-a img.orig")[0] == (root / "pictures" / QUOTED).resolve()
    k = page.page.evaluate("window.kqcodecViewer().k")
    encoding = row_of(table, QUOTED, str(k))["encoded_file"]
    assert page.viewer_file()[0] == (root / "out" / encoding).resolve()
    page.page.wait_for_timeout(200)  # time for a stray handler to fire
    assert page.page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    page.assert_clean()


def test_the_data_blob_cannot_end_the_script(tmp_path):
    """Names with "</script>" or "<!--" (possible in sub-folders) stay inside the JSON."""
    name = "a</script><script>alert(1)</script><!--/b.png"
    table = tables.frame([dict(image=name, width=2, height=2, k=2, colors=2, bitdepth=1,
                               original_bytes=10, encoded_bytes=5, ratio=2.0, raw_ratio=2.4,
                               bpp=10.0, psnr=float("inf"), ssim=1.0, seconds=0.1,
                               encoded_file="a</script><script>alert(1)</script><!--/b_k2.png",
                               status="ok", error="")])
    page = tmp_path / "p.html"
    htmlpage.write_page(table, page, folder=tmp_path, out=tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert text.count("</script") == 2 and "<!--" not in text
    blob = re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1)
    data = json.loads(blob)
    assert data["names"] == [name] and data["originals"] == "."
    # One row, one k: the measures are stored as the sequence of ks' values,
    # the picture's size per picture.
    assert data["store"]["psnr"]["each"] == ["inf"]
    assert data["store"]["ssim"] == {"each": [1000], "other": {}, "decimals": 3}  # 1.000
    assert data["store"]["width"] == {"picture": [2], "described": 1}


@pytest.mark.filterwarnings("ignore:GIF has 2 frames")
def test_originals_a_browser_shows_differently_get_a_png_copy(tmp_path, pictures):
    from kqcodec import imageio

    pics = tmp_path / "pics"
    pics.mkdir()
    shutil.copy(pictures["sklearn_china"], pics / "srgb.jpg")
    shutil.copy(pictures["skimage_rocket"], pics / "adobe.jpg")  # rendered as browsers do
    Image.open(pictures["sklearn_china"]).convert("CMYK").save(pics / "cmyk.jpg")
    Image.open(pictures["skimage_coffee"]).crop((0, 0, 40, 30)).save(pics / "c.tiff")
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(pics / "anim.gif", save_all=True, append_images=frames[1:])
    names = ("srgb.jpg", "adobe.jpg", "c.tiff", "anim.gif", "cmyk.jpg")
    assert [imageio.shown_as_read(pics / n) for n in names] == [True, True, False, False, False]
    names = sorted(p.name for p in pics.iterdir())
    table = tables.frame([dict(image=n, k=2, psnr=30.0, status="ok", error="",
                               encoded_file=f"{n}_k2.png") for n in names])
    data = htmlpage.page_data(table, tmp_path, folder=pics, out=tmp_path / "out",
                              copies=tmp_path / "p_files")
    copied = {data["names"][int(i)]: url for i, url in data["copies"].items()}
    assert set(copied) == {"c.tiff", "anim.gif", "cmyk.jpg"}
    for name, url in copied.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", imageio.KqcodecWarning)  # anim.gif's frames
            expected = imageio.read_image(pics / name, max_pixels=None)
        assert np.array_equal(imageio.read_image(tmp_path / unquote(url)), expected)
    assert data["originals"] == "pics"
    # Encodings kept from an earlier run (not written anew): the pictures
    # were read, and get their copies all the same; unreadable ones none.
    for status, expected in (("kept", copied.keys()), ("error", set())):
        again = htmlpage.page_data(table.assign(status=status), tmp_path, folder=pics,
                                   out=tmp_path / "out", copies=tmp_path / "p_files", force=True)
        assert {again["names"][int(i)] for i in again["copies"]} == set(expected)


def test_difference_view_is_the_amplified_error_as_a_heat_map(page, site, tmp_path):
    root, table = site
    name, k, gain = "coffee.png", 4, 4
    index = list(dict.fromkeys(table["image"])).index(name)
    page.page.click(f"#chart circle[data-pic='{index}'][data-k='{k}']")
    page.page.keyboard.press("4")
    page.page.select_option("#v-gain", str(gain))
    page.viewer_file()
    page.viewer_file("#pane-a img.orig")
    box = page.page.locator("#pane-a img.enc").bounding_box()
    shot = tmp_path / "diff.png"
    page.page.screenshot(path=shot, clip=dict(x=box["x"], y=box["y"], width=160, height=120))
    seen = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    original = np.asarray(Image.open(root / "pictures" / name).convert("RGB")).astype(float)
    decoded = np.asarray(Image.open(root / "out" / row_of(table, name, k)["encoded_file"])
                         .convert("RGB")).astype(float)
    # Mean absolute error of the channels, times the gain, through black-red-yellow-white.
    t = np.clip(gain * np.abs(original - decoded).mean(axis=2) / 255, 0, 1)
    expected = np.stack([np.clip(3 * t - i, 0, 1) for i in range(3)], axis=2) * 255
    assert np.abs(seen - expected).max() <= 4
    assert seen.std() > 10
    page.assert_clean()


def test_page_option_is_checked_before_the_work(tmp_path, pictures):
    pics = tmp_path / "pics"
    pics.mkdir()
    Image.open(pictures["mpl_present_rgba"]).save(pics / "a.png")
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "kqcodec", "report", pics, "-k", "2", "--out", tmp_path / "out",
         "--quiet", *extra], capture_output=True, text=True)
    bad = run("--html", tmp_path / "page.txt")
    assert bad.returncode == 2 and "--html" in bad.stderr and not (tmp_path / "out").exists()
    (tmp_path / "page.html").write_text("mine")
    kept = run("--html", tmp_path / "page.html")
    assert kept.returncode == 73 and (tmp_path / "page.html").read_text() == "mine"
    assert run("--html", tmp_path / "page.html", "--force").returncode == 0
    assert "report-data" in (tmp_path / "page.html").read_text()


def test_medians_of_whole_numbers_stay_whole(tmp_path, pictures):
    pics = tmp_path / "pictures"
    pics.mkdir()
    for name in ("skimage_coffee", "sklearn_china"):
        Image.open(pictures[name]).save(pics / f"{name}.png")
    table = kqcodec.report(pics, [32, 64], out=tmp_path / "out", jobs=1)
    data = htmlpage.page_data(table, tmp_path, folder=pics, out=tmp_path / "out")
    # Tens of thousands of bytes: 4 significant digits would lose the last one.
    assert table["encoded_bytes"].min() > 10_000
    for k, row in zip((32, 64), data["medians"]["rows"]):
        medians = dict(zip(data["medians"]["columns"], row))
        expected = table.loc[table["k"] == k, "encoded_bytes"].astype(float).median()
        assert medians["k"] == k and medians["encoded_bytes"] == round(expected)


def test_a_page_whose_copies_would_lose_data_is_refused_before_any_work(tmp_path, pictures):
    pics = tmp_path / "pics"
    (pics / "page_files").mkdir(parents=True)
    Image.open(pictures["skimage_rocket"]).crop((0, 0, 48, 32)).save(pics / "a.tif")
    inside = pics / "page_files" / "original-0.png"
    Image.open(pictures["skimage_rocket"]).crop((0, 0, 32, 32)).save(inside)
    before = inside.read_bytes()
    # A picture where the page writes its copies: never replaced, even with --force.
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(pics), "-k", "4",
                           "--out", str(tmp_path / "out"), "--recursive", "--quiet",
                           "--html", str(pics / "page.html"), "--force"],
                          capture_output=True, text=True)
    assert proc.returncode == 73, proc.stderr
    assert "where the page writes its copies" in proc.stderr
    assert inside.read_bytes() == before and not (tmp_path / "out").exists()
    # Copies of an earlier page, without --force: refused before the work, not after.
    old = tmp_path / "old_files"
    old.mkdir()
    (old / "original-0.png").write_bytes(before)
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(pics), "-k", "4",
                           "--out", str(tmp_path / "out"), "--quiet",
                           "--html", str(tmp_path / "old.html")],
                          capture_output=True, text=True)
    assert proc.returncode == 73, proc.stderr
    assert "holds the copies of an earlier page; use --force" in proc.stderr
    assert not (tmp_path / "out").exists()
    # From Python the option is said as Python sets it ("use --force" was in the message).
    with pytest.raises(OutputExistsError, match="earlier page; use force=True to replace them"):
        scan.check_extra_outputs([pics / "a.tif"], html=tmp_path / "old.html")
    # A file where the folder of copies goes: it failed after the work, with a traceback.
    (tmp_path / "file_files").write_bytes(b"mine")
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", str(pics), "-k", "4",
                           "--out", str(tmp_path / "out"), "--quiet", "--force",
                           "--html", str(tmp_path / "file.html")],
                          capture_output=True, text=True)
    assert proc.returncode == 73, proc.stderr
    assert one_line(proc.stderr) == (f"kqcodec: error: {tmp_path / 'file_files'}: not a folder, "
                                     "where the page writes its copies; give the page another "
                                     "name")
    assert (tmp_path / "file_files").read_bytes() == b"mine" and not (tmp_path / "out").exists()


def test_a_page_of_one_k_has_its_medians_and_chart(browser, tmp_path, pictures):
    # One row per picture shows every column constant within pictures; the
    # measures are still measures, only the picture's own columns are not.
    pics = tmp_path / "pictures"
    pics.mkdir()
    for name in ("skimage_coffee", "mpl_present_rgba"):
        Image.open(pictures[name]).save(pics / f"{name}.png")
    table = kqcodec.report(pics, [16], out=tmp_path / "out", jobs=1)
    data = htmlpage.page_data(table, tmp_path, folder=pics, out=tmp_path / "out")
    assert {"encoded_bytes", "psnr", "bpp", "ratio"} <= set(data["medians"]["columns"])
    assert not {"width", "height", "original_bytes"} & set(data["medians"]["columns"])
    htmlpage.write_page(table, tmp_path / "report.html", folder=pics, out=tmp_path / "out")
    opened = Page(browser, tmp_path)
    try:
        assert opened.page.locator("#chart circle").count() == 2
        options = opened.page.eval_on_selector_all("#chart-x option", "os => os.map(o => o.value)")
        assert "bpp" in options and "width" not in options
        opened.assert_clean()
    finally:
        opened.page.close()


def test_a_page_written_again_with_force_keeps_only_its_own_copies(tmp_path, pictures):
    # The earlier page's copy of a picture since removed stayed beside the page.
    pics = tmp_path / "pics"
    pics.mkdir()
    im = Image.open(pictures["skimage_coffee"]).convert("RGB").resize((60, 40))
    im.save(pics / "a.tif")
    im.rotate(180).save(pics / "b.tif")
    args = [sys.executable, "-m", "kqcodec", "report", str(pics), "-k", "2", "--out",
            str(tmp_path / "out"), "--html", str(tmp_path / "page.html"), "--quiet"]
    assert subprocess.run(args, capture_output=True).returncode == 0
    copies = tmp_path / "page_files"
    assert sorted(p.name for p in copies.iterdir()) == ["original-0.png", "original-1.png"]
    (pics / "a.tif").unlink()
    (copies / "notes.txt").write_text("mine")
    assert subprocess.run(args + ["--force"], capture_output=True).returncode == 0
    assert sorted(p.name for p in copies.iterdir()) == ["notes.txt", "original-0.png"]
    np.testing.assert_array_equal(kqcodec.read_image(copies / "original-0.png"),
                                  np.asarray(im.rotate(180)))


def translucent_page(browser, tmp_path):
    """The page of a report of a picture a third opaque, a third at alpha 128 and a third
    clear, encoded exactly (k = 4), with its one row's viewer open."""
    pics = tmp_path / "pictures"
    pics.mkdir()
    pixels = np.zeros((64, 96, 4), np.uint8)
    pixels[:, :32] = (200, 30, 30, 255)
    pixels[:, 32:64] = (30, 60, 220, 128)
    Image.fromarray(pixels).save(pics / "semi.png")
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "report", pics, "-k", "4", "--out",
                           tmp_path / "out", "--html", tmp_path / "report.html", "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    opened = Page(browser, tmp_path)
    opened.page.click("#rows tbody tr")
    return opened


def shown_picture(opened, shot):
    """The encoding's box of the viewer, once loaded, as an (H, W, 3) array."""
    opened.viewer_file()
    box = opened.page.locator("#pane-a img.enc").bounding_box()
    opened.page.screenshot(path=shot, clip=box)
    return np.asarray(Image.open(shot).convert("RGB"))


def test_split_shows_a_translucent_encoding_as_flip_does(browser, tmp_path):
    # The original stayed under the encoding's side of the line and showed
    # through its translucent pixels: an exact encoding looked otherwise.
    opened = translucent_page(browser, tmp_path)
    try:
        opened.page.keyboard.press("3")  # flip: the encoding alone
        alone = shown_picture(opened, tmp_path / "flip.png")
        opened.page.keyboard.press("2")
        opened.page.evaluate("() => { const s = document.getElementById('v-split');"
                             " s.value = '0'; s.dispatchEvent(new Event('input')); }")
        split = shown_picture(opened, tmp_path / "split.png")
        assert alone.shape[:2] == (64, 96)
        assert np.abs(split.astype(int) - alone).max() <= 1
        opened.assert_clean()
    finally:
        opened.page.close()


def test_difference_of_an_exact_translucent_encoding_is_black(browser, tmp_path):
    # The encoding was blended with its own alpha: identical pixels at alpha
    # 128 showed near the top of the heat scale.
    opened = translucent_page(browser, tmp_path)
    try:
        opened.page.keyboard.press("4")
        opened.page.select_option("#v-gain", "32")
        seen = shown_picture(opened, tmp_path / "diff.png")
        assert seen.shape[:2] == (64, 96) and seen.max() <= 8
        opened.assert_clean()
    finally:
        opened.page.close()


def test_a_measure_constant_within_pictures_is_still_charted(browser, tmp_path, pictures):
    # At k = 32 and 64 every file is 8-bit: stored once per picture, the bit
    # depth was taken for a column of the picture and left off the axes and
    # the medians.
    pics = tmp_path / "pictures"
    pics.mkdir()
    for name in ("skimage_coffee", "mpl_present_rgba"):
        Image.open(pictures[name]).save(pics / f"{name}.png")
    table = kqcodec.report(pics, [32, 64], out=tmp_path / "out", jobs=1)
    data = htmlpage.page_data(table, tmp_path, folder=pics, out=tmp_path / "out")
    assert "picture" in data["store"]["bitdepth"] and "described" not in data["store"]["bitdepth"]
    assert "bitdepth" in data["medians"]["columns"]
    assert "width" not in data["medians"]["columns"] and data["store"]["width"]["described"]
    htmlpage.write_page(table, tmp_path / "report.html", folder=pics, out=tmp_path / "out")
    opened = Page(browser, tmp_path)
    try:
        axes = opened.page.eval_on_selector_all("#chart-x option", "os => os.map(o => o.value)")
        assert "bitdepth" in axes and "width" not in axes
        opened.assert_clean()
    finally:
        opened.page.close()
