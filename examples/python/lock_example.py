#!/usr/bin/env python3
"""Take a raftlock lock from Python, with the standard library only.

Opens a session, takes a lock (waiting in its queue if another session
holds it), keeps the session alive in a thread while it "works", then
releases the lock and closes the session. It prints the fencing token of
the grant: pass it along with every write to the resource the lock
guards, so that the resource can refuse a stale holder.

    python3 lock_example.py --url http://127.0.0.1:7070 --lock jobs/nightly

The REST API is described by GET /v1/openapi.json on any member.
"""

import argparse
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


class APIError(Exception):
    """An error answer: {"error": {"code": ..., "message": ...}}."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Client:
    """A minimal client of the REST API v1 (any member: followers forward writes)."""

    def __init__(self, url, token=None):
        self.url = url.rstrip("/")
        self.token = token  # a bearer token, once auth is on

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            err = json.load(e).get("error", {})
            raise APIError(e.code, err.get("code"), err.get("message")) from None


def lock_path(name, action=None):
    """The path of a lock: its name with every '/' encoded as %2F."""
    path = "/v1/locks/" + urllib.parse.quote(name, safe="")
    return path + "/" + action if action else path


def keep_alive(client, session, every, stop, lost):
    """Renew the session every `every` seconds until stop is set; set lost
    when the session is gone (its locks are gone with it)."""
    while not stop.wait(every):
        try:
            client.call("POST", f"/v1/sessions/{session}/keepalive")
        except APIError as e:
            if e.code == "session_not_found":
                lost.set()
                return
            print(f"keep-alive failed, retrying: {e}", file=sys.stderr)
        except OSError as e:
            print(f"keep-alive failed, retrying: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("RAFTLOCK_URL", "http://127.0.0.1:7070"))
    ap.add_argument("--lock", default="examples/python", help="the lock's name")
    ap.add_argument("--ttl", type=float, default=10, help="the session's TTL in seconds")
    ap.add_argument("--wait", type=float, default=30, help="how long to wait for the lock, in seconds")
    ap.add_argument("--work", type=float, default=3, help="how long to hold the lock, in seconds")
    args = ap.parse_args()
    client = Client(args.url, os.environ.get("RAFTLOCK_TOKEN"))

    # A request_id makes the open safe to retry: a retry answers the same session.
    s = client.call("POST", "/v1/sessions", {
        "ttl": f"{args.ttl:g}s",
        "owner": f"python-example/{os.getpid()}",
        "request_id": secrets.token_hex(16),
    })
    session = s["id"]  # a decimal string
    print(f"session {session} opened (ttl {s['ttl']})", flush=True)

    stop, lost = threading.Event(), threading.Event()
    keeper = threading.Thread(target=keep_alive, args=(client, session, args.ttl / 3, stop, lost), daemon=True)
    keeper.start()
    try:
        try:
            grant = client.call("POST", lock_path(args.lock, "acquire"),
                                {"session": session, "wait": f"{args.wait:g}s"},
                                timeout=args.wait + 10)
        except APIError as e:
            if e.code == "lock_held":
                print(f"lock {args.lock} is still held after {args.wait:g}s: {e.message}", file=sys.stderr)
                return 1
            raise
        token = grant["token"]
        print(f"lock {grant['name']} acquired, fencing token {token}", flush=True)

        # The work: send token with every write to the guarded resource.
        deadline = time.monotonic() + args.work
        while time.monotonic() < deadline:
            if lost.is_set():
                print("the session expired: the lock is lost, stop writing", file=sys.stderr)
                return 1
            time.sleep(0.1)

        client.call("POST", lock_path(args.lock, "release"), {"session": session, "token": token})
        print(f"lock {args.lock} released (token {token})", flush=True)
        return 0
    finally:
        stop.set()
        keeper.join()
        try:
            client.call("DELETE", f"/v1/sessions/{session}")
            print(f"session {session} closed", flush=True)
        except APIError as e:
            if e.code != "session_not_found":
                raise


if __name__ == "__main__":
    sys.exit(main())
