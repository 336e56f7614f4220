"""What the local API's process tests (test_api_*.py) stand on: a
partnership made the way sharehub-keygen makes one (fresh keys, none ever
committed), a real sharehub-broker over ipc://, real sharehub-agent
processes serving --api, and the stores read back with sqlite3. Waits are on
conditions (a ready file, a query) with deadlines, never blind sleeps.

Arguments every test takes: BUILD_DIR FIXTURES EXAMPLES_PYTHON_DIR.
"""

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

WAIT_S = 60  # generous: the machine is shared and may be loaded


class Failures:
    """Counts failed checks and goes on, like the shell tests' lib.sh."""

    def __init__(self):
        self.n = 0

    def check(self, ok, what):
        if not ok:
            self.n += 1
            print(f"FAIL: {what}", file=sys.stderr, flush=True)
        return ok

    def finish(self):
        if self.n:
            print(f"{self.n} check(s) failed", file=sys.stderr)
            sys.exit(1)
        print("ok")
        sys.exit(0)


def main(run):
    """Runs run(partnership, failures) on a fresh partnership made from
    sys.argv (BUILD_DIR FIXTURES ...), removes it, and exits 0 or 1."""
    t = Failures()
    p = Partnership(sys.argv[1], sys.argv[2])
    try:
        run(p, t)
    finally:
        p.close()
    t.finish()


def wait_until(cond, timeout=WAIT_S, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


class Partnership:
    """A temp directory with the broker's configuration (orgs wmp, police;
    marac-coventry; idva-coventry; the test-marac agreement) and one agent
    directory per organisation, as sharehub-keygen makes them."""

    def __init__(self, build, fixtures):
        self.build = build
        self.fixtures = fixtures
        self.dir = tempfile.mkdtemp(prefix="shub-api-")
        self.cfg = os.path.join(self.dir, "etc")
        self.endpoint = f"ipc://{self.dir}/hub.ipc"
        self.broker = None
        self.agents = {}
        os.makedirs(os.path.join(self.cfg, "agreements"))
        os.makedirs(os.path.join(self.dir, "state"))
        shutil.copy(os.path.join(fixtures, "broker/agreements/test-marac.yaml"),
                    os.path.join(self.cfg, "agreements"))
        with open(os.path.join(fixtures, "config/minimal/orgs.yaml")) as f:
            orgs = "".join(line for line in f if "public_key:" not in line)
        with open(os.path.join(self.cfg, "orgs.yaml"), "w") as f:
            f.write(orgs)
        with open(os.path.join(self.cfg, "hub.yaml"), "w") as f:
            f.write(f'endpoint: "{self.endpoint}"\n'
                    f"database: {self.dir}/state/hub.db\n"
                    "key_dir: keys\n"
                    "limits:\n"
                    "  heartbeat_ms: 300\n"
                    "  peer_timeout_ms: 3000\n"
                    "  redeliver_ms: 2000\n"
                    "  max_attempts: 100000\n"
                    "  checkpoint_every: 20\n")
        keygen = self.program("protocol/sharehub-keygen")
        self.run([keygen, "--broker", "--dir", os.path.join(self.cfg, "keys")])
        for org in ("wmp", "marac-coventry", "idva-coventry"):
            self.run([keygen, "--org", org, "--config", self.cfg,
                      "--out", self.org_dir(org)])

    def program(self, rel):
        return os.path.join(self.build, rel)

    def path(self, name):
        return os.path.join(self.dir, name)

    def org_dir(self, org):
        return self.path(f"agent-{org}")

    def db(self, org):
        return self.path(f"{org}.db")

    @staticmethod
    def run(argv, **kw):
        r = subprocess.run(argv, capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {r.returncode}: {r.stderr}")
        return r

    # ---- processes -----------------------------------------------------------

    def start_broker(self):
        ready = self.path("broker.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        log = open(self.path("broker.log"), "a")
        self.broker = subprocess.Popen(
            [self.program("broker/sharehub-broker"), "--config", self.cfg,
             "--ready-file", ready, "--log-level", "debug"],
            stdout=log, stderr=log)
        if not wait_until(lambda: os.path.exists(ready) or self.broker.poll() is not None):
            raise RuntimeError("the broker did not start")
        if self.broker.poll() is not None:
            raise RuntimeError(f"the broker exited: see {self.path('broker.log')}")

    def token_file(self, name="api.token", mode=0o600):
        """A fresh random token in a file of `mode`; returns (path, token)."""
        path = self.path(name)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (token + "\n").encode())
        os.close(fd)
        os.chmod(path, mode)
        return path, token

    def agent_argv(self, org, api=None, token_file=None, ready=None, extra=()):
        argv = [self.program("agents/sharehub-agent"), "--log-level", "debug", "run",
                "--org", org, "--config", self.org_dir(org), "--db", self.db(org),
                "--broker", self.endpoint]
        if api:
            argv += ["--api", api]
        if token_file:
            argv += ["--api-token", token_file]
        if ready:
            argv += ["--api-ready-file", ready]
        return argv + list(extra)

    def start_agent(self, org, api, token_file=None):
        """Starts org's agent serving the API on `api`; waits for its ready
        file (DIR/ORG.api) and returns the address in it."""
        ready = self.path(f"{org}.api")
        if os.path.exists(ready):
            os.unlink(ready)
        log = open(self.path(f"{org}.log"), "a")
        p = subprocess.Popen(self.agent_argv(org, api, token_file, ready),
                             stdout=log, stderr=log)
        self.agents[org] = p
        if not wait_until(lambda: os.path.exists(ready) or p.poll() is not None):
            raise RuntimeError(f"agent {org} did not serve its API")
        if p.poll() is not None:
            raise RuntimeError(f"agent {org} exited {p.returncode}: see {org}.log")
        return self.address(org)

    def address(self, org):
        with open(self.path(f"{org}.api")) as f:
            return f.read().strip()

    def kill_agent(self, org, sig=signal.SIGKILL):
        p = self.agents.pop(org)
        p.send_signal(sig)
        return p.wait()

    def close(self):
        for org in list(self.agents):
            self.kill_agent(org, signal.SIGTERM)
        if self.broker and self.broker.poll() is None:
            self.broker.terminate()
            self.broker.wait()
        if os.environ.get("SHUB_KEEP_TEST_DIR"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the stores ----------------------------------------------------------

    def query(self, path, sql, *args):
        """Rows of a read-only query on a SQLite file."""
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


def referral(area="coventry", dash=16, **extra):
    """A MARAC referral the test-marac agreement allows (DASH 14 or more)."""
    e = {"event": "marac.referral", "occurred": "2026-07-01T10:00:00Z",
         "case": "WMP-2026-0001", "subject": "P-0123456789abcdef", "area": area,
         "purpose": "marac-risk-management", "basis": "uk-gdpr-6-1-e",
         "consent": "given", "to": [f"marac@{area}"],
         "payload": {"victim": {"name": "Ann Thornbrook", "dob": "1990-02-03"},
                     "risk": {"dash_score": dash},
                     "incident": {"summary": "synthetic"},
                     "referral": {"route": "police"}}}
    e.update(extra)
    return e
