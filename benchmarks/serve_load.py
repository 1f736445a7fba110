"""Load check of `diffclass serve`: 1, 4 and 16 concurrent clients sending glyph images to a local server.

    python benchmarks/serve_load.py [--model glyphs] [--strategy SPEC] [--requests 64] [--json results/serve_load.json]

Starts `diffclass serve` on 127.0.0.1 (a free port) in a subprocess, sends the same `--requests` distinct test
images at each concurrency level (after one warm-up request), and reports requests per second, p50/p95 latency
and whether every request was answered exactly once with its own image's result (by the image's content id). Each
client keeps one connection open, as a browser does. Then it sends the bad uploads (empty, not an image, truncated,
over the size limit) and checks that each is a 400 and that the server is still healthy. Every request has a
timeout and the whole run a bound (--max-seconds).

With the server stopped, it then measures the most batching can give on this machine: the same images classified
in-process one per call and in lockstep groups of the largest client count, seconds per image side by side (the
predictions must be equal). When the two are close, the network's cost grows with the rows of a pass and more
clients cannot raise throughput much, whatever the server does.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from diffclass.data import load_dataset
from diffclass.data.images import image_from_bytes
from diffclass.progress import console
from diffclass.serve import MAX_UPLOAD


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def glyph_pngs(count: int) -> list[bytes]:
    from PIL import Image

    data = load_dataset("glyphs", "test")
    pngs = []
    for image in data.images[:count]:
        pixels = ((image[0] + 1) * 127.5).clamp(0, 255).round().byte().numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def wait_healthy(url: str, process: subprocess.Popen, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            return httpx.get(f"{url}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer /health within {seconds:.0f} s")


def level(url: str, pngs: list[bytes], ids: list[str], clients: int, timeout: float) -> dict:
    connections = threading.local()  # one open connection per client thread

    def send(index: int) -> tuple[int, float, dict]:
        if not hasattr(connections, "client"):
            connections.client = httpx.Client(timeout=timeout)
        began = time.perf_counter()
        reply = connections.client.post(f"{url}/classify", files={"image": (f"{index}.png", pngs[index], "image/png")})
        return index, time.perf_counter() - began, reply.json() if reply.status_code == 200 else {}

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(send, range(len(pngs))))
    seconds = time.perf_counter() - began
    latencies = sorted(a[1] for a in answers)
    own = sum(a[2].get("id") == ids[a[0]] for a in answers)  # each answer carries its own image's id
    return dict(
        clients=clients,
        requests=len(pngs),
        answered=len(answers),
        answered_with_own_image=own,
        unique_ids=len({a[2].get("id") for a in answers}),
        seconds=round(seconds, 3),
        requests_per_second=round(len(pngs) / seconds, 3),
        p50_seconds=round(statistics.median(latencies), 4),
        p95_seconds=round(latencies[int(0.95 * (len(latencies) - 1))], 4),
    )


def batching_ceiling(model: str, strategy: str, pngs: list[bytes], group: int) -> dict:
    """Seconds per image classified in-process one per call and `group` per call (lockstep), side by side."""
    import torch

    import diffclass

    classifier = diffclass.load(model)
    size, channels = classifier.info.image_size, classifier.info.channels
    images = torch.stack([image_from_bytes(p, f"{i}.png", size, channels).tensor for i, p in enumerate(pngs)])
    classifier.classify(images[:1], strategy)  # warm-up
    timings, predictions = {}, {}
    for per_call in (1, group):
        began = time.perf_counter()
        decisions = [
            d
            for start in range(0, len(images), per_call)
            for d in classifier.classify(images[start : start + per_call], strategy)
        ]
        timings[per_call] = (time.perf_counter() - began) / len(images)
        predictions[per_call] = [d.label for d in decisions]
    return dict(
        images=len(images),
        group=group,
        seconds_per_image_one_per_call=round(timings[1], 4),
        seconds_per_image_grouped=round(timings[group], 4),
        ceiling=round(timings[1] / timings[group], 3),
        same_predictions=predictions[1] == predictions[group],
    )


def bad_uploads(url: str, png: bytes) -> list[dict]:
    cases = {
        "empty": b"",
        "not an image": b"hello, world",
        "truncated": png[:30],
        "over the size limit": png + b"\0" * (MAX_UPLOAD + 1),
    }
    out = []
    for name, payload in cases.items():
        reply = httpx.post(f"{url}/classify", files={"image": ("bad.png", payload, "image/png")}, timeout=60)
        is_json = reply.headers.get("content-type", "").startswith("application/json")
        error = reply.json().get("error", "") if is_json else ""
        out.append(dict(case=name, status=reply.status_code, error=error, one_line="\n" not in error))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glyphs")
    parser.add_argument("--strategy", default=None, help="default: the model's own (auto on a tuned model)")
    parser.add_argument("--requests", type=int, default=64, help="images sent at each concurrency level")
    parser.add_argument("--levels", default="1,4,16", help="concurrent clients, comma-separated")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one request may take")
    parser.add_argument("--max-seconds", type=float, default=1800, help="bound on the whole run")
    parser.add_argument("--json", type=Path, default=Path("results/serve_load.json"))
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "diffclass",
        "serve",
        "--model",
        args.model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ] + (["--strategy", args.strategy] if args.strategy else [])
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        health = wait_healthy(url, process, 120)
        pngs = glyph_pngs(args.requests)
        ids = [image_from_bytes(p, f"{i}.png", 16, 1).image_id for i, p in enumerate(pngs)]
        httpx.post(f"{url}/classify", files={"image": ("warm.png", pngs[0], "image/png")}, timeout=args.timeout)
        levels = []
        for clients in (int(c) for c in args.levels.split(",")):
            if time.monotonic() - started > args.max_seconds:
                console.print(f"stopped before {clients} clients: over --max-seconds")
                break
            levels.append(level(url, pngs, ids, clients, args.timeout))
            row = levels[-1]
            console.print(
                f"{clients:>3} clients: {row['requests_per_second']:.2f} req/s, "
                f"p50 {row['p50_seconds']:.2f} s, p95 {row['p95_seconds']:.2f} s, "
                f"{row['answered_with_own_image']}/{row['requests']} with their own answer"
            )
        bad = bad_uploads(url, pngs[0])
        healthy = httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    ratio = levels[-1]["requests_per_second"] / levels[0]["requests_per_second"] if len(levels) > 1 else None
    ceiling = batching_ceiling(args.model, health["strategy"], pngs, levels[-1]["clients"])
    result = dict(
        model=args.model,
        strategy=health["strategy"],
        levels=levels,
        bad_uploads=bad,
        healthy_after_bad_uploads=healthy,
        throughput_ratio_most_vs_one_client=ratio and round(ratio, 3),
        batching_ceiling=ceiling,
    )
    for case in bad:
        console.print(f"bad upload, {case['case']}: HTTP {case['status']}, {case['error']!r}", markup=False)
    console.print(f"throughput at {levels[-1]['clients']} clients / 1 client: {ratio:.2f}x; healthy after: {healthy}")
    one, grouped = ceiling["seconds_per_image_one_per_call"], ceiling["seconds_per_image_grouped"]
    console.print(
        f"in-process, {ceiling['group']} images per call against one: {ceiling['ceiling']:.2f}x "
        f"({one:.3f} s against {grouped:.3f} s per image; "
        f"same predictions: {ceiling['same_predictions']})"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
