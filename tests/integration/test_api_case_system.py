#!/usr/bin/env python3
"""Two case systems on the local API, with the example client
(examples/python/sharehub_client.py), while each agent is killed with
SIGKILL in the middle of the work.

A real broker and two real agents over ipc://: wmp (police) serves its API
on 127.0.0.1, port 0, with a bearer token; marac-coventry on a unix socket.
The police case system posts N referrals to marac@coventry, each with its
own id, retrying whatever got no answer. The MARAC's case system long-polls
its inbox, handles each event, and acknowledges it; once it "crashes"
between handling and acknowledging, and starts again from the beginning of
its inbox. Meanwhile wmp's agent is killed -9 and restarted (a new port,
found in its ready file), and later marac-coventry's (the same socket path).

Then: every event is acknowledged by the MARAC (followed to `final` through
the status long poll); wmp's outbox, the broker and the MARAC's inbox each
hold every event exactly once; each was taken exactly once (the first
acknowledgement; later ones say repeat), the case system handled each once
(it dropped the repeats by id), and `sharehub-agent inbox` shows them taken.

Usage: test_api_case_system.py BUILD_DIR FIXTURES EXAMPLES_PYTHON_DIR
"""

import http.client
import os
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, sys.argv[3])
import apitest  # noqa: E402
from sharehub_client import ApiError, Client, new_id  # noqa: E402

N = 120
DEADLINE_S = 180


def retrying(what, fn, deadline):
    """Calls fn until it answers: an agent being killed and restarted
    refuses connections or drops them for a while."""
    while True:
        try:
            return fn()
        except (OSError, http.client.HTTPException) as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: no answer before the deadline: {e}")
            time.sleep(0.1)


