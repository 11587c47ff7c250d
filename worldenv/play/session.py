"""One player's connection: its own dream and MuJoCo (a ``Pair`` on a worker thread of its
own), stepped at the scene's control rate under the latest action the page sent, one
binary frame out per step.

What a page can do wrong is answered on the page and the session goes on: a malformed,
oversized or out-of-range message is refused with what was expected (the last good action
stays), and messages beyond ``messages_per_second`` are dropped with a warning. What ends
a session, with a message first: no input for ``idle_timeout`` seconds, a page that takes
no frames for ``send_timeout`` seconds, or a failure in the dream itself. Nothing a session
does stops the server or another session.
"""

import asyncio
import logging
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from aiohttp import WSMsgType, web

from worldenv.play import protocol
from worldenv.play.pair import Clip, Pair, Step

if TYPE_CHECKING:
    from worldenv.play.server import Catalogue, PlayConfig

logger = logging.getLogger(__name__)
T = TypeVar("T")
WARN_EVERY = 1.0  # seconds between two flood warnings: the warning must not become a flood itself


class TokenBucket:
    """``rate`` messages a second, in bursts of up to ``rate``."""

    def __init__(self, rate: float):
        self.rate, self.tokens, self.last = rate, rate, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SessionEnd(Exception):
    """Ends a session; the text is shown on the page."""


