"""Instructions the server executes per list and search request, counted by callgrind.

    python benchmarks/query_instructions.py /tmp/bench.db [--requests 5]

Starts mailsink on the file under ``valgrind --tool=callgrind`` (Debian: ``apt-get install
valgrind``), sends each request three times to warm up, zeroes the counters
(``callgrind_control -z``), sends it ``--requests`` times more and reads the count back
(``callgrind_control -d``). Unlike a time, the count does not move with the machine's load,
so two versions can be compared on a busy machine: run this once per version
(``PYTHONPATH`` set to each copy's folder, as ``compare.py`` does). Every thread of the
server process is counted; the ingest process is not (a request does not reach it).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

CASES = {
    "first page": ("/api/v1/messages", {}),
    "page at start=50000": ("/api/v1/messages", {"start": "50000"}),
    "word: invoice": ("/api/v1/search", {"query": "invoice"}),
    "common word: the": ("/api/v1/search", {"query": "the"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("needs valgrind and callgrind_control (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/callgrind"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.Popen(
            [
                *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"),
                *(sys.executable, "-m", "mailsink", "--db", str(args.db)),
                *("--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"),
                *("--max-messages", "0", "--quiet"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        url = next(
            (m.group(1) for line in proc.stdout if (m := re.search(r"on (http://\S+)", line))),
            None,
        )
        if url is None:
            sys.exit("mailsink did not start")
        try:
            run(proc.pid, url, out, args.requests)
        finally:
            proc.terminate()
            proc.wait(120)


def run(pid: int, url: str, out: str, requests: int) -> None:
    print(f"{'request':<24} {'instructions per request':>26}")
    with httpx.Client(base_url=url, timeout=600) as client:
        for label, (path, params) in CASES.items():
            for _ in range(3):
                client.get(path, params=params).raise_for_status()
            subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, check=True)
            for _ in range(requests):
                client.get(path, params=params).raise_for_status()
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=True)
            newest = max(glob.glob(f"{out}.{pid}.*"), key=os.path.getmtime)
            found = re.search(r"^(?:summary|totals): (\d+)", Path(newest).read_text(), re.M)
            assert found, f"no total in {newest}"
            print(f"{label:<24} {int(found.group(1)) / requests / 1e6:>18.1f} million")


if __name__ == "__main__":
    main()
