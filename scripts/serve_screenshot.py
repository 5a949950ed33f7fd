"""The README's picture of serve.py: a checkpoint served as a user starts it, a review typed into its page
in headless Chromium (Debian's chromium and chromium-driver), and the page with its answer saved as PNG.

    python scripts/serve_screenshot.py CKPT [--out docs/serve_page.png] [--text "..."]
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.load_test import Server  # noqa: E402

REVIEW = ("A wonderful film with a clever script. I loved every minute of it.\n\n"
          "The ending was weak, and the second half drags a little. Still, the acting is superb.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve_page.png")
    parser.add_argument("--text", default=REVIEW)
    args = parser.parse_args()
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        sys.exit("no Chromium here: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,640"):
        options.add_argument(argument)
    with tempfile.TemporaryDirectory() as run_dir:
        server = Server(args.checkpoint, run_dir=run_dir)
        browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)
        try:
            browser.get(f"{server.url}/")
            browser.find_element(By.NAME, "text").send_keys(args.text)
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".document .word"))
            browser.save_screenshot(str(args.out))
        finally:
            browser.quit()
            server.stop()
    print(args.out)


if __name__ == "__main__":
    main()