def run(p, t):
    deadline = time.monotonic() + DEADLINE_S
    p.start_broker()
    token_file, token = p.token_file()
    p.start_agent("wmp", "127.0.0.1:0", token_file)
    sock = p.path("marac.sock")
    p.start_agent("marac-coventry", "unix:" + sock)
    t.check(stat.S_IMODE(os.stat(sock).st_mode) == 0o600, "the unix socket is not 0600")

    # The police client finds the agent's address again after a restart.
    police = Client(lambda: p.address("wmp"), token)
    marac = Client("unix:" + sock)
    h = apitest.wait_until(lambda: retrying("health", police.health, deadline)["welcomed"])
    t.check(h, "wmp's agent never said it was welcomed")

    ids = [new_id() for _ in range(N)]
    posted = {}  # id -> status of the first answer
    progress = threading.Condition()
    handled, repeats, first_takes = [], [0], {}
    taken_at, interrupted = {}, set()  # id -> the times its acks said; acks cut off
    errors = []

    def police_system():
        try:
            for i, event_id in enumerate(ids):
                event = apitest.referral(case=f"WMP-2026-{i:04d}")
                event["id"] = event_id
                st = retrying("post", lambda: police.post_event(dict(event)), deadline)
                with progress:
                    posted[event_id] = st
                    progress.notify_all()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(f"police: {e!r}")

    def marac_system():
        seen = set()
        after, crashed = 0, False
        try:
            while len(seen) < N and time.monotonic() < deadline:
                page = retrying("inbox", lambda: marac.inbox(after=after, wait=5), deadline)
                for item in page["events"]:
                    event_id = item["event"]["id"]
                    if event_id in seen:
                        repeats[0] += 1  # at least once: dropped by id
                    else:
                        seen.add(event_id)
                        with progress:
                            handled.append(event_id)
                            progress.notify_all()
                        if len(seen) == N // 4 and not crashed:
                            # Handled, then gone before the acknowledgement: the
                            # case system starts again from its inbox's start.
                            crashed = True
                            after = 0
                            break
                    def ack():
                        try:
                            return marac.ack(event_id)
                        except (OSError, http.client.HTTPException):
                            interrupted.add(event_id)  # perhaps taken, answer lost
                            raise
                    a = retrying("ack", ack, deadline)
                    taken_at.setdefault(event_id, set()).add(a["taken"])
                    if not a["repeat"]:
                        first_takes[event_id] = first_takes.get(event_id, 0) + 1
                    after = item["seq"]
                else:
                    after = page["next"]
        except Exception as e:  # noqa: BLE001
            errors.append(f"marac: {e!r}")

    threads = [threading.Thread(target=police_system), threading.Thread(target=marac_system)]
    for th in threads:
        th.start()

    # kill -9 wmp's agent while the police system is posting,
    with progress:
        progress.wait_for(lambda: len(posted) >= N // 3 or errors, timeout=DEADLINE_S)
    at_kill = len(posted)
    t.check(p.kill_agent("wmp") == -9, "wmp's agent did not die of SIGKILL")
    time.sleep(0.3)  # requests meet a dead agent for a moment
    p.start_agent("wmp", "127.0.0.1:0", token_file)
    # and marac-coventry's while its case system is taking events.
    with progress:
        progress.wait_for(lambda: len(handled) >= N // 2 or errors, timeout=DEADLINE_S)
    at_kill_marac = len(handled)
    t.check(p.kill_agent("marac-coventry") == -9, "marac's agent did not die of SIGKILL")
    time.sleep(0.3)
    p.start_agent("marac-coventry", "unix:" + sock)

    for th in threads:
        th.join(max(1, deadline - time.monotonic()))
    print(f"wmp killed after {at_kill} posts, marac after {at_kill_marac} handled; "
          f"{repeats[0]} repeat(s) dropped, {len(interrupted)} ack(s) cut off", flush=True)
    t.check(at_kill < N and at_kill_marac < N, "a kill came after the work was done")
    t.check(not errors, f"the case systems failed: {errors}")
    t.check(len(posted) == N, f"{len(posted)} of {N} events posted")

    # Every event followed to its final outcome: acknowledged by the MARAC.
    for event_id in ids:
        st = retrying("follow", lambda: police.follow(event_id, wait=10,
                                                      timeout=max(1, deadline - time.monotonic())),
                      deadline)
        outcomes = {o["to"]: o["outcome"] for o in st["outcomes"]}
        if not t.check(st["final"] and outcomes == {"marac-coventry": "acknowledged"},
                       f"event {event_id}: {st}"):
            break

    # Nothing lost, nothing doubled: wmp's outbox, the broker, the MARAC's inbox.
    out = p.query(p.db("wmp"), "SELECT lower(hex(id)) FROM outbox")
    want = sorted(i.replace("-", "") for i in ids)
    t.check(sorted(r[0] for r in out) == want, f"wmp's outbox holds {len(out)} rows, not the {N} events")
    t.check(p.query(p.path("state/hub.db"), "SELECT count(*) FROM events")[0][0] == N,
            "the broker did not accept each event once")
    inbox = p.query(p.db("marac-coventry"),
                    "SELECT lower(hex(id)), taken_at IS NOT NULL FROM inbox")
    t.check(sorted(r[0] for r in inbox) == want, f"the MARAC's inbox holds {len(inbox)} rows")
    t.check(all(r[1] for r in inbox), "an event in the MARAC's inbox was never taken")

    # Each taken once; handled once; the repeats the crash caused were dropped.
    t.check(sorted(handled) == sorted(ids), f"handled {len(handled)} events, not each of {N} once")
    # Taken once: no id had two first acknowledgements, every acknowledgement
    # of an id names the same time, and an id without a first one is one
    # whose acknowledgement was cut off by the kill (taken, the answer lost).
    t.check(set(first_takes.values()) <= {1}, f"an event was taken twice: {first_takes}")
    t.check(all(len(v) == 1 for v in taken_at.values()), "an event's taken time changed")
    missing = set(ids) - set(first_takes)
    t.check(missing <= interrupted, f"never taken first, and not cut off: {missing - interrupted}")
    t.check(repeats[0] >= 1, "the case system's crash brought no repeat to drop")
    left = marac.inbox()
    t.check(left["events"] == [], f"the MARAC's inbox still lists untaken events: {left}")
    t.check(len(marac.inbox(all=True, limit=1000)["events"]) == N, "all=1 does not list every event")

    # The command line says what the case system has taken.
    r = subprocess.run([p.program("agents/sharehub-agent"), "inbox", "--org", "marac-coventry",
                        "--db", p.db("marac-coventry"), "--format", "json"],
                       capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    t.check(r.returncode == 0 and len(lines) == N and all('"taken":' in ln for ln in lines),
            f"inbox --format json: {r.returncode} {len(lines)} lines {r.stderr}")

    # The agent's health, now that everything is done.
    h = police.health()
    t.check(h["welcomed"] and h["backlog"]["outbox_pending"] == 0, f"wmp health: {h}")
    h = apitest.wait_until(lambda: (lambda x: x if x["checkpoint"] else None)(marac.health()),
                           timeout=20)
    t.check(h and h["checkpoint"]["seq"] >= 1, f"marac health names no checkpoint: {h}")
    try:
        Client(lambda: p.address("wmp"), "not-the-token-at-all").health()
        t.check(False, "a wrong token was let in")
    except ApiError as e:
        t.check(e.status == 401, f"a wrong token: {e}")


if __name__ == "__main__":
    apitest.main(run)
