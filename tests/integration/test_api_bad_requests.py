#!/usr/bin/env python3
"""The local API against bad requests, on a real sharehub-agent: each gets
the right status and a JSON error naming what is wrong, and the agent goes
on serving everyone else.

- start-up: a token file others may read (0644) is refused, naming the file
  and its mode (exit 78); an API on TCP without a token is a usage error;
- 401 without a token or with a wrong one, before the body is read;
- 413 for a declared body over 1 MiB, answered from the headers alone, and
  for a chunked one that grows past it;
- 400 broken JSON, a bad id, a bad query parameter; 404 and 405; 415;
- 422 for an unknown field, wrong types, an unknown area, with the path and
  message `sharehub-agent submit` gives for the same input; nesting as deep
  as the JSON parser allows, and deeper;
- 409 for an id already queued with other content, 200 for a repeat;
- slow clients holding connections (a request line and no more, a body
  that stops halfway) while others are served at once; the idle ones are
  closed after the timeout;
- more long polls than the API lets wait: the rest get 503 at once;
- the OpenAPI document (docs/api.openapi.json) names every resource and
  method the agent serves, and only those.

No broker is needed: the agent keeps trying to reach one and serves its API
meanwhile. Usage: test_api_bad_requests.py BUILD_DIR FIXTURES EXAMPLES_DIR
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, sys.argv[3])
import apitest  # noqa: E402
from sharehub_client import ApiError, Client, new_id  # noqa: E402

MAX_BODY = 1024 * 1024
IDLE_TIMEOUT_S = 10  # SHUB_API_TIMEOUT_S
MAX_WAITERS = 32  # SHUB_API_MAX_WAITERS


def raw(address, data, read=True, timeout=20):
    """Sends bytes on a new connection; returns (status, headers, body) of
    the answer, or None if the connection was closed without one."""
    url = urllib.parse.urlsplit(address)
    s = socket.create_connection((url.hostname, url.port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, json.loads(body) if body else None
    finally:
        if read:
            s.close()


def expect_error(t, what, fn, status, code=None, path=None):
    try:
        fn()
        t.check(False, f"{what}: no error")
        return None
    except ApiError as e:
        t.check(e.status == status, f"{what}: status {e.status}, expected {status} ({e})")
        if code is not None:
            t.check(e.code == code, f"{what}: code {e.code!r}, expected {code!r}")
        if path is not None:
            t.check(e.path == path, f"{what}: path {e.path!r}, expected {path!r}")
        return e


def submit_message(p, event):
    """What `sharehub-agent submit` says about the same input."""
    r = subprocess.run([p.program("agents/sharehub-agent"), "submit", "--org", "wmp",
                        "--config", p.org_dir("wmp"), "--db", p.path("submit.db"), "-"],
                       input=json.dumps(event), capture_output=True, text=True)
    return r.returncode, r.stderr.strip()


def run(p, t):
    agent = p.program("agents/sharehub-agent")

    # ---- start-up -----------------------------------------------------------
    loose, _ = p.token_file("loose.token", 0o644)
    r = subprocess.run(p.agent_argv("wmp", "127.0.0.1:0", loose), capture_output=True,
                       text=True, timeout=60)
    t.check(r.returncode == 78, f"a 0644 token file: exit {r.returncode}")
    t.check(f"'{loose}' has mode 0644" in r.stderr, f"the refusal names file and mode: {r.stderr}")
    r = subprocess.run(p.agent_argv("wmp", "127.0.0.1:0"), capture_output=True, text=True,
                       timeout=60)
    t.check(r.returncode == 64 and "needs --api-token" in r.stderr,
            f"TCP without a token: exit {r.returncode}: {r.stderr}")

    token_file, token = p.token_file()
    address = p.start_agent("wmp", "127.0.0.1:0", token_file)
    t.check(address.startswith("http://127.0.0.1:"), f"not loopback: {address}")
    api = Client(address, token)
    t.check(apitest.wait_until(lambda: api.health()["agent"]),
            "health: the agent never told its state")

    # ---- 401 ----------------------------------------------------------------
    expect_error(t, "no token", Client(address).health, 401, "unauthorized")
    expect_error(t, "wrong token", Client(address, token[:-1] + "x").health, 401)
    expect_error(t, "the token in another scheme",
                 lambda: raw_status(address, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
                                    b"Authorization: Basic " + token.encode() + b"\r\n\r\n"),
                 401)
    a = raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
            b"Content-Type: application/json\r\n\r\n")
    t.check(a and a[0] == 401 and a[1].get("www-authenticate", "").startswith("Bearer"),
            f"401 before the body, with WWW-Authenticate: {a}")

    # ---- 413 ----------------------------------------------------------------
    auth = f"Authorization: Bearer {token}\r\n".encode()
    a = raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (2 * MAX_BODY))
    t.check(a and a[0] == 413 and a[2]["error"]["code"] == "too-large",
            f"a declared 2 MiB body: {a}")
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(24)) + b"0\r\n\r\n"
    a = raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    t.check(a and a[0] == 413, f"a chunked 1.5 MiB body: {a}")

    # ---- 400, 404, 405, 415 -------------------------------------------------
    expect_error(t, "broken JSON", lambda: api.request("POST", "/v1/events", b'{"event": '),
                 400, "malformed")
    expect_error(t, "not an id", lambda: api.request("GET", "/v1/events/1234"), 400,
                 "bad-value", "id")
    expect_error(t, "a bad wait", lambda: api.request("GET", "/v1/inbox?wait=soon"), 400,
                 "bad-parameter", "wait")
    expect_error(t, "an unknown parameter", lambda: api.request("GET", "/v1/inbox?aftr=3"),
                 400, "bad-parameter", "aftr")
    expect_error(t, "a limit of 0", lambda: api.request("GET", "/v1/events?limit=0"), 400,
                 "bad-parameter", "limit")
    expect_error(t, "unknown resource", lambda: api.request("GET", "/v2/anything"), 404,
                 "not-found")
    expect_error(t, "unknown event", lambda: api.event(new_id()), 404, "not-found", "id")
    expect_error(t, "unknown inbox event", lambda: api.ack(new_id()), 404, "not-found")
    a = raw(address, b"DELETE /v1/events HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
    t.check(a and a[0] == 405 and a[1].get("allow") == "GET, POST", f"DELETE: {a}")
    a = raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}")
    t.check(a and a[0] == 415, f"text/plain: {a}")

    # ---- 422, with submit's path and message ---------------------------------
    cases = [
        ("unknown field", apitest.referral(subjekt="P-1"), "bad-value", "subjekt"),
        ("to is not a list", apitest.referral(to="marac@coventry"), "wrong-type", "to"),
        ("occurred is a bool", apitest.referral(occurred=True), "wrong-type", "occurred"),
        ("a payload key", apitest.referral(payload={"victim name": 1}), "bad-value",
         "payload.victim name"),
        ("an unknown area", apitest.referral(area="atlantis"), "bad-value", "area"),
        ("seconds for ms", apitest.referral(occurred=1782900000), "bad-value", "occurred"),
        ("no payload", {k: v for k, v in apitest.referral().items() if k != "payload"},
         "missing-field", "payload"),
    ]
    for what, event, code, path in cases:
        event["id"] = new_id()
        e = expect_error(t, what, lambda: api.post_event(dict(event)), 422, code, path)
        rc, msg = submit_message(p, event)
        t.check(rc == 65 and e is not None and msg == f"submit: {e.path}: {e.message}",
                f"{what}: submit says {msg!r} (exit {rc}), the API {e}")
    expect_error(t, "an array", lambda: api.request("POST", "/v1/events", [1]), 422,
                 "wrong-type")
    # Nesting as deep as the JSON parser goes, and deeper, on a connection
    # thread's stack: refused, the agent unharmed.
    for depth, status in ((2000, 422), (100000, 400)):
        deep = apitest.referral(id=new_id())
        deep["payload"] = "@"
        body = json.dumps(deep).replace('"@"', "[" * depth + "]" * depth).encode()
        expect_error(t, f"nesting {depth} deep", lambda: api.request("POST", "/v1/events", body),
                     status)

    # ---- 200 for a repeat, 409 for other content ------------------------------
    event = apitest.referral()
    first = api.post_event(event)
    again = api.request("POST", "/v1/events", event)
    t.check(again["id"] == first["id"], "a repeat is the same event")
    a = raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" %
            (len(json.dumps(event)), json.dumps(event).encode()))
    t.check(a and a[0] == 200, f"a repeat: status {a and a[0]}")
    other = dict(event, case="WMP-OTHER")
    expect_error(t, "the same id, other content", lambda: api.post_event(other), 409,
                 "conflict", "id")
    n = p.query(p.db("wmp"), "SELECT count(*) FROM outbox")[0][0]
    t.check(n == 1, f"the outbox holds {n} events, not the one")
    expect_error(t, "an ack with a body", lambda: api.request(
        "POST", f"/v1/inbox/{new_id()}/ack", {"note": "x"}), 422, "bad-value", "note")

    # ---- slow clients --------------------------------------------------------
    slow = [raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n", read=False)
            for _ in range(8)]
    slow.append(raw(address, b"POST /v1/events HTTP/1.1\r\nHost: x\r\n" + auth +
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ev",
                    read=False))
    held = time.monotonic()
    worst = 0.0
    for i in range(20):
        start = time.monotonic()
        api.health() if i % 2 else api.post_event(apitest.referral())
        worst = max(worst, time.monotonic() - start)
    t.check(worst < 5.0, f"with slow clients holding connections a request took {worst:.1f} s")
    closed = 0
    for s in slow:
        s.settimeout(IDLE_TIMEOUT_S + 20)
        try:
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    waited = time.monotonic() - held
    t.check(closed == len(slow), f"{len(slow) - closed} slow connection(s) were never closed")
    t.check(waited >= IDLE_TIMEOUT_S - 1, f"slow connections closed after {waited:.1f} s only")

    # ---- too many long polls ---------------------------------------------------
    statuses = []
    lock = threading.Lock()

    def poll():
        c = Client(address, token)
        try:
            c.inbox(wait=15)
            s = 200
        except ApiError as err:
            s = err.status
        with lock:
            statuses.append(s)

    threads = [threading.Thread(target=poll) for _ in range(MAX_WAITERS + 8)]
    for th in threads:
        th.start()
    t.check(apitest.wait_until(lambda: statuses.count(503) == 8, timeout=12),
            f"with {MAX_WAITERS + 8} long polls, 503s: {statuses}")
    start = time.monotonic()
    t.check(api.health()["agent"], "health while the long polls wait")
    t.check(time.monotonic() - start < 5.0, "health waited behind the long polls")
    for th in threads:
        th.join(60)
    t.check(statuses.count(200) == MAX_WAITERS, f"long polls: {statuses}")

    # The contract and the server agree: a documented method on a documented
    # path is served (a 404 only for the id), any other method is 405.
    doc_path = os.path.join(sys.argv[3], "..", "..", "docs", "api.openapi.json")
    with open(doc_path) as f:
        doc = json.load(f)
    for path, ops in doc["paths"].items():
        target = path.replace("{id}", new_id())
        for method in ("GET", "POST", "PUT", "DELETE"):
            a = raw(address, f"{method} {target} HTTP/1.1\r\nHost: x\r\n".encode() + auth +
                    b"Content-Length: 0\r\n\r\n")
            status, err = a[0], (a[2] or {}).get("error", {})
            if method.lower() in ops:
                t.check(status != 405 and (status != 404 or err.get("path") == "id"),
                        f"documented {method} {path}: {status} {err}")
                documented = {int(code) for code in ops[method.lower()]["responses"]}
                t.check(status in documented, f"{method} {path}: {status} not documented")
            else:
                t.check(status == 405, f"undocumented {method} {path}: {status}")

    # Still serving, still the same process.
    t.check(api.health()["agent"] and p.agents["wmp"].poll() is None, "the agent stopped")
    r = subprocess.run([agent, "run", "--help"], capture_output=True, text=True)
    t.check("--api ADDR" in r.stdout and "--api-token FILE" in r.stdout, "run --help")


def raw_status(address, data):
    a = raw(address, data)
    if a and a[0] >= 400:
        e = a[2]["error"]
        raise ApiError(a[0], e.get("code", ""), e.get("path", ""), e.get("message", ""))
    return a


if __name__ == "__main__":
    apitest.main(run)
