"""``worldenv play``: the protocol, checked with a WebSocket client against the server on a
free port of 127.0.0.1 (tiny untrained dreams, tests/dream_bundles.py), one end-to-end check
on the shipped reacher dream (a held torque moves both worlds' arm the same way, read by the
bundle's state probe), and the command itself started and stopped with Ctrl-C. The page in
a real browser: tests/test_play_browser.py."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import aiohttp
import imageio.v3 as iio
import numpy as np
import pytest

from worldenv.play import protocol
from worldenv.play.server import PlayConfig, running

TIMEOUT = 60.0  # seconds any one exchange may take on a busy 2-core machine
# Frames a torque is held for the probe to read: the served reacher dream follows a held
# push for about ten frames, then lags MuJoCo's arm as it gathers speed (docs/play.md).
HELD = 10


# ---- messages, without a server ------------------------------------------------------
def test_frame_round_trip():
    dream, truth = np.full((64, 64, 3), 7, np.uint8), np.full((64, 64, 3), 9, np.uint8)
    data = protocol.encode_frame(12, 3, dream, truth, -0.5, -0.25, 21.0, 18.0, 2.5, True, False)
    assert len(data) == protocol.FRAME.size + 2 * dream.nbytes  # raw pixels: no codec on either side
    frame = protocol.decode_frame(data)
    assert (frame["frame"], frame["seq"], frame["dream_terminated"], frame["truth_terminated"]) == (12, 3, True, False)
    assert np.array_equal(frame["dream"], dream) and np.array_equal(frame["truth"], truth)
    alone = protocol.decode_frame(
        protocol.encode_frame(1, 0, dream, None, 0, float("nan"), float("nan"), 1, float("nan"), False, False)
    )
    assert alone["truth"] is None and np.isnan(alone["psnr"])


def test_parse_accepts_each_command():
    assert protocol.parse('{"type": "action", "seq": 4, "action": [0.5, -1]}', 2).values.tolist() == [0.5, -1.0]
    assert protocol.parse('{"type": "target", "seq": 5, "target": [0.25, 1]}', 2).point == (0.25, 1.0)
    assert protocol.parse('{"type": "target", "seq": 6, "target": null}', 2).point is None
    assert protocol.parse('{"type": "reset"}', 2) == protocol.Reset()
    assert protocol.parse('{"type": "model", "model": "teacher", "steps": 8}', 2) == protocol.Model("teacher", 8)
    assert protocol.parse('{"type": "save", "seconds": 3, "format": "gif"}', 2) == protocol.Save(3.0, "gif")


@pytest.mark.parametrize(
    "message, expected",
    [
        (b"\x00\x01", "expected JSON text"),
        ("x" * (protocol.MESSAGE_BYTES + 1), f"at most {protocol.MESSAGE_BYTES} bytes"),
        ("{not json", "expected a JSON object"),
        ("[1, 2]", '"type" field'),
        ('{"type": "jump"}', "expected type action, target"),
        ('{"type": "action", "seq": -1, "action": [0, 0]}', "expected seq"),
        ('{"type": "action", "seq": 1, "action": [0]}', "a list of 2 finite numbers"),
        ('{"type": "action", "seq": 1, "action": [0, NaN]}', "a list of 2 finite numbers"),
        ('{"type": "action", "seq": 1, "action": [0, true]}', "a list of 2 finite numbers"),
        ('{"type": "action", "seq": 1, "action": [1.5, 0]}', "within [-1, 1]"),
        ('{"type": "target", "seq": 1, "target": [2, 0]}', "within [0, 1]"),
        ('{"type": "model", "model": "teacher", "steps": 0}', "1 to 64"),
        ('{"type": "save", "seconds": 2, "format": "avi"}', "format one of"),
    ],
)
def test_parse_refuses_naming_what_was_expected(message, expected):
    with pytest.raises(protocol.ProtocolError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        protocol.parse(message, 2)


def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="unknown scene"):
        PlayConfig(scene="pendulum")
    with pytest.raises(ValueError, match="max players: expected at least 1"):
        PlayConfig(max_players=0)
    with pytest.raises(ValueError, match="idle_timeout: expected a positive"):
        PlayConfig(idle_timeout=float("nan"))


# ---- a client ---------------------------------------------------------------------------
class Client:
    """One player: the page's side of the protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws, self.seq, self.texts = ws, 0, []

    async def receive(self):
        """The next message: a decoded frame, a video's bytes, or a JSON dict (also kept in ``texts``)."""
        message = await asyncio.wait_for(self.ws.receive(), TIMEOUT)
        if message.type == aiohttp.WSMsgType.TEXT:
            self.texts.append(json.loads(message.data))
            return self.texts[-1]
        if message.type == aiohttp.WSMsgType.BINARY:
            return protocol.decode_frame(message.data) if message.data[0] == protocol.FRAME_KIND else bytes(message.data)
        return message  # closed

    async def until(self, predicate):
        while True:
            message = await self.receive()
            if isinstance(message, aiohttp.WSMessage):
                raise AssertionError(f"closed ({self.ws.close_code}) before the message waited for; got {self.texts}")
            if predicate(message):
                return message

    async def hello(self) -> dict:
        return await self.until(lambda m: isinstance(m, dict) and m["type"] == "hello")

    async def frames(self, count: int) -> list[dict]:
        return [await self.until(lambda m: isinstance(m, dict) and "frame" in m and "dream" in m) for _ in range(count)]

    async def error(self) -> dict:
        return await self.until(lambda m: isinstance(m, dict) and m.get("type") == "error")

    async def act(self, action) -> int:
        self.seq += 1
        await self.ws.send_str(json.dumps({"type": "action", "seq": self.seq, "action": list(map(float, action))}))
        return self.seq

    async def closed(self) -> int:
        """Read on until the server closes; its close code."""
        while not isinstance(await self.receive(), aiohttp.WSMessage):
            pass
        return self.ws.close_code


