#!/usr/bin/env python3
"""A client of sharehub-agent's local HTTP/JSON API, with Python's standard
library only: what a case system (police records, council case management,
a hospital system) needs to share events and take what it receives.

    from sharehub_client import Client
    api = Client("http://127.0.0.1:8470", token=open("api.token").read().strip())
    status = api.post_event({"event": "marac.referral", ...})    # gets an id
    status = api.follow(status["id"])                             # until final
    for item in api.inbox(wait=30)["events"]:
        handle(item["event"])               # drop ids already handled
        api.ack(item["event"]["id"])        # taken: it leaves the listing

The address is http://HOST:PORT or unix:PATH (the agent's --api), or a
function returning one, called again before each new connection (an agent
restarted on port 0 writes its new address to --api-ready-file).

Delivery to the case system is at least once: an event stays in the inbox
listing until acknowledged, so a case system that crashes between handling
an event and acknowledging it sees it again, and must drop it by id. Sending
is safe to repeat: post_event gives every event an id before the first try,
and the agent takes a repeat of the same event as the same event.

The API is described in docs/api.openapi.json. Run this file for a small
command line:  sharehub_client.py --address ADDR --token-file F health
"""

import argparse
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

__all__ = ["ApiError", "Client", "new_id"]


def new_id():
    """A fresh event id: a UUIDv7 (48 bits of ms since 1970, then random)."""
    ms = int(time.time() * 1000)
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class ApiError(Exception):
    """An answer of 400 or more: status, and the error's code, path, message."""

    def __init__(self, status, code, path, message):
        super().__init__(f"{status} {code}{' ' + path if path else ''}: {message}")
        self.status, self.code, self.path, self.message = status, code, path, message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Client:
    """One keep-alive connection to an agent's API. Not for several threads
    at once: give each thread its own."""

    def __init__(self, address, token=None, timeout=90.0):
        self._address = address if callable(address) else (lambda: address)
        self._token = token
        self._timeout = timeout
        self._conn = None

    # ---- plumbing ---------------------------------------------------------

    def _connect(self):
        address = self._address().strip()
        if address.startswith("unix:"):
            return _UnixConnection(address[5:], self._timeout)
        url = urllib.parse.urlsplit(address)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"not an API address: {address!r}")
        return http.client.HTTPConnection(url.hostname, url.port or 80,
                                          timeout=self._timeout)

    def close(self):
        if self._conn:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, params=None):
        """Sends one request; returns the JSON of a 2xx answer, raises
        ApiError for any other status, OSError (or http.client's errors) when
        the agent cannot be reached; the connection is then dropped."""
        if params:
            query = {k: (int(v) if isinstance(v, bool) else v)
                     for k, v in params.items() if v is not None}
            if query:
                path += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reused = self._conn is not None
            if not reused:
                self._conn = self._connect()
            try:
                self._conn.request(method, path, body=data, headers=headers)
                resp = self._conn.getresponse()
                text = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                # The agent closes a connection idle for a while: a request on
                # a kept-alive one may meet that close. Every request here is
                # safe to send again (an event keeps its id), so once more.
                self.close()
                if not reused or attempt == 2:
                    raise e
            except (OSError, http.client.HTTPException):
                self.close()
                raise
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {"error": {"code": "not-json", "message": text[:200].decode(
                "utf-8", "replace")}}
        if resp.status >= 400:
            e = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise ApiError(resp.status, e.get("code", ""), e.get("path", ""),
                           e.get("message", ""))
        return answer

    # ---- the API ----------------------------------------------------------

    def post_event(self, event):
        """Queues an event (the JSON `sharehub-agent submit` takes). Gives it
        an id first if it has none (the dict is changed), so that a retry
        after a lost answer is the same event. Returns its status."""
        event.setdefault("id", new_id())
        return self.request("POST", "/v1/events", event)

    def event(self, event_id, since=None, wait=None):
        """An event's status; with since, waits up to `wait` seconds for a
        change after that cursor (the status's "changed")."""
        return self.request("GET", f"/v1/events/{event_id}",
                            params={"since": since, "wait": wait})

    def follow(self, event_id, until=lambda s: s["final"], wait=30, timeout=None):
        """Long-polls an event's status until until(status) holds (by
        default: every outcome final) or timeout seconds pass."""
        end = None if timeout is None else time.monotonic() + timeout
        status = self.event(event_id)
        while not until(status):
            if end is not None and time.monotonic() >= end:
                break
            status = self.event(event_id, since=status["changed"], wait=wait)
        return status

    def changes(self, after=0, wait=None, limit=None):
        """Outbox events changed after cursor `after`: {"events", "next"}."""
        return self.request("GET", "/v1/events",
                            params={"after": after, "wait": wait, "limit": limit})

    def inbox(self, after=0, wait=None, limit=None, all=False):
        """Received events after inbox seq `after` not yet taken (all=True:
        taken ones too): {"events": [{"seq", "taken", "event"}], "next"}."""
        return self.request("GET", "/v1/inbox", params={
            "after": after, "wait": wait, "limit": limit, "all": all or None})

    def ack(self, event_id):
        """The case system has taken the event: {"id", "taken", "repeat"}."""
        return self.request("POST", f"/v1/inbox/{event_id}/ack")

    def health(self):
        return self.request("GET", "/v1/health")


def _main(argv):
    p = argparse.ArgumentParser(description="sharehub-agent's local API")
    p.add_argument("--address", required=True,
                   help="http://HOST:PORT or unix:PATH, or @FILE to read it from")
    p.add_argument("--token-file")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("health")
    post = sub.add_parser("post")
    post.add_argument("file", help="the event as JSON, - for stdin")
    ev = sub.add_parser("event")
    ev.add_argument("id")
    ev.add_argument("--follow", action="store_true")
    ib = sub.add_parser("inbox")
    ib.add_argument("--after", type=int, default=0)
    ib.add_argument("--wait", type=int)
    ack = sub.add_parser("ack")
    ack.add_argument("id")
    a = p.parse_args(argv)
    address = a.address
    if address.startswith("@"):
        path = address[1:]
        address = lambda: open(path).read()  # noqa: E731
    token = open(a.token_file).read().strip() if a.token_file else None
    api = Client(address, token)
    try:
        if a.cmd == "health":
            out = api.health()
        elif a.cmd == "post":
            out = api.post_event(json.load(sys.stdin if a.file == "-" else open(a.file)))
        elif a.cmd == "event":
            out = api.follow(a.id) if a.follow else api.event(a.id)
        elif a.cmd == "inbox":
            out = api.inbox(after=a.after, wait=a.wait)
        else:
            out = api.ack(a.id)
    except ApiError as e:
        print(f"sharehub_client: {e}", file=sys.stderr)
        return 65 if e.status in (400, 409, 413, 415, 422) else 69
    except OSError as e:
        print(f"sharehub_client: cannot reach the agent: {e}", file=sys.stderr)
        return 69
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
