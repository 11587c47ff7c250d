"""``worldenv play``: drive a dream beside MuJoCo from a local web page."""

from pathlib import Path

from worldenv.cli.dream_args import add_dream_arguments, dream_config


def add_play(commands) -> None:
    p = commands.add_parser(
        "play",
        help="drive a dream beside MuJoCo from a local web page (keys, mouse or gamepad)",
        description="Serve a page where a person drives the dream and MuJoCo from the same real start under the same "
        "actions, with a live readout (frames per second, ms per step, rewards, PSNR), a model selector, reset, and "
        "'save the last N seconds' as a video. Binds to 127.0.0.1 unless --host says otherwise; Ctrl-C stops it.",
    )
    p.add_argument("--checkpoint", type=Path, help="bundle directory (default: the shipped one of --scene)")
    p.add_argument("--scene", help="scene of the shipped checkpoint to play (default reacher)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 lets any machine that "
        "reaches this one play, with no password)",
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument(
        "--no-truth",
        dest="truth",
        action="store_false",
        help="the dream alone, started from its bundle's real starts (no MuJoCo beside it)",
    )
    p.add_argument(
        "--max-players",
        type=int,
        default=2,
        help="players at once, each with a dream of its own (default 2: one a core on a 2-core CPU)",
    )
    p.add_argument(
        "--idle-timeout", type=float, default=300.0, help="seconds without input before a player's dream is freed (default 300)"
    )
    p.add_argument("--save-seconds", type=float, default=20.0, help="the most one save keeps (default 20)")
    add_dream_arguments(p)
    p.set_defaults(run=_play, default_threads=1)


def _play(args) -> int:
    import asyncio

    from worldenv.play import PlayConfig, serve

    config = PlayConfig(
        scene=args.scene,
        checkpoint=args.checkpoint,
        dream=dream_config(args),
        truth=args.truth,
        host=args.host,
        port=args.port,
        max_players=args.max_players,
        idle_timeout=args.idle_timeout,
        save_seconds=args.save_seconds,
    )
    try:
        asyncio.run(serve(config, ready=lambda url: print(f"worldenv play: open {url} (Ctrl-C stops)", flush=True)))
    except KeyboardInterrupt:
        print("worldenv play: stopped")
    except OSError as error:  # the port taken, or an address this machine does not have
        raise ValueError(
            f"--host {args.host} --port {args.port}: expected an address and port free to listen on ({error})"
        ) from None
    return 0
