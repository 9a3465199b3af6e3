"""Run one benchmark script against several copies of mailsink, interleaved, and print the
median and spread of every figure it prints.

    python benchmarks/variants.py /tmp/variants base notrim
    python benchmarks/compare.py --variant base=/tmp/variants/base \\
        --variant notrim=/tmp/variants/notrim --rounds 3 -- benchmarks/memory.py --messages 5000

Each round runs the script once per variant (A B A B ...), with ``PYTHONPATH`` set to the
variant's folder, from a scratch folder (so that no other ``mailsink`` is imported first), on
a machine whose load average is printed before each run. ``{tmp}`` in the script's arguments
becomes a new empty folder for each run, and ``{variant}`` the variant's name. The script's
output lines are matched by their position: every number on a line is replaced by the median
over the rounds, followed by the lowest and highest in brackets when they differ.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_NUMBER = re.compile(r"-?\d(?:[\d,]*\d)?(?:\.\d+)?")


def _value(text: str) -> float:
    return float(text.replace(",", ""))


def _format(values: list[float], like: str) -> str:
    decimals = len(like.split(".")[1]) if "." in like else 0
    median = statistics.median(values)
    text = f"{median:,.{decimals}f}" if "," in like else f"{median:.{decimals}f}"
    low, high = min(values), max(values)
    if len(values) > 1 and high != low:
        text += f" [{low:.{decimals}f}-{high:.{decimals}f}]"
    return text


def _shape(line: str) -> str:
    """A line's text around its numbers, whatever the width they were padded to."""
    return " ".join(_NUMBER.sub("#", line).split())


def summarise(outputs: list[list[str]]) -> list[str]:
    """Lines of the first run, each number the median of that number over all runs whose
    line has the same shape (the same text around its numbers)."""
    lines = []
    for i, line in enumerate(outputs[0]):
        shape = _shape(line)
        runs = [
            [_value(n) for n in _NUMBER.findall(out[i])]
            for out in outputs
            if i < len(out) and _shape(out[i]) == shape
        ]
        parts = _NUMBER.split(line)
        numbers = _NUMBER.findall(line)
        merged = parts[0]
        for k, like in enumerate(numbers):
            merged += _format([r[k] for r in runs], like) + parts[k + 1]
        lines.append(merged)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True, help="NAME=FOLDER")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- script [args]")
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"]
    if not command:
        sys.exit("give the script to run after --")
    script = str(Path(command[0]).resolve())
    variants = dict(v.split("=", 1) for v in args.variant)
    outputs: dict[str, list[list[str]]] = {name: [] for name in variants}
    print(f"{' '.join(command)}; {args.rounds} rounds; {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for name, folder in variants.items():
                with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                    argv = [a.replace("{tmp}", tmp).replace("{variant}", name) for a in command[1:]]
                    env = dict(os.environ, PYTHONPATH=str(Path(folder).resolve()))
                    load = os.getloadavg()[0]
                    started = time.perf_counter()
                    done = subprocess.run(
                        [sys.executable, script, *argv],
                        cwd=scratch,
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    took = time.perf_counter() - started
                if done.returncode != 0:
                    sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
                outputs[name].append(done.stdout.splitlines())
                print(
                    f"round {round_ + 1} {name}: {took:.1f} s, load average {load:.2f}", flush=True
                )
    for name, runs in outputs.items():
        print(f"\n== {name} ({variants[name]}), median [min-max] of {len(runs)} runs")
        print("\n".join(summarise(runs)))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
