"""``worldenv play`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) loads the page served for the shipped reacher
dream, and checks that frames arrive at the rate the dream's steps allow, that holding
the shoulder "+" key turns both worlds' arm the same way (by the bundle's state probe),
and that "save" gives a video that decodes. It takes a screenshot of the page; with
``WORLDENV_PLAY_SCREENSHOT=docs/assets/play.png`` it writes the docs' one there.

Skipped, saying why, where selenium or Chromium is missing (``.ci/run`` installs Chromium).
"""

import asyncio
import base64
import os
import shutil
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from worldenv.play.server import PlayConfig, running

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
)
HELD = 10  # frames the "+" key is held before the probe reads both arms (tests/test_play.py)
WAIT = 120.0  # seconds: loading the dream on a busy 2-core machine


class Served:
    """The play server on a thread of its own, as ``worldenv play`` runs it; the test drives the browser."""

    def __init__(self, config: PlayConfig):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.context = running(config)
        self.url = asyncio.run_coroutine_threadsafe(self.context.__aenter__(), self.loop).result(WAIT)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.context.__aexit__(None, None, None), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)


def wait_for(driver, script: str, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"the page never showed {what}; its errors: {driver.execute_script('return play.errors')}")


LAST_FRAME = (
    "(() => { const f = play.last; return f && {frame: f.frame, seq: f.seq, dream: Array.from(f.dream), "
    "truth: Array.from(f.truth), dreamMs: f.dreamMs, truthMs: f.truthMs}; })()"
)


def test_the_page_plays_the_shipped_reacher(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe, probe_readings

    probe = load_probe(load_bundle(shipped_checkpoint("reacher")))

    def shoulder(pixels: list[int]) -> float:
        frame = np.asarray(pixels, np.uint8).reshape(1, 64, 64, 3)
        return float(probe_readings("reacher", probe.predict(frame))["joint_angles"][0, 0])

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,950"):
        options.add_argument(argument)
    served = Served(PlayConfig(scene="reacher", port=0, seed=0))
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(served.url)
        hello = wait_for(driver, "return play.frames > 0 && play.hello", "a frame")
        assert hello["scene"] == "reacher" and driver.find_element(By.ID, "keys").text

        # Frames at the rate the two worlds' steps allow (the scene's 50 a second at most).
        start_frames, start = driver.execute_script("return play.frames"), time.monotonic()
        time.sleep(3.0)
        rate = (driver.execute_script("return play.frames") - start_frames) / (time.monotonic() - start)
        last = driver.execute_script(f"return {LAST_FRAME}")
        allowed = min(hello["fps"], 1000.0 / (last["dreamMs"] + last["truthMs"]))
        assert rate >= 0.5 * allowed, (rate, allowed)

        # Holding shoulder "+" turns both arms the same way.
        ActionChains(driver).key_down(Keys.ARROW_RIGHT).perform()
        pressed = wait_for(
            driver, f"return play.seq > 1 && play.last.seq === play.seq && {LAST_FRAME}", "the frame of the key press"
        )
        later = wait_for(
            driver, f"return play.last.frame >= {pressed['frame'] + HELD} && {LAST_FRAME}", f"{HELD} frames under the key"
        )
        ActionChains(driver).key_up(Keys.ARROW_RIGHT).perform()
        turned = {
            world: float(np.angle(np.exp(1j * (shoulder(later[world]) - shoulder(pressed[world])))))
            for world in ("dream", "truth")
        }
        assert turned["dream"] > 0.1 and turned["truth"] > 0.1, turned

        # "Save the last 2 s": dream | MuJoCo | difference, as worldenv record writes it.
        seconds = driver.find_element(By.ID, "save-seconds")
        seconds.clear()
        seconds.send_keys("2")
        played = driver.execute_script("return play.last.frame")  # steps since the start: a save keeps no more
        driver.find_element(By.ID, "save").click()
        wait_for(driver, "return play.saved", "a saved video")
        encoded = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(play.saved.url).then((r) => r.arrayBuffer()).then((buffer) => {
              const bytes = new Uint8Array(buffer);
              let text = "";
              for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
              done(btoa(text));
            });""")
        (tmp_path / "play.mp4").write_bytes(base64.b64decode(encoded))
        frames = iio.imread(tmp_path / "play.mp4")
        assert min(played, 2 * hello["fps"]) <= len(frames) <= 2 * hello["fps"]
        assert frames.shape[1:] == (256, 3 * 256 + 2 * 2 * 4, 3)

        driver.save_screenshot(str(tmp_path / "play.png"))
        if os.environ.get("WORLDENV_PLAY_SCREENSHOT"):
            shutil.copy(tmp_path / "play.png", Path(os.environ["WORLDENV_PLAY_SCREENSHOT"]))
    finally:
        driver.quit()
        served.close()
