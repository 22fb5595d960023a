#!/usr/bin/env python3
"""End-to-end `mintgate baseline top | reset | export | import`.

A real redis-server and `mintgate broker` on loopback; `mintgate produce`
and `mintgate score` make the baselines.

- top: identities made risky with secret_exposed signals of different
  severity rank in order of their risk now, -n cuts the list; later, an
  identity whose signal is 12 h (two half-lives) old ranks by its decayed
  risk, not its stored one, and a quarantine that old does not decay.
- export -> FLUSHALL -> import --with-offsets: `show --json` is identical
  to before for every identity, and a scorer in a new consumer group,
  reading the topics from the start, applies nothing twice.
- import without --with-offsets keeps the target's offsets; with it, the
  offsets become exactly the line's.
- reset, with a scorer running that has the identity cached: `show` gives
  zero events and risk 0, a subscriber on mg:risk sees the zero risk, the
  offsets are kept, and the next event for the identity is counted on the
  empty baseline (count 1: the scorer reloaded it).
- import of a file with a corrupt blob, bad base64 and a line that is not
  JSON reports those line numbers and imports the other lines.

Event times lie an hour ahead of the wall clock (allowed up to 24 h) for
every identity whose `show` output is compared: the risk shown is the risk
at max(now, newest event), so it does not move while the test runs.

Usage: test_baseline_e2e.py /path/to/mintgate
"""
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from mgtest import Redis, check, free_port, spawn, verdict, wait_line

MINTGATE = sys.argv[1]
NOW = int(time.time() * 1000)
FUTURE = NOW + 3600 * 1000      # compared identities' event time
PAST = NOW - 12 * 3600 * 1000   # two default half-lives (6 h) ago

ID = "spiffe://corp/bl/"
RISKY = {ID + "risky-a": 95, ID + "risky-b": 60, ID + "risky-c": 30}
CALM = [ID + "calm-%d" % i for i in range(8)]
DECAYED = ID + "old-leak"       # secret_exposed 95, 12 h ago
QUARANTINED = ID + "old-quarantine"  # quarantine 40, 12 h ago


def auth(ident, ts, n):
    return {"type": "auth", "event_id": "a-%s-%d" % (ident[-8:], n),
            "ts": ts, "identity": ident, "client_id": "c1",
            "source_ip": "203.0.113.5", "auth_method": "jwt_svid",
            "grant_type": "client_credentials", "scopes": ["deploy:write"],
            "outcome": "success", "token_id": "t-%d" % n}


def usage(ident, ts, n):
    return {"type": "usage", "event_id": "u-%s-%d" % (ident[-8:], n),
            "ts": ts, "identity": ident, "token_id": "t-%d" % n,
            "resource": "api://deploy", "action": "POST /releases",
            "scope": "deploy:write", "source_ip": "203.0.113.5",
            "status": 201, "bytes": 10}


def sig(ident, ts, kind, severity):
    return {"type": "signal", "event_id": "s-%s-%s" % (ident[-8:], kind),
            "ts": ts, "identity": ident, "kind": kind, "severity": severity,
            "source": "scanner", "detail": "%s test" % kind}


def history(ident, t0, n):
    """n auth + n usage events, a second apart from t0."""
    out = []
    for i in range(n):
        out.append(auth(ident, t0 + 2000 * i, i))
        out.append(usage(ident, t0 + 2000 * i + 1000, i))
    return out


