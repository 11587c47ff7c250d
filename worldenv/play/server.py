"""The ``worldenv play`` server: an aiohttp application serving the page (``static/``) and
one WebSocket (``/ws``) per player, each a ``Session`` with a dream and MuJoCo of its own.

At most ``max_players`` sessions at once: on a CPU each dream takes a core, and a player
beyond them is told so on the page. It binds to 127.0.0.1 unless ``host`` says otherwise:
the page drives a process on this machine, and nothing in it asks who is playing.
"""

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from worldenv.checkpoint import load_bundle, shipped_checkpoint
from worldenv.dream_config import DreamConfig
from worldenv.envs.dream import DEFAULT_SCENE
from worldenv.play import protocol
from worldenv.play.controls import controls
from worldenv.play.pair import Pair
from worldenv.play.session import Session
from worldenv.scenes import scene_class, scene_info

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# A message this large is refused by aiohttp itself (close code 1009, shown on the page);
# smaller ones over protocol.MESSAGE_BYTES are refused by the session, which goes on.
WEBSOCKET_MESSAGE_LIMIT = 64 * 1024
FULL = 1013  # WebSocket close code "try again later"


@dataclass(frozen=True)
class PlayConfig:
    """``scene``, ``checkpoint``, ``dream``: which dream and how it is served, as the dream env
    takes them. ``truth``: MuJoCo beside the dream. ``save_seconds``: the most a save keeps
    (and the history each player holds). ``messages_per_second``: input beyond it is dropped.
    ``send_timeout``: a page that takes no frame for this long is cut off. ``context``: real
    frames that prime the dream, as ``worldenv record --context``. ``seed``: fixes each player's
    sequence of real starts (None: a new one each time)."""

    scene: str | None = None
    checkpoint: Path | None = None
    dream: DreamConfig = field(default_factory=DreamConfig)
    truth: bool = True
    host: str = "127.0.0.1"
    port: int = 8765
    max_players: int = 2
    idle_timeout: float = 300.0
    save_seconds: float = 20.0
    messages_per_second: float = 100.0
    send_timeout: float = 10.0
    context: int = 4
    seed: int | None = None

    def __post_init__(self):
        if self.scene is not None:
            scene_info(self.scene)  # an unknown scene fails here, naming the known ones
        if not 0 <= self.port < 65536:
            raise ValueError(f"port: expected 0 (any free port) to 65535, got {self.port}")
        if self.max_players < 1:
            raise ValueError(f"max players: expected at least 1, got {self.max_players}")
        for name in ("idle_timeout", "save_seconds", "messages_per_second", "send_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number of seconds (or messages a second), got {value!r}")
        if self.context < 1:
            raise ValueError(f"context: expected at least 1 real frame, got {self.context}")


@dataclass(frozen=True)
class Catalogue:
    """What every player of this server shares, read once from the bundle: its scene, rate,
    action size, the components that dream and the one it serves."""

    scene: str
    fps: int
    action_dim: int
    components: list[str]
    served: str  # the bundle's serving choice, component@steps

    @classmethod
    def read(cls, config: PlayConfig) -> "Catalogue":
        path = config.checkpoint or shipped_checkpoint(config.scene or DEFAULT_SCENE)
        bundle = load_bundle(path)
        if config.scene is not None and bundle.scene != config.scene:
            raise ValueError(f"{path}: a checkpoint of scene {bundle.scene!r}, but --scene {config.scene} was asked for")
        components = [name for name in bundle.components if bundle.class_name(name) == "Backbone"]
        served = DreamConfig().serving(bundle.metadata)
        action_dim = int(bundle.config(served.model, "model")["model"]["action_dim"])
        if len(controls(bundle.scene).gamepad) != action_dim:  # also: a scene without controls fails now
            raise ValueError(
                f"{path}: a model of {action_dim}-dim actions; expected the {bundle.scene} scene's "
                f"{len(controls(bundle.scene).gamepad)}"
            )
        return cls(bundle.scene, int(scene_class(bundle.scene).metadata["render_fps"]), action_dim, components, served.name)

    def mouse_goal(self, config: PlayConfig) -> bool:
        return controls(self.scene).mouse_goal and config.truth

    def hello(self, pair: Pair, config: PlayConfig) -> dict:
        """The page's set-up: what it shows, which inputs it takes, and the limits it must keep."""
        height, width = pair.frame_size
        return {
            "scene": self.scene,
            "fps": self.fps,
            "height": height,
            "width": width,
            "truth": config.truth,
            "action_dim": self.action_dim,
            "controls": {**controls(self.scene).record(), "mouse_goal": self.mouse_goal(config)},
            "models": {"served": self.served, "current": pair.serving, "components": self.components},
            "save_seconds": config.save_seconds,
            "message_bytes": protocol.MESSAGE_BYTES,
            "messages_per_second": config.messages_per_second,
            "idle_timeout": config.idle_timeout,
            "max_players": config.max_players,
        }


CONFIG, CATALOGUE, PLAYERS = web.AppKey("config", PlayConfig), web.AppKey("catalogue", Catalogue), web.AppKey("players", dict)


def make_app(config: PlayConfig) -> web.Application:
    """The application; reading the bundle here makes a bad checkpoint fail before anything is served."""
    app = web.Application()
    app[CONFIG], app[CATALOGUE] = config, Catalogue.read(config)
    app[PLAYERS] = {}  # player number -> its WebSocket
    app.router.add_get("/", _index)
    app.router.add_get("/ws", _websocket)
    app.router.add_static("/static", STATIC)
    app.on_shutdown.append(_close_players)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    config, players = request.app[CONFIG], request.app[PLAYERS]
    ws = web.WebSocketResponse(max_msg_size=WEBSOCKET_MESSAGE_LIMIT, heartbeat=30.0)
    await ws.prepare(request)
    if len(players) >= config.max_players:
        await ws.send_str(
            protocol.text(
                "error",
                fatal=True,
                text=f"the server is full: {config.max_players} players at "
                "most (worldenv play --max-players); try again when one leaves",
            )
        )
        await ws.close(code=FULL, message=b"full")
        return ws
    player = next(n for n in range(1, config.max_players + 2) if n not in players)
    players[player] = ws
    logger.info("player %d joined (%d of %d)", player, len(players), config.max_players)
    try:
        await Session(ws, request.transport, config, request.app[CATALOGUE], player).run()
    finally:
        del players[player]
        logger.info("player %d left; its dream is freed", player)
    return ws


async def _close_players(app: web.Application) -> None:
    await asyncio.gather(
        *(ws.close(code=1001, message=b"server shutting down") for ws in list(app[PLAYERS].values())), return_exceptions=True
    )


@asynccontextmanager
async def running(config: PlayConfig) -> AsyncIterator[str]:
    """Serve ``config`` while the block runs; yields the page's URL (with port 0, the port chosen)."""
    runner = web.AppRunner(make_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    finally:
        await runner.cleanup()


async def serve(config: PlayConfig, ready=None) -> None:
    """Serve until cancelled (Ctrl-C under ``asyncio.run``); ``ready(url)`` once listening."""
    async with running(config) as url:
        if ready is not None:
            ready(url)
        await asyncio.Event().wait()