def play(config: PlayConfig, scenario) -> None:
    """Serve ``config`` on a free port and run ``scenario(url, session)`` against it."""

    async def main():
        async with running(replace(config, port=0)) as url, aiohttp.ClientSession() as session:
            await scenario(url, session)

    asyncio.run(main())


def connect(session: aiohttp.ClientSession, url: str):
    return session.ws_connect(url + "ws", max_msg_size=0)


@asynccontextmanager
async def joined(session: aiohttp.ClientSession, url: str):
    """A player with a dream, once a slot is free: a player who left is freed on the server's
    side after its connection closes, once the step in flight ends."""
    for _ in range(100):
        async with connect(session, url) as ws:
            client = Client(ws)
            if "frame" in await client.until(lambda m: isinstance(m, dict) and (m.get("type") == "error" or "frame" in m)):
                yield client
                return
        await asyncio.sleep(0.2)
    raise AssertionError("no slot was freed in 20 s")


# ---- the server, with tiny dreams -------------------------------------------------------
def test_frames_follow_the_actions_sent(reacher_dream):
    async def scenario(url, session):
        async with session.get(url) as page, session.get(url + "static/play.js") as script:
            assert page.status == 200 and "play.js" in await page.text() and script.status == 200
        async with connect(session, url) as ws:
            client = Client(ws)
            hello = await client.hello()
            assert (hello["scene"], hello["fps"], hello["action_dim"], hello["truth"]) == ("reacher", 50, 2, True)
            assert hello["models"]["components"] == ["teacher"] and hello["controls"]["mouse_goal"]
            first, second = await client.frames(2)
            assert (first["frame"], second["frame"]) == (0, 1)  # 0: the last real context frame, shown by both
            assert np.array_equal(first["dream"], first["truth"]) and first["psnr"] == np.inf
            assert second["truth"].shape == (64, 64, 3) and second["dream_ms"] > 0 and np.isfinite(second["truth_reward"])
            seq = await client.act([0.2, -0.2])
            await client.until(lambda m: isinstance(m, dict) and m.get("seq") == seq)  # the frame made under it
            await ws.send_str(json.dumps({"type": "target", "seq": 9, "target": [0.8, 0.2]}))
            await client.until(lambda m: isinstance(m, dict) and m.get("seq") == 9)
            await ws.send_str(json.dumps({"type": "reset"}))
            await client.until(lambda m: isinstance(m, dict) and m.get("frame") == 0)

    play(PlayConfig(checkpoint=reacher_dream), scenario)


