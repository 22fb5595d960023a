#!/usr/bin/env python3
"""End-to-end scoring, effectively once, with crashes.

A real redis-server (append-only file, fsync on every write, so a kill -9
of Redis loses nothing it acknowledged) and `mintgate broker` on loopback.
The event stream is produced in chunks while `mintgate score` runs; the
scorer is killed with SIGKILL at random moments several times and
restarted, and Redis itself is killed and restarted mid-stream. At the end
the per-identity event counts stored with each baseline (`mintgate baseline
show --json`, events.auth / events.usage / events.signal) must equal the
ground truth exactly: nothing lost, nothing counted twice. Also checks that
risk is stored and published for identities that received a compromise
signal.

Usage: test_score_e2e.py /path/to/mintgate
"""
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

from mgtest import Redis, check, spawn, verdict, wait_line

MINTGATE = sys.argv[1]
N_IDS = 120
N_EVENTS = int(os.environ.get("MG_SCORE_E2E_EVENTS", "24000"))
CHUNKS = 6
RNG = random.Random(int(os.environ.get("MG_SCORE_E2E_SEED", "7")))






def gen_events(n):
    now = int(time.time() * 1000) - 6 * 3600 * 1000
    ids = ["spiffe://corp/e2e/sa-%d" % i for i in range(N_IDS)]
    out = []
    for i in range(n):
        ident = ids[RNG.randrange(N_IDS)]
        ts = now + i * 500  # in order: nothing is late
        r = RNG.random()
        if r < 0.5:
            ev = {"type": "auth", "event_id": "a%d" % i, "ts": ts,
                  "identity": ident, "client_id": "c%d" % RNG.randrange(3),
                  "source_ip": "203.0.113.%d" % RNG.randrange(4),
                  "auth_method": "jwt_svid",
                  "grant_type": "client_credentials",
                  "scopes": ["deploy:write"], "outcome": "success",
                  "token_id": "t%d" % i}
        elif r < 0.98:
            ev = {"type": "usage", "event_id": "u%d" % i, "ts": ts,
                  "identity": ident, "resource": "api://deploy",
                  "action": "POST /releases", "scope": "deploy:write",
                  "source_ip": "203.0.113.1", "status": 201, "bytes": 100}
        else:
            ev = {"type": "signal", "event_id": "s%d" % i, "ts": ts,
                  "identity": ident, "kind": "secret_exposed",
                  "severity": 95, "source": "scanner", "detail": "leak"}
        out.append(ev)
    return out


def signal_event(ident, n):
    return {"type": "signal", "event_id": "reload-%s-%d" % (ident, n),
            "ts": int(time.time() * 1000), "identity": ident,
            "kind": "secret_exposed", "severity": 100, "source": "scanner",
            "detail": "reload test"}


