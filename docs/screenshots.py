"""Take the README's screenshots of the report page with headless Chromium.

    kqcodec report test_pictures/ --html report.html
    python docs/screenshots.py report.html

writes ``docs/report-page.png`` (the page as it first opens) and
``docs/report-viewer.png`` (the viewer, split mode, on one photo), each
quantized to a 256-color palette PNG by kqcodec itself.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import kqcodec

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--force-color-profile=srgb"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", help="a page written by kqcodec report --html")
    parser.add_argument("--picture", default="skimage_coffee.png", help="picture shown in the viewer")
    parser.add_argument("-k", type=int, default=16, help="its k in the viewer")
    parser.add_argument("--out", default=Path(__file__).parent, type=Path, help="folder to write to")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, headless=True, args=ARGS,
            viewport={"width": 1100, "height": 760}, device_scale_factor=1)
        page = context.new_page()
        page.goto(Path(args.page).resolve().as_uri())
        page.wait_for_selector("#rows tbody tr")
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "page.png"
            page.screenshot(path=shot)
            kqcodec.encode(shot, args.out / "report-page.png", k=256, force=True)
            page.locator("#rows tr", has_text=args.picture).first.click()
            # The options are the picture's encodings, labelled "k=16" (and
            # " \u2605 recommended" on one): the first of args.k.
            labels = page.eval_on_selector_all("#v-k option", "os => os.map(o => o.label)")
            wanted = [i for i, label in enumerate(labels)
                      if label.split()[0] == f"k={args.k}"]
            if not wanted:
                parser.error(f"{args.picture} has no encoding at k={args.k} on this page")
            page.select_option("#v-k", index=wanted[0])
            page.keyboard.press("2")
            page.wait_for_function("() => [...document.images].every(i => i.complete)")
            page.screenshot(path=shot)
            kqcodec.encode(shot, args.out / "report-viewer.png", k=256, force=True)
        context.close()


if __name__ == "__main__":
    main()
