"""Figures for the web UI with many messages; prints them, asserts nothing.

.venv/bin/python benchmarks/web_ui.py [MESSAGES]   (default 100000; needs Chromium)
"""

from __future__ import annotations

import smtplib
import statistics
import sys
import time
from collections.abc import Callable

import httpx
from playwright.sync_api import sync_playwright

from mailsink import Server, Settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<58} median {statistics.median(samples) * 1000:8.1f} ms"
        f"  max {max(samples) * 1000:8.1f} ms  (n={len(samples)})"
    )


def timed(label: str, fn: Callable[[], object], runs: int = 7) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    report(label, samples)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    settings = Settings(smtp="127.0.0.1:0", http="127.0.0.1:0", max_messages=0)
    with Server(settings) as server, httpx.Client(base_url=server.url, timeout=120) as api:
        start = time.perf_counter()
        futures = [
            server.store.add(
                f"From: Sender {i % 97} <s{i % 97}@example.test>\r\nTo: you@example.test\r\n"
                f"Subject: Message number {i}\r\n\r\nBody of message {i}, some words.\r\n".encode()
            )
            for i in range(count)
        ]
        for future in futures:
            future.result()
        print(f"stored {count:,} messages in {time.perf_counter() - start:.1f} s")
        last = max(0, count - 50)

        timed("GET / (page + first 50 rows as JSON)", lambda: api.get("/").raise_for_status())
        timed(
            "GET /api/v1/messages?start=0&limit=50",
            lambda: api.get("/api/v1/messages", params={"start": 0, "limit": 50}),
        )
        timed(
            f"GET /api/v1/messages?start={last}&limit=50 (last page)",
            lambda: api.get("/api/v1/messages", params={"start": last, "limit": 50}),
        )
        timed(
            "GET /api/v1/search?query=subject:number is:unread",
            lambda: api.get("/api/v1/search", params={"query": "subject:number is:unread"}),
        )
        timed(
            "GET /view/ID?fragment=1 (the message pane)",
            lambda: api.get("/view/latest", params={"fragment": 1}, follow_redirects=True),
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            loads = []
            for _ in range(5):
                start = time.perf_counter()
                page.goto(server.url)
                page.locator(".row").nth(49).wait_for()
                loads.append(time.perf_counter() - start)
            report("browser: open the inbox until 50 rows show", loads)

            pages = []
            for _ in range(5):
                before = page.locator("#range").text_content()
                start = time.perf_counter()
                page.locator("#older").click()
                page.wait_for_function(
                    "before => document.querySelector('#range').textContent !== before",
                    arg=before,
                )
                pages.append(time.perf_counter() - start)
            report("browser: next page", pages)

            page.goto(f"{server.url}/?start={last}")
            page.locator(".row").first.wait_for()
            start = time.perf_counter()
            page.keyboard.press("Enter")
            page.locator("#message-subject").wait_for()
            report("browser: open a message on the last page", [time.perf_counter() - start])

            page.goto(server.url)
            page.wait_for_function("document.querySelector('#live').dataset.state === 'live'")
            live = []
            host, port = server.smtp_address
            with smtplib.SMTP(host, port) as smtp:
                for i in range(20):
                    subject = f"Live {i}"
                    start = time.perf_counter()
                    smtp.sendmail(
                        "a@example.test", ["b@example.test"], f"Subject: {subject}\r\n\r\nx\r\n"
                    )
                    page.locator(".row").first.filter(has_text=subject).wait_for()
                    live.append(time.perf_counter() - start)
            report("browser: SMTP send until the row shows (live)", live)

            start = time.perf_counter()
            burst = [
                server.store.add(f"Subject: Burst {i}\r\n\r\nx\r\n".encode()) for i in range(2000)
            ]
            for future in burst:
                future.result()
            page.locator(".row").first.filter(has_text="Burst 1999").wait_for()
            report(
                "browser: 2,000 messages at once, until the last shows",
                [time.perf_counter() - start],
            )
            browser.close()


if __name__ == "__main__":
    main()