def wait_risk(redis, ident, want):
    """Risk of ident once it is stored, or None after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        raw = redis.cli("GET", "mg:{%s}:risk" % ident).strip()
        if raw and abs(json.loads(raw)["risk"] - want) < 1.0:
            return json.loads(raw)["risk"]
        time.sleep(0.1)
    raw = redis.cli("GET", "mg:{%s}:risk" % ident).strip()
    return json.loads(raw)["risk"] if raw else None


def check_reload(tmp, redis, start_scorer, produce):
    """SIGHUP reloads the scoring settings of a running scorer: the new
    weight applies to the next events, baselines are kept, a key that needs
    a restart is reported, and a broken file changes nothing."""
    conf = os.path.join(tmp, "reload.yaml")
    with open(conf, "w") as fp:
        fp.write("scoring:\n  signals:\n    secret_exposed:\n"
                 "      weight: 10\n")
    p = start_scorer("--config", conf, "--group", "reload")
    try:
        check(wait_line(p, "assigned"),
              "reload scorer got partitions")
        produce([signal_event("spiffe://reload/a", 1)])
        got = wait_risk(redis, "spiffe://reload/a", 10)
        check(got is not None and abs(got - 10) < 1,
              "weight 10 before the reload: risk %s" % got)
        with open(conf, "w") as fp:
            fp.write("scoring:\n  signals:\n    secret_exposed:\n"
                     "      weight: 50\nworker:\n"
                     "  cache_identities: 5000\n")
        p.send_signal(signal.SIGHUP)
        check(wait_line(p, "configuration reloaded"),
              "scorer logs the reload")
        check(any("scoring.signals.secret_exposed.weight changed" in l
                  for l in p.lines), "the changed weight is named")
        check(any("worker.cache_identities changed but needs a restart" in l
                  for l in p.lines), "a fixed key is reported as such")
        produce([signal_event("spiffe://reload/b", 1),
                 signal_event("spiffe://reload/a", 2)])
        got = wait_risk(redis, "spiffe://reload/b", 50)
        check(got is not None and abs(got - 50) < 1,
              "weight 50 after the reload: risk %s" % got)
        # The baseline of a was kept: its first contribution still counts.
        got = wait_risk(redis, "spiffe://reload/a", 60)
        check(got is not None and abs(got - 60) < 1,
              "state kept across the reload: risk of a %s (want ~60)" % got)
        with open(conf, "w") as fp:
            fp.write("scoring:\n  signals: [broken\n")
        p.send_signal(signal.SIGHUP)
        check(wait_line(p, "reload failed"),
              "a broken file is reported")
        produce([signal_event("spiffe://reload/c", 1)])
        got = wait_risk(redis, "spiffe://reload/c", 50)
        check(got is not None and abs(got - 50) < 1,
              "the running settings stay after a broken reload: %s" % got)
        check(p.poll() is None, "scorer still running after a bad reload")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    check(p.returncode == 0, "reload scorer exits 0 on SIGTERM")
    return None


def main():
    tmp = tempfile.mkdtemp(prefix="mg-score-e2e-")
    redis = Redis(tmp)
    redis.start()
    broker = subprocess.Popen([MINTGATE, "broker", "--port", "0",
                               "--partitions", "4"], stdout=subprocess.PIPE,
                              text=True)
    scorer = None
    common = []
    try:
        bootstrap = broker.stdout.readline().strip().split("=", 1)[1]
        common = ["--brokers", bootstrap, "--redis",
                  "127.0.0.1:%d" % redis.port,
                  # A killed worker's partitions move after 6 s (Kafka's
                  # minimum session), not 10.
                  "--set", "kafka.session.timeout.ms=6000",
                  "--set", "ingest.retry_backoff=200ms",
                  "--log-level", "info"]
        events = gen_events(N_EVENTS)
        truth = collections.defaultdict(collections.Counter)
        for ev in events:
            truth[ev["identity"]][ev["type"]] += 1

        def start_scorer(*extra):
            return spawn([MINTGATE, "score", "--group", "e2e"] + common +
                         list(extra))

        def wait_assigned(p):
            return check(wait_line(p, "assigned", 60),
                         "scorer got partitions within 60 s")

        def produce(chunk):
            path = os.path.join(tmp, "chunk.jsonl")
            with open(path, "w") as fp:
                for ev in chunk:
                    fp.write(json.dumps(ev) + "\n")
            p = subprocess.run([MINTGATE, "produce", "--brokers", bootstrap,
                                path], capture_output=True, text=True,
                               timeout=120)
            check(p.returncode == 0, "produce chunk: " + p.stderr[-300:])

        step = N_EVENTS // CHUNKS
        kills = 0
        scorer = start_scorer()
        for c in range(CHUNKS):
            wait_assigned(scorer)
            produce(events[c * step:(c + 1) * step if c < CHUNKS - 1
                           else N_EVENTS])
            if c == CHUNKS // 2:
                # Redis dies mid-stream and comes back: the scorer pauses,
                # commits nothing, and resumes by itself.
                time.sleep(RNG.uniform(0.0, 0.2))
                redis.kill()
                print("redis killed", flush=True)
                time.sleep(2.0)
                redis.start()
                print("redis restarted", flush=True)
                time.sleep(3.0)
            # Kill the scorer while it works on the chunk, restart it.
            time.sleep(RNG.uniform(0.0, 0.3))
            scorer.send_signal(signal.SIGKILL)
            scorer.wait()
            kills += 1
            print("scorer killed (%d)" % kills, flush=True)
            scorer = start_scorer() if c < CHUNKS - 1 else None

        # A last worker finishes the stream and stops once idle.
        last = start_scorer("--idle-exit", "5s")
        last.wait(timeout=300)
        last.pump.join(timeout=10)
        print("".join(last.lines[-3:]).strip(), flush=True)
        check(last.returncode == 0, "last scorer exits 0")

        mismatches = 0
        for ident, counts in sorted(truth.items()):
            p = subprocess.run([MINTGATE, "baseline", "show", ident, "--json",
                                "--redis", "127.0.0.1:%d" % redis.port],
                               capture_output=True, text=True, timeout=30)
            if not check(p.returncode == 0, "baseline show %s: %s" % (
                    ident, p.stderr.strip())):
                mismatches += 1
                continue
            got = json.loads(p.stdout)["events"]
            want = {t: counts.get(t, 0) for t in ("auth", "usage", "signal")}
            if got != want:
                mismatches += 1
                check(False, "%s: stored %s, truth %s" % (ident, got, want))
        check(mismatches == 0, "all %d identities exact after %d kills and "
              "a Redis restart" % (len(truth), kills))

        # Risk is stored for direct reads and reflects the compromise.
        leaked = [i for i, c in truth.items() if c.get("signal")]
        check(bool(leaked), "some identities got a secret_exposed signal")
        for ident in leaked[:5]:
            raw = redis.cli("GET", "mg:{%s}:risk" % ident).strip()
            check(bool(raw), "risk key of %s" % ident)
            if raw:
                risk = json.loads(raw)
                check(risk["identity"] == ident and risk["risk"] > 0 and
                      any(r["signal"] == "secret_exposed"
                          for r in risk["reasons"]),
                      "risk of %s names secret_exposed: %s" % (ident, raw))

        scorer = check_reload(tmp, redis, start_scorer, produce)
    finally:
        if scorer:
            scorer.kill()
        broker.terminate()
        broker.wait(timeout=30)
        if redis.proc:
            redis.proc.kill()
            redis.proc.wait()

    return verdict("test_score_e2e")


if __name__ == "__main__":
    sys.exit(main())
