"""How fast the command line starts: wall time of the light commands beside `python -c "import torch"`, measured
in the same run (median of --repeats), so the ratio holds on any machine.

    python benchmarks/startup.py [--repeats 5] [--json results/startup.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "diffclass --help": [sys.executable, "-m", "diffclass", "--help"],
    "diffclass evaluate --help": [sys.executable, "-m", "diffclass", "evaluate", "--help"],
    "diffclass strategies": [sys.executable, "-m", "diffclass", "strategies"],
    "diffclass tree show imagenet": [sys.executable, "-m", "diffclass", "tree", "show", "imagenet"],
}


def wall_time(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    for argv in COMMANDS.values():  # warm the file cache once, untimed
        wall_time(argv)
    times = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):  # interleaved, so a noisy moment hits every command alike
        for name, argv in COMMANDS.items():
            times[name].append(wall_time(argv))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    torch_time = medians['python -c "import torch"']
    table = Table(title=f"wall time, median of {args.repeats} (same run)")
    for column in ("command", "seconds", "import torch / this"):
        table.add_column(column, justify="right")
    for name, seconds in medians.items():
        table.add_row(name, f"{seconds:.3f}", f"{torch_time / seconds:.1f}x")
    Console(width=120).print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(repeats=args.repeats, seconds=medians), indent=2) + "\n")


if __name__ == "__main__":
    main()