class Session:
    def __init__(self, ws: web.WebSocketResponse, transport, config: "PlayConfig", catalogue: "Catalogue", player: int):
        self.ws, self.transport, self.config, self.catalogue, self.player = ws, transport, config, catalogue, player
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"worldenv-play-{player}")
        self.pair: Pair | None = None
        self.action = np.zeros(catalogue.action_dim, np.float32)
        self.target: tuple[float, float] | None = None
        self.seq = 0  # of the last action or target applied
        self.pending: protocol.Reset | protocol.Model | None = None  # applied between two steps
        self.save_task: asyncio.Task | None = None
        self.last_input = time.monotonic()
        self.starts = random.Random(config.seed)  # MuJoCo episode seeds of the starts, one per reset
        self.bucket = TokenBucket(config.messages_per_second)
        self.last_warning = 0.0  # of too many messages

    async def call(self, function: Callable[..., T], *args) -> T:
        """Run ``function`` on this session's worker thread, where its pair lives."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def run(self) -> None:
        try:
            await self.ws.send_str(protocol.text("status", text=f"loading the {self.catalogue.scene} dream..."))
            pair = self.pair = await self.call(self._make_pair)
            first = await self.call(pair.reset, self.starts.randrange(2**31))
            await self.ws.send_str(protocol.text("hello", **self.catalogue.hello(pair, self.config), player=self.player))
            await self._send_step(first, self.seq)
            reader = asyncio.create_task(self._read())
            player = asyncio.create_task(self._play())
            done, _ = await asyncio.wait((reader, player), return_when=asyncio.FIRST_COMPLETED)
            tasks = [reader, player, *([self.save_task] if self.save_task else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()  # a SessionEnd or a failure, raised here
        except ConnectionError:  # the page went away mid-message: nothing to tell it
            logger.info("player %d: the connection closed", self.player)
        except SessionEnd as end:
            logger.info("player %d: %s", self.player, end)
            await self._close(str(end))
        except Exception as error:  # one player's failure must never reach the server
            logger.exception("player %d: the session failed", self.player)
            await self._close(f"the session failed: {type(error).__name__}: {error}")
        finally:
            await self._free()

    def _make_pair(self) -> Pair:
        keep = max(1, round(self.config.save_seconds * self.catalogue.fps))
        return Pair(self.config.scene, self.config.checkpoint, self.config.dream, self.config.truth, self.config.context, keep)

    async def _play(self) -> None:
        """Step both worlds at the scene's rate; behind it, as fast as the dream goes."""
        assert self.pair is not None
        loop, period = asyncio.get_running_loop(), 1.0 / self.catalogue.fps
        deadline = loop.time()
        while True:
            if time.monotonic() - self.last_input > self.config.idle_timeout:
                raise SessionEnd(
                    f"no input for {self.config.idle_timeout:g} s: the dream is freed for others; reload the page to play again"
                )
            pending, self.pending = self.pending, None
            seq = self.seq  # the input this step is made under; one arriving meanwhile waits for the next
            if isinstance(pending, protocol.Reset):
                step = await self.call(self.pair.reset, self.starts.randrange(2**31))
            elif isinstance(pending, protocol.Model):
                await self.ws.send_str(protocol.text("status", text=f"loading {pending.model}@{pending.steps}..."))
                step = await self.call(self.pair.switch, pending.model, pending.steps)
                await self.ws.send_str(protocol.text("model", current=self.pair.serving))
            else:
                step = await self.call(self.pair.step, self.action, self.target)
            await self._send_step(step, seq)
            deadline += period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:  # behind: no burst of catch-up steps
                deadline = loop.time()

    async def _send_step(self, step: Step, seq: int) -> None:
        data = protocol.encode_frame(
            step.frame,
            seq,
            step.dream,
            step.truth,
            step.dream_reward,
            step.truth_reward,
            step.psnr,
            step.dream_ms,
            step.truth_ms,
            step.dream_terminated,
            step.truth_terminated,
        )
        try:
            await asyncio.wait_for(self.ws.send_bytes(data), self.config.send_timeout)
        except TimeoutError:
            raise SessionEnd(f"the page took no frames for {self.config.send_timeout:g} s (a slow connection?)") from None

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue  # aiohttp answers pings and closes itself
            self.last_input = time.monotonic()
            if not self.bucket.take():
                now = time.monotonic()
                if now - self.last_warning >= WARN_EVERY:
                    self.last_warning = now
                    await self._warn(
                        f"too many messages: at most {self.config.messages_per_second:g} a second; the extra ones are dropped"
                    )
                continue
            try:
                await self._apply(protocol.parse(message.data, self.catalogue.action_dim))
            except protocol.ProtocolError as error:  # refused messages count against the rate too: no flood of answers
                await self._warn(str(error))

    async def _apply(self, command: protocol.Command) -> None:
        if isinstance(command, protocol.Action):
            self.action, self.target, self.seq = command.values, None, command.seq
        elif isinstance(command, protocol.Target):
            if command.point is not None and not self.catalogue.mouse_goal(self.config):
                raise protocol.ProtocolError(
                    "target: the goal policy reads MuJoCo's state; expected a scene with a "
                    "mouse goal (reacher) played beside MuJoCo (without --no-truth)"
                )
            self.target, self.seq = command.point, command.seq
        elif isinstance(command, protocol.Model):
            if command.model not in self.catalogue.components:
                raise protocol.ProtocolError(f"model: expected one of {self.catalogue.components}, got {command.model!r}")
            self.pending = command
        elif isinstance(command, protocol.Reset):
            self.pending = command
        else:
            self._save(command)

    def _save(self, command: protocol.Save) -> None:
        if self.save_task is not None and not self.save_task.done():
            raise protocol.ProtocolError("save: a video is being written; expected one save at a time")
        self.save_task = asyncio.create_task(self._write(command))  # the reader goes on taking actions meanwhile

    async def _write(self, command: protocol.Save) -> None:
        assert self.pair is not None
        try:
            clip = await self.call(self.pair.recent, min(command.seconds, self.config.save_seconds))
        except ValueError as error:
            await self._warn(str(error))
            return
        data = await asyncio.to_thread(_encode, clip, command.format)  # off the worker: the play goes on
        await self.ws.send_bytes(protocol.encode_video(data, command.format))
        await self.ws.send_str(
            protocol.text(
                "saved", frames=len(clip.dream), seconds=len(clip.dream) / clip.fps, format=command.format, bytes=len(data)
            )
        )

    async def _warn(self, text: str) -> None:
        await self.ws.send_str(protocol.text("error", text=text, fatal=False))

    async def _close(self, reason: str) -> None:
        """Say why on the page, then close; a page that takes nothing more is cut off."""
        try:
            await asyncio.wait_for(self.ws.send_str(protocol.text("error", text=reason, fatal=True)), 1.0)
            await asyncio.wait_for(self.ws.close(), 1.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.transport.abort()

    async def _free(self) -> None:
        """Free the dream and MuJoCo on their own thread, after the step in flight, and the thread."""
        if self.pair is not None:
            await asyncio.shield(self.call(self.pair.close))
        self.executor.shutdown(wait=False)


def _encode(clip: Clip, format: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="worldenv-play-") as folder:
        path = Path(folder) / f"play.{format}"
        clip.write(path)
        return path.read_bytes()
