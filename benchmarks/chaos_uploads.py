"""The chaos benchmark's compile clients (benchmarks/chaos.py): each sends one upload
and follows its job as `farm compile` does, through whichever master answers."""

from __future__ import annotations

import threading

import requests

from benchmarks.chaos_farm import UPLOAD_TARGET


def send_and_follow(urls: list[str], token: str, data: bytes, stop: threading.Event) -> str:
    """What became of the upload: "202, then succeeded" (or failed); "202, then 404"
    is an acknowledged job lost; "not taken (...)" a client that got no answer."""
    auth = {"Authorization": f"Bearer {token}"}
    try:
        reply = requests.post(f"{urls[0]}plugins/compile/jobs", data=data, timeout=600,
                              params={"target": UPLOAD_TARGET, "wait": "0"}, headers=auth)
    except requests.RequestException as err:
        return f"not taken ({type(err).__name__})"
    if reply.status_code != 202:
        return str(reply.status_code)
    job = reply.json()["job"]
    while not stop.wait(2):
        for url in urls:
            try:
                state = requests.get(f"{url}plugins/compile/jobs/{job}", headers=auth,
                                     timeout=30)
            except requests.RequestException:
                continue        # this master is away: ask the next
            if state.status_code != 200:
                return f"202, then {state.status_code}"
            if state.json()["state"] != "running":
                return f"202, then {state.json()['state']}"
            break
    return "202, still running at the end"