def test_bad_input_is_answered_and_play_goes_on(reacher_dream):
    async def scenario(url, session):
        async with connect(session, url) as ws:
            client = Client(ws)
            await client.hello()
            for bad, expected in [
                ("{oops", "not JSON"),
                ("x" * 5000, "at most 1024 bytes"),
                (b"\x01\x02", "binary"),
                ('{"type": "action", "seq": 1, "action": [3, 0]}', "[-1, 1]"),
                ('{"type": "model", "model": "student", "steps": 2}', "expected one of ['teacher']"),
            ]:
                await (ws.send_bytes(bad) if isinstance(bad, bytes) else ws.send_str(bad))
                error = await client.error()
                assert expected in error["text"] and not error["fatal"]
            await client.frames(3)  # still playing
            for seq in range(1, 1001):  # a flood: beyond 100 a second, dropped with one warning
                await ws.send_str(json.dumps({"type": "action", "seq": seq, "action": [0.0, 0.0]}))
            assert "too many messages" in (await client.error())["text"]
            await client.frames(3)
            await ws.send_str("x" * 100_000)  # beyond what aiohttp takes: it closes this connection (1009)
            assert await client.closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        async with joined(session, url) as client:  # the server serves on, and the player cut off is freed
            await client.frames(2)

    play(PlayConfig(checkpoint=reacher_dream, max_players=1, idle_timeout=30.0), scenario)


def test_players_are_limited_and_each_is_freed_on_close(reacher_dream):
    async def scenario(url, session):
        async with connect(session, url) as first, connect(session, url) as second:
            await Client(first).frames(2)
            await Client(second).frames(2)
            async with connect(session, url) as third:
                client = Client(third)
                assert "the server is full: 2 players" in (await client.error())["text"]
                assert await client.closed() == 1013
        async with joined(session, url) as first, joined(session, url) as second:  # closing a tab frees its dream
            await first.frames(1)
            await second.frames(1)

    play(PlayConfig(checkpoint=reacher_dream, max_players=2), scenario)


def test_an_idle_player_is_let_go(reacher_dream):
    async def scenario(url, session):
        async with connect(session, url) as ws:
            client = Client(ws)
            await client.hello()
            error = await client.error()
            assert "no input for 1 s" in error["text"] and error["fatal"]
            assert await client.closed() is not None

    play(PlayConfig(checkpoint=reacher_dream, idle_timeout=1.0), scenario)


def test_a_page_that_takes_no_frames_is_cut_off_and_others_play_on(reacher_dream, caplog):
    async def scenario(url, session):
        # A page that reads nothing: a raw socket with a small receive buffer, after the handshake.
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect((host, int(port)))
        slow.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            async with joined(session, url) as client:  # the other player is served meanwhile
                await client.frames(20)
                async with joined(session, url) as again:  # the slow one was cut off: its slot takes a new player
                    await again.frames(1)
        finally:
            slow.close()

    with caplog.at_level("INFO", logger="worldenv.play"):
        play(PlayConfig(checkpoint=reacher_dream, max_players=2, send_timeout=0.5), scenario)
    assert "the page took no frames for 0.5 s" in caplog.text