class Resp:
    """A raw RESP connection: binary-safe replies (a baseline blob is not
    text, so redis-cli's output cannot carry it) and pub/sub."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.fp = self.sock.makefile("rb")

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)

    def read(self):
        line = self.fp.readline()
        if not line:
            raise EOFError
        kind, rest = line[:1], line[1:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.fp.read(n + 2)[:-2]
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest

    def command(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        self.sock.close()


class Subscriber(Resp):
    """Subscribed to one channel; a thread collects the messages."""

    def __init__(self, port, channel):
        super().__init__(port)
        first = self.command("SUBSCRIBE", channel)
        if first[0] != b"subscribe":
            raise RuntimeError("SUBSCRIBE failed: %r" % (first,))
        self.messages = []
        self.sock.settimeout(None)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            while True:
                msg = self.read()
                if isinstance(msg, list) and msg[0] == b"message":
                    self.messages.append(json.loads(msg[2]))
        except (EOFError, OSError, ValueError):
            pass

    def wait_for(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in list(self.messages):
                if pred(m):
                    return m
            time.sleep(0.02)
        return None


def main():
    tmp = tempfile.mkdtemp(prefix="mg-baseline-e2e-")
    redis = Redis(tmp)
    redis.start()
    raddr = "127.0.0.1:%d" % redis.port
    broker = subprocess.Popen([MINTGATE, "broker", "--port", "0",
                               "--partitions", "2"], stdout=subprocess.PIPE,
                              text=True)
    scorers = []
    sub = None
    try:
        bootstrap = broker.stdout.readline().strip().split("=", 1)[1]
        common = ["--brokers", bootstrap, "--redis", raddr,
                  "--set", "ingest.retry_backoff=100ms",
                  "--log-level", "info"]

        def run(*args, stdin=None):
            return subprocess.run([MINTGATE] + list(args), input=stdin,
                                  capture_output=True, text=True, timeout=60)

        def baseline(*args, stdin=None):
            return run("baseline", *args, "--redis", raddr, stdin=stdin)

        def show(ident):
            p = baseline("show", ident, "--json")
            return json.loads(p.stdout) if p.returncode == 0 else None

        def produce(events):
            path = os.path.join(tmp, "events.jsonl")
            with open(path, "w") as fp:
                for ev in events:
                    fp.write(json.dumps(ev) + "\n")
            p = run("produce", "--brokers", bootstrap, path)
            check(p.returncode == 0, "produce: " + p.stderr[-300:])

        def start_scorer(group, *extra):
            p = spawn([MINTGATE, "score", "--group", group] + common +
                      list(extra))
            scorers.append(p)
            return p

        def wait_assigned(p):
            return check(wait_line(p, "assigned"),
                         "scorer got partitions within 30 s")

        def stop(p):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
            p.pump.join(timeout=10)
            check(p.returncode == 0, "scorer exits 0 on SIGTERM: " +
                  "".join(p.lines[-3:]))

        def total(doc):
            return sum(doc["events"].values()) if doc else -1

        def wait_counts(want, timeout=30):
            """Until show's event total of each identity is want[ident]."""
            deadline = time.monotonic() + timeout
            got = {}
            while time.monotonic() < deadline:
                got = {i: total(show(i)) for i in want}
                if got == want:
                    return True
                time.sleep(0.2)
            return check(False, "scored within %d s: got %s, want %s" % (
                timeout, got, want))

        def hgetall(ident):
            """The baseline hash; values other than the blob decoded."""
            conn = Resp(redis.port)
            out = conn.command("HGETALL", "mg:{%s}:bl" % ident)
            conn.close()
            return {k.decode(): v if k == b"b" else v.decode()
                    for k, v in zip(out[0::2], out[1::2])}

        def offsets(ident):
            return {k: v for k, v in hgetall(ident).items()
                    if k.startswith("o:")}

        # --- Bad usage and an unreachable Redis ------------------------
        p = run("baseline", "top", "-n", "abc")
        check(p.returncode == 2 and "-n abc" in p.stderr,
              "top -n abc: exit 2 naming the flag: %d %s" % (
                  p.returncode, p.stderr.strip()))
        p = run("baseline", "export", "--with-offsets")
        check(p.returncode == 2 and "--with-offsets" in p.stderr,
              "export --with-offsets: exit 2 naming the flag: " + p.stderr)
        p = run("baseline", "reset")
        check(p.returncode == 2, "reset without identity: exit 2")
        dead = "127.0.0.1:%d" % free_port()
        p = run("baseline", "top", "--redis", dead)
        check(p.returncode == 1 and dead in p.stderr,
              "top, Redis unreachable: exit 1 naming %s: %s" % (
                  dead, p.stderr.strip()))

        # --- Baselines: a scorer in group g1 ---------------------------
        events = []
        for ident in CALM:
            events += history(ident, FUTURE, 3)
        for ident, severity in RISKY.items():
            events += history(ident, FUTURE, 3)
            events.append(sig(ident, FUTURE + 10000, "secret_exposed",
                              severity))
        truth = {}
        for ev in events:
            truth[ev["identity"]] = truth.get(ev["identity"], 0) + 1
        s1 = start_scorer("g1")
        wait_assigned(s1)
        produce(events)
        wait_counts(truth)

        # --- top --------------------------------------------------------
        order = sorted(RISKY, key=lambda i: -RISKY[i])
        p = baseline("top", "--json")
        check(p.returncode == 0, "top --json exit 0: " + p.stderr)
        ranked = json.loads(p.stdout) if p.returncode == 0 else []
        check([r["identity"] for r in ranked] == order,
              "top ranks the risky identities by severity: %s" %
              [r["identity"] for r in ranked])
        for r in ranked:
            check(r["top_reason"] == "secret_exposed" and
                  abs(r["risk_now"] - r["risk"]) < 0.01 and
                  abs(r["risk"] - 60 * RISKY[r["identity"]] / 100) < 0.5,
                  "top entry of %s: %s" % (r["identity"], r))
        check([r["rank"] for r in ranked] == [1, 2, 3], "ranks 1..3")
        p = baseline("top", "-n", "2", "--json")
        check(p.returncode == 0 and
              [r["identity"] for r in json.loads(p.stdout)] == order[:2],
              "top -n 2 keeps the two riskiest: " + p.stdout[:300])
        p = baseline("top")
        rows = [l.split() for l in p.stdout.splitlines()[1:-1]]
        check(p.returncode == 0 and [r[1] for r in rows] == order and
              [r[0] for r in rows] == ["1", "2", "3"] and
              all(r[-1] == "secret_exposed" for r in rows),
              "human top is a table in rank order:\n" + p.stdout)

        # --- export -> FLUSHALL -> import --with-offsets ----------------
        before = {i: show(i) for i in truth}
        before_offsets = {i: offsets(i) for i in truth}
        check(all(before.values()), "show works for every identity")
        dump = os.path.join(tmp, "export.jsonl")
        p = baseline("export", "-o", dump)
        check(p.returncode == 0, "export exit 0: " + p.stderr)
        with open(dump) as fp:
            lines = [json.loads(l) for l in fp]
        check(sorted(l["identity"] for l in lines) == sorted(truth),
              "export has one line per identity (%d)" % len(lines))
        for l in lines:
            ident = l["identity"]
            blob = base64.b64decode(l["baseline"], validate=True)
            check(blob == base64.b64decode(
                      l["baseline"]) and len(blob) > 0 and
                  l["generation"] >= 1 and
                  {"o:" + k: str(v) for k, v in l["offsets"].items()} ==
                  before_offsets[ident] and
                  l["summary"]["events"] == before[ident]["events"],
                  "export line of %s is complete: %s" % (
                      ident, json.dumps(l)[:300]))
        p = baseline("export", order[0], ID + "nobody")
        check(p.returncode == 1 and "nobody" in p.stderr and
              [json.loads(l)["identity"] for l in p.stdout.splitlines()] ==
              [order[0]],
              "export of named identities: the known one written, the "
              "unknown one named, exit 1: " + p.stderr)
        stop(s1)

        redis.cli("FLUSHALL")
        check(show(order[0]) is None, "FLUSHALL emptied Redis")
        with open(dump) as fp:
            p = baseline("import", "--with-offsets", stdin=fp.read())
        check(p.returncode == 0 and "%d identities imported" % len(truth)
              in p.stderr, "import --with-offsets from stdin: " + p.stderr)
        after = {i: show(i) for i in truth}
        diff = [i for i in truth if after[i] != before[i]]
        check(not diff, "show --json identical after export/FLUSHALL/"
              "import for every identity; differ: %s" % diff[:3])
        check({i: offsets(i) for i in truth} == before_offsets,
              "offsets restored by --with-offsets")
        raw = redis.cli("GET", "mg:{%s}:risk" % order[0]).strip()
        check(raw and json.loads(raw)["risk"] > 50,
              "import stored the risk of %s: %s" % (order[0], raw))
        p = baseline("top", "--json")
        check(p.returncode == 0 and
              [r["identity"] for r in json.loads(p.stdout)] == order,
              "top ranks the imported risk the same")

        # A scorer in a new group reads every topic from the start: every
        # event is recognised by its offset, none applied twice.
        s2 = start_scorer("g2", "--idle-exit", "3s")
        s2.wait(timeout=60)
        s2.pump.join(timeout=10)
        summary = "".join(l for l in s2.lines if "consumed" in l)
        m = re.search(r"consumed (\d+), applied (\d+), replayed (\d+)",
                      summary)
        check(s2.returncode == 0 and m and m.group(2) == "0" and
              int(m.group(3)) == len(events) and
              int(m.group(1)) == len(events),
              "re-scoring the topics after import applies nothing: " +
              summary.strip())
        check({i: total(show(i)) for i in truth} == truth,
              "event counts unchanged after re-scoring")

        # --- import without --with-offsets keeps the target's ----------
        scratch = ID + "scratch"
        line = dict(lines[0], identity=scratch,
                    offsets={"mg.auth:0": 5})
        redis.cli("HSET", "mg:{%s}:bl" % scratch, "o:mg.auth:0", "77",
                  "o:mg.usage:1", "3", "g", "4")
        p = baseline("import", stdin=json.dumps(line) + "\n")
        check(p.returncode == 0 and offsets(scratch) ==
              {"o:mg.auth:0": "77", "o:mg.usage:1": "3"} and
              hgetall(scratch).get("g") == "5",
              "import without --with-offsets keeps the offsets, bumps g: %s"
              % hgetall(scratch).keys())
        p = baseline("import", "--with-offsets",
                     stdin=json.dumps(line) + "\n")
        check(p.returncode == 0 and offsets(scratch) == {"o:mg.auth:0": "5"}
              and hgetall(scratch).get("g") == "6",
              "import --with-offsets makes the offsets exactly the line's: "
              "%s" % offsets(scratch))
        redis.cli("DEL", "mg:{%s}:bl" % scratch, "mg:{%s}:risk" % scratch)

        # --- reset with a scorer holding the identity -------------------
        target = order[0]
        s3 = start_scorer("g1")
        wait_assigned(s3)
        produce([auth(target, FUTURE + 60000, 100)] +
                history(DECAYED, PAST, 3) +
                [sig(DECAYED, PAST + 10000, "secret_exposed", 95)] +
                history(QUARANTINED, PAST, 3) +
                [sig(QUARANTINED, PAST + 10000, "quarantine", 40)])
        wait_counts({target: truth[target] + 1, DECAYED: 7,
                     QUARANTINED: 7})
        kept = offsets(target)
        gen = int(hgetall(target)["g"])
        sub = Subscriber(redis.port, "mg:risk")
        p = baseline("reset", target)
        check(p.returncode == 0 and target in p.stdout and
              "deleted" in p.stdout and "%d kept" % len(kept) in p.stdout,
              "reset reports what it did:\n" + p.stdout + p.stderr)
        m = sub.wait_for(lambda m: m.get("identity") == target)
        check(m is not None and m["risk"] == 0 and m["level"] == "low" and
              m["reasons"] == [] and abs(m["updated"] - time.time() * 1000)
              < 60000, "subscriber saw the zero risk: %s" % m)
        doc = show(target)
        check(doc is not None and total(doc) == 0 and doc["risk"] == 0,
              "after reset: zero events, risk 0: %s" % (
                  (doc and (doc["events"], doc["risk"])),))
        h = hgetall(target)
        check(offsets(target) == kept and "b" not in h and
              int(h.get("g", 0)) == gen + 1,
              "reset kept the offsets, deleted the blob, bumped g: %s" % h)
        check(redis.cli("EXISTS", "mg:{%s}:risk" % target).strip() == "0",
              "reset deleted the risk key")
        produce([auth(target, FUTURE + 120000, 101)])
        wait_counts({target: 1})
        time.sleep(0.5)
        check(total(show(target)) == 1,
              "the running scorer reloaded the reset baseline (count 1)")

        # Decay: old-leak's 57 points are 12 h old (about 14 now) and rank
        # below risky-c's 18; old-quarantine's 40 do not decay.
        p = baseline("top", "--json")
        ranked = json.loads(p.stdout) if p.returncode == 0 else []
        want = [QUARANTINED, order[1], order[2], DECAYED]
        check([r["identity"] for r in ranked] == want,
              "top by risk now after reset and with old signals: %s" %
              [(r["identity"], r["risk_now"], r["risk"]) for r in ranked])
        for r in ranked:
            if r["identity"] == DECAYED:
                check(abs(r["risk_now"] - r["risk"] / 4) < 0.5 and
                      r["level"] == "low",
                      "old-leak decayed two half-lives: %s" % r)
        p = baseline("reset", ID + "nobody")
        check(p.returncode == 1 and ID + "nobody" in p.stderr,
              "reset of an unknown identity: exit 1 naming it: " + p.stderr)
        stop(s3)

        # --- import with bad lines ---------------------------------------
        good1 = dict(lines[0], identity=ID + "imported-1")
        good2 = dict(lines[1], identity=ID + "imported-2")
        bad_blob = dict(lines[2], identity=ID + "imported-bad")
        b = bytearray(base64.b64decode(bad_blob["baseline"]))
        b[len(b) // 2] ^= 0x40
        bad_blob["baseline"] = base64.b64encode(bytes(b)).decode()
        path = os.path.join(tmp, "bad.jsonl")
        with open(path, "w") as fp:
            fp.write(json.dumps(good1) + "\n")
            fp.write(json.dumps(bad_blob) + "\n")
            fp.write('{"identity": "x", "baseline": \n')
            fp.write(json.dumps(dict(good2, baseline="AB*D")) + "\n")
            fp.write(json.dumps(good2) + "\n")
        p = baseline("import", path)
        check(p.returncode == 1 and re.search(r"line 2: .*imported-bad.*"
                                              r"baseline", p.stderr) and
              "line 3: not JSON" in p.stderr and
              re.search(r"line 4: .*imported-2: baseline: invalid base64 "
                        r"character at offset 2", p.stderr) and
              "2 identities imported" in p.stderr,
              "import reports the bad lines by number: " + p.stderr)
        check(show(ID + "imported-1") is not None and
              show(ID + "imported-2") is not None and
              show(ID + "imported-bad") is None,
              "the good lines were imported, the corrupt one not")
    finally:
        if sub:
            sub.close()
        for p in scorers:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.terminate()
        broker.wait(timeout=30)
        redis.stop()

    return verdict("test_baseline_e2e")


if __name__ == "__main__":
    sys.exit(main())
