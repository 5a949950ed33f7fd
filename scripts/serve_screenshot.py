"""The README's picture of serve.py: a checkpoint served as a user starts it, a review typed into its page
in headless Chromium (Debian's chromium and chromium-driver), and the page with its answer saved as PNG.

    python scripts/serve_screenshot.py CKPT [--out docs/serve_page.png] [--text "..."]
"""

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.load_test import Server  # noqa: E402

REVIEW = ("A wonderful film with a clever script. I loved every minute of it.\n\n"
          "The ending was weak, and the second half drags a little. Still, the acting is superb.")  # fmt: skip


@contextlib.contextmanager
def headless_chromium(window: str = "1200,900"):
    """A headless Chromium browser (Debian's chromium and chromium-driver); RuntimeError without them."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        raise RuntimeError("no Chromium here: apt-get install chromium chromium-driver")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={window}"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def submit(browser, url: str, text: str) -> list:
    """Types `text` into the page's form, submits it, and returns the heatmap's words once drawn."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{url}/")
    browser.find_element(By.NAME, "text").send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    return WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".document .word"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve_page.png")
    parser.add_argument("--text", default=REVIEW)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as run_dir:
        server = Server(args.checkpoint, run_dir=run_dir)
        try:
            with headless_chromium("1100,640") as browser:
                submit(browser, server.url, args.text)
                browser.save_screenshot(str(args.out))
        except RuntimeError as error:
            sys.exit(str(error))
        finally:
            server.stop()
    print(args.out)


if __name__ == "__main__":
    main()