def test_save_models_and_no_truth(duo_dream, tmp_path):
    async def scenario(url, session):
        async with connect(session, url) as ws:
            client = Client(ws)
            hello = await client.hello()
            assert (hello["scene"], hello["action_dim"], hello["truth"], hello["controls"]["mouse_goal"]) == (
                "duo",
                4,
                False,
                False,
            )
            frame = (await client.frames(1))[0]
            assert frame["truth"] is None and np.isnan(frame["psnr"])
            await ws.send_str(json.dumps({"type": "target", "seq": 1, "target": [0.5, 0.5]}))
            assert "mouse goal" in (await client.error())["text"]
            await ws.send_str(json.dumps({"type": "model", "model": "teacher", "steps": 2}))
            assert (await client.until(lambda m: isinstance(m, dict) and m.get("type") == "model"))["current"] == "teacher@2"
            await client.frames(6)
            await ws.send_str(json.dumps({"type": "save", "seconds": 10, "format": "mp4"}))
            video = await client.until(lambda m: isinstance(m, bytes))
            saved = await client.until(lambda m: isinstance(m, dict) and m.get("type") == "saved")
            (tmp_path / "duo.mp4").write_bytes(video[protocol.VIDEO.size :])
            frames = iio.imread(tmp_path / "duo.mp4")
            assert frames.shape[1:] == (256, 256, 3) and len(frames) == saved["frames"] >= 5  # the dream alone, x4

    play(PlayConfig(checkpoint=duo_dream, truth=False), scenario)


# ---- the shipped reacher dream, end to end ------------------------------------------------
def test_shipped_reacher_arm_follows_a_held_torque_in_both_worlds(tmp_path):
    """Holding shoulder + turns both arms the same way, by the bundle's state probe; the save
    is dream | MuJoCo | difference, as ``worldenv record`` writes it."""
    from worldenv.checkpoint import load_bundle, shipped_checkpoint
    from worldenv.eval.probe import load_probe, probe_readings

    probe = load_probe(load_bundle(shipped_checkpoint("reacher")))

    def shoulder(frame: np.ndarray) -> float:
        return float(probe_readings("reacher", probe.predict(frame[None].copy()))["joint_angles"][0, 0])

    async def scenario(url, session):
        async with connect(session, url) as ws:
            client = Client(ws)
            hello = await client.hello()
            plus = next(key for key in hello["controls"]["keys"] if key["label"] == "shoulder +")
            action = np.zeros(2)
            action[plus["dim"]] = plus["value"]
            seq = await client.act(action)
            pressed = await client.until(lambda m: isinstance(m, dict) and m.get("seq") == seq)
            later = (await client.frames(HELD))[-1]
            turned = {
                world: np.angle(np.exp(1j * (shoulder(later[world]) - shoulder(pressed[world])))) for world in ("dream", "truth")
            }
            assert turned["truth"] > 0.1 and turned["dream"] > 0.1, turned  # a positive torque: the angle grows
            assert later["frame"] - pressed["frame"] == HELD
            await ws.send_str(json.dumps({"type": "save", "seconds": 0.2, "format": "gif"}))
            video = await client.until(lambda m: isinstance(m, bytes))
            (tmp_path / "play.gif").write_bytes(video[protocol.VIDEO.size :])
            frames = iio.imread(tmp_path / "play.gif")
            assert frames.shape[0] == 10 and frames.shape[1:3] == (256, 3 * 256 + 2 * 2 * 4)

    play(PlayConfig(scene="reacher", seed=0), scenario)


# ---- the command ---------------------------------------------------------------------------
def test_command_prints_the_url_serves_the_page_and_stops_on_ctrl_c():
    process = subprocess.Popen(
        [sys.executable, "-m", "worldenv.cli", "play", "--port", "0", "--scene", "reacher"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("worldenv play: open http://127.0.0.1:"), (line, process.stderr.read() if process.poll() else "")
        url = line.split()[3]

        async def fetch():
            async with aiohttp.ClientSession() as session, session.get(url) as page:
                return page.status, await page.text()

        status, text = asyncio.run(fetch())
        assert status == 200 and "worldenv play" in text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
        assert "stopped" in process.stdout.read()
    finally:
        process.kill()
        process.wait()


def test_page_loads_nothing_from_elsewhere():
    static = Path(__file__).parents[1] / "worldenv" / "play" / "static"
    page = "".join(path.read_text() for path in static.iterdir())
    assert {path.name for path in static.iterdir()} >= {"index.html", "play.js", "play.css"}
    assert "http://" not in page.replace("location.host", "") and "https://" not in page
