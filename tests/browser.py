"""Headless Chromium (Debian's `chromium` and `chromium-driver`) driven by selenium, offline.

No browser or driver is downloaded: the binaries are found on PATH (or CHROMIUM / CHROMEDRIVER),
selenium's driver manager is told to stay offline, and Chromium runs with the flags that keep it
from calling home. Each session gets a fresh profile folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def binaries() -> tuple[str | None, str | None]:
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


@contextmanager
def chromium(width: int = 1280, height: int = 900):
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = binaries()
    if not browser or not driver_path:
        raise RuntimeError("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="dart-hub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
