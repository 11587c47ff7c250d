"""``worldenv play`` under load: frames per second sustained, the time from an input to the
first frame made under it, for one player and for several at once.

Starts the real command (``worldenv play --port 0``) in a process of its own and plays it
from WebSocket clients here, as pages would: each client changes its action every
``--every`` seconds (the reacher's shoulder torque on and off) and times the first frame
whose header says it was made under that action. A page adds the canvas draw (under a
millisecond for 64x64 frames) to what is measured here.

    python benchmarks/play_latency.py --players 1 2 --seconds 20 --json benchmarks/results/play_latency.json
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import numpy as np

from worldenv.play import protocol

WARM_UP = 2.0  # seconds of play before measuring: the first steps pay for allocations


async def player(url: str, seconds: float, every: float) -> dict:
    """One page's worth: frames per second over ``seconds`` and input-to-frame times."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "ws", max_msg_size=0) as ws:
        sent: dict[int, float] = {}
        latencies, frames, step_ms = [], 0, []
        seq, start, next_input = 0, None, 0.0
        while True:
            message = await asyncio.wait_for(ws.receive(), 120)
            if message.type == aiohttp.WSMsgType.TEXT:
                body = json.loads(message.data)
                if body["type"] == "error":
                    raise RuntimeError(f"the server said: {body['text']}")
                continue
            if message.type != aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"the connection closed ({ws.close_code})")
            now = time.perf_counter()
            frame = protocol.decode_frame(message.data)
            if start is None:
                start, next_input = now + WARM_UP, now + WARM_UP
            if now < start:
                continue
            if now - start > seconds:
                break
            frames += 1
            step_ms.append(frame["dream_ms"] + frame["truth_ms"])
            if frame["seq"] in sent:
                latencies.append(1000 * (now - sent.pop(frame["seq"])))
            if now >= next_input:
                seq += 1
                sent[seq] = time.perf_counter()
                await ws.send_str(json.dumps({"type": "action", "seq": seq, "action": [0.2 * (seq % 2), 0.0]}))
                next_input = now + every
        return {"fps": frames / seconds, "latency_ms": latencies, "step_ms": float(np.median(step_ms))}


async def measure(url: str, players: int, seconds: float, every: float) -> list[dict]:
    return list(await asyncio.gather(*(player(url, seconds, every) for _ in range(players))))


def start_server(arguments: list[str], players: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "worldenv.cli", "play", "--port", "0", "--max-players", str(players), *arguments]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    )
    line = process.stdout.readline() if process.stdout else ""
    if "http://" not in line:
        process.kill()
        raise RuntimeError(f"worldenv play did not start: {line!r}")
    return process, line.split()[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, nargs="+", default=[1, 2], help="players at once, one run each (default 1 2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds a run (default 20)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between two inputs (default 0.25)")
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument(
        "play_arguments",
        nargs=argparse.REMAINDER,
        help="after --: worldenv play's own flags (default: the shipped reacher dream)",
    )
    args = parser.parse_args()
    arguments = [a for a in args.play_arguments if a != "--"] or ["--scene", "reacher"]
    rows, report = [], {"command": " ".join(sys.argv), "play": arguments, "runs": []}
    for players in args.players:
        process, url = start_server(arguments, players)
        try:
            results = asyncio.run(measure(url, players, args.seconds, args.every))
        finally:
            process.terminate()
            process.wait(30)
        for index, result in enumerate(results, 1):
            latency = np.asarray(result["latency_ms"])
            rows.append(
                f"| {players} | {index} | {result['fps']:.1f} | {result['step_ms']:.1f} | "
                f"{np.median(latency):.0f} | {np.percentile(latency, 90):.0f} | {latency.max():.0f} | {len(latency)} |"
            )
            report["runs"].append({"players": players, "player": index, **result})
    print(
        "| players | player | frames/s | ms per step (dream + MuJoCo, median) | input to frame ms, median | p90 | max | inputs |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)


if __name__ == "__main__":
    main()
