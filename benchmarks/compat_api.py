"""Figures for the Mailpit/MailHog compatibility routes; prints them, asserts nothing.

.venv/bin/python benchmarks/compat_api.py
"""

from __future__ import annotations

import base64
import io
import os
import smtplib
import statistics
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage

import httpx
from PIL import Image

from mailsink import Server


def timed(label: str, fn: Callable[[], object], runs: int = 5) -> None:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    print(f"{label:<52} median {statistics.median(samples) * 1000:8.1f} ms  (n={runs})")


def main() -> None:
    with Server() as server, httpx.Client(base_url=server.url, timeout=120) as api:
        with smtplib.SMTP(*server.smtp_address) as smtp:
            for i in range(1000):
                smtp.sendmail(
                    "from@example.test",
                    ["to@example.test"],
                    f"Subject: m{i}\r\n\r\nbody {i} needle{i % 10}\r\n".encode(),
                )
        body = {
            "From": {"Email": "a@example.test"},
            "To": [{"Email": "b@example.test"}],
            "Subject": "bench",
            "Text": "hello",
            "HTML": "<p>hello</p>",
        }
        count = 200
        start = time.perf_counter()
        for _ in range(count):
            api.post("/api/v1/send", json=body).raise_for_status()
        elapsed = time.perf_counter() - start
        print(f"{'POST /api/v1/send, sequential':<52} {count / elapsed:8.0f} messages/s")

        timed(
            "GET /api/v2/messages?limit=250 (1,200 stored)",
            lambda: api.get("/api/v2/messages", params={"limit": 250}).raise_for_status(),
        )
        timed(
            "GET /api/v2/search kind=containing (1,200 stored)",
            lambda: api.get(
                "/api/v2/search", params={"kind": "containing", "query": "needle3"}
            ).raise_for_status(),
        )

        photo = io.BytesIO()
        Image.frombytes("RGB", (4000, 3000), os.urandom(4000 * 3000 * 3)).save(photo, "JPEG")
        blob = os.urandom(10 * 1024 * 1024)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.test", "b@example.test", "big"
        msg.set_content("files")
        msg.add_attachment(photo.getvalue(), "image", "jpeg", filename="photo.jpg")
        msg.add_attachment(blob, "application", "octet-stream", filename="blob.bin")
        api.post(
            "/api/v1/send",
            json={
                **body,
                "Subject": "big",
                "Attachments": [
                    {
                        "Filename": "photo.jpg",
                        "Content": base64.b64encode(photo.getvalue()).decode(),
                    },
                    {"Filename": "blob.bin", "Content": base64.b64encode(blob).decode()},
                ],
            },
        ).raise_for_status()
        print(
            f"(a {len(msg.as_bytes(policy=policy.SMTP)) / 1e6:.1f} MB message: "
            "12 MP JPEG + 10 MiB binary)"
        )
        timed(
            "GET /api/v1/message/latest (with checksums)",
            lambda: api.get("/api/v1/message/latest").raise_for_status(),
        )
        parts = api.get("/api/v1/message/latest").json()["Attachments"]
        photo_part = next(p["PartID"] for p in parts if p["FileName"] == "photo.jpg")
        timed(
            "GET .../part/{PartID}/thumb of the 12 MP JPEG",
            lambda: api.get(f"/api/v1/message/latest/part/{photo_part}/thumb").raise_for_status(),
        )


if __name__ == "__main__":
    main()
