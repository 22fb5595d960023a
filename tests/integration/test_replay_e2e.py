#!/usr/bin/env python3
"""Replay decides as the live pipeline does, on the same events.

The live side: a real redis-server, `mintgate broker`, `mintgate produce`
of a two-day history of 40 identities (normal traffic, and some identities
with a leaked secret, a new network, a failure burst, scopes they never
had, a deep token exchange), `mintgate score` until idle, then `mintgate
serve` answering one request per identity (`mintgate query`).

The offline side: `mintgate replay` of the same JSON lines with the same
policy, answering the same requests after the replay (--requests, --now
wall). Every answer must be the same: decision, scopes, TTL, risk, level,
reasons and policy path (decision_id and signature aside, which are per
decision). The requests must reach at least three different outcomes, so
agreement is not agreement on "allow".

Also: --decisions writes one response per issuance, --compare lists the
decisions a stricter policy changes, and bad input lines are named with
their line numbers while the good ones are still replayed.

The Kafka source: `mintgate replay --brokers` over the topics the events
were produced to (earliest..latest) decides every issuance as the replay of
the JSON lines does (per identity, in the same order), in event-time order
across partitions. The history is produced in two runs with a pause
between, so a --from/--to time (of the Kafka message timestamps) at the
pause splits it exactly. Damaged messages (produce --corrupt-rate) are
named by topic, partition and offset, exactly those produce damaged.

Usage: test_replay_e2e.py /path/to/mintgate
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

from mgtest import Redis, check, verdict

MINTGATE = sys.argv[1]
N_IDS = 40
RNG = random.Random(11)

POLICY = """version: 1
defaults:
  thresholds: {narrow: 20, step_up: 50, deny: 80}
  max_ttl: 1h
  degraded: fail_closed
  grant_types: [client_credentials, token_exchange, jwt_bearer]
policies:
  - name: everything
    client: "*"
    resource: "*"
    allowed_scopes: ["x:*", "admin:*"]
    high_impact_scopes: ["x:write", "admin:*"]
    ttl_by_risk:
      - {below: 10, max_ttl: 1h}
      - {below: 30, max_ttl: 20m}
      - {below: 60, max_ttl: 5m}
    max_exchange_depth: 2
"""

STRICT = POLICY.replace("narrow: 20, step_up: 50, deny: 80",
                        "narrow: 5, step_up: 30, deny: 60")


def ident(i):
    return "spiffe://corp/replay/sa-%d" % i


def gen_events():
    """Two days of history ending a few minutes ago, in time order."""
    end = int(time.time() * 1000) - 5 * 60 * 1000
    start = end - 2 * 86400 * 1000
    evs = []
    n = 0

    def add(ev):
        nonlocal n
        n += 1
        ev["event_id"] = "e%d" % n
        evs.append(ev)

    for i in range(N_IDS):
        t = start + RNG.randrange(600000)
        tokens = []
        while t < end - 3600 * 1000:
            tok = "t-%d-%d" % (i, len(tokens))
            add({"type": "auth", "ts": t, "identity": ident(i),
                 "client_id": "svc-%d" % (i % 5),
                 "source_ip": "10.%d.0.%d" % (i, RNG.randrange(3)),
                 "auth_method": "jwt_svid",
                 "grant_type": "client_credentials", "audience": "api://x",
                 "scopes": ["x:read", "x:write"], "outcome": "success",
                 "token_id": tok})
            tokens.append(tok)
            add({"type": "usage", "ts": t + 1000, "identity": ident(i),
                 "token_id": tok, "resource": "api://x", "action": "GET /",
                 "scope": "x:read", "source_ip": "10.%d.0.1" % i,
                 "status": 200, "bytes": 500})
            t += RNG.randrange(300000, 1500000)
        # The last hour: what makes some identities risky.
        t = end - 3000 * 1000
        kind = i % 8
        if kind == 1:
            add({"type": "signal", "ts": t, "identity": ident(i),
                 "kind": "secret_exposed", "severity": 60 + i,
                 "source": "scanner", "detail": "key in a public repo"})
        elif kind == 2:
            for k in range(3):
                add({"type": "auth", "ts": t + k * 1000,
                     "identity": ident(i), "client_id": "svc-%d" % (i % 5),
                     "source_ip": "198.51.%d.%d" % (100 + k, i),
                     "auth_method": "client_secret",
                     "grant_type": "client_credentials",
                     "audience": "api://x", "scopes": ["x:read"],
                     "outcome": "success", "token_id": "n-%d-%d" % (i, k)})
        elif kind == 3:
            for k in range(12):
                add({"type": "auth", "ts": t + k * 500, "identity": ident(i),
                     "client_id": "svc-%d" % (i % 5),
                     "source_ip": "10.%d.0.1" % i,
                     "auth_method": "client_secret",
                     "grant_type": "client_credentials",
                     "audience": "api://x", "scopes": ["x:read"],
                     "outcome": "failure", "failure_reason": "bad secret"})
        elif kind == 4:
            add({"type": "auth", "ts": t, "identity": ident(i),
                 "client_id": "svc-%d" % (i % 5),
                 "source_ip": "10.%d.0.1" % i, "auth_method": "jwt_svid",
                 "grant_type": "client_credentials", "audience": "api://x",
                 "scopes": ["admin:all", "x:read"], "outcome": "success",
                 "token_id": "s-%d" % i})
        elif kind == 5:
            parent = tokens[-1]
            for k in range(6):
                tok = "c-%d-%d" % (i, k)
                add({"type": "auth", "ts": t + k * 1000,
                     "identity": ident(i), "client_id": "svc-%d" % (i % 5),
                     "source_ip": "10.%d.0.1" % i, "auth_method": "jwt_svid",
                     "grant_type": "token_exchange", "audience": "api://x",
                     "scopes": ["x:read"], "outcome": "success",
                     "token_id": tok, "parent_token_id": parent})
                parent = tok
    evs.sort(key=lambda e: (e["ts"], e["event_id"]))
    return evs


def requests():
    out = []
    for i in range(N_IDS):
        out.append({"id": "q%d" % i, "identity": ident(i),
                    "client_id": "svc-%d" % (i % 5), "resource": "api://x",
                    "scopes": ["x:read", "x:write"],
                    "grant_type": "client_credentials", "ttl": 3600})
    # An identity no event ever named: risk 0, known as such.
    out.append({"id": "q-new", "identity": "spiffe://corp/replay/never",
                "client_id": "svc-0", "resource": "api://x",
                "scopes": ["x:read"], "grant_type": "client_credentials",
                "ttl": 600})
    return out


def comparable(line):
    r = json.loads(line)
    r.pop("decision_id", None)
    r.pop("signature", None)
    r.pop("degraded", None)
    return r


def run(args, **kw):
    return subprocess.run([MINTGATE] + args, capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), **kw)


def main():
    tmp = tempfile.mkdtemp(prefix="mg-replay-e2e-")
    events = os.path.join(tmp, "events.jsonl")
    evs = gen_events()
    with open(events, "w") as fp:
        for ev in evs:
            fp.write(json.dumps(ev) + "\n")
    reqs = os.path.join(tmp, "requests.jsonl")
    with open(reqs, "w") as fp:
        for r in requests():
            fp.write(json.dumps(r) + "\n")
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as fp:
        fp.write(POLICY)
    strict = os.path.join(tmp, "strict.yaml")
    with open(strict, "w") as fp:
        fp.write(STRICT)
    key = os.path.join(tmp, "hmac.key")
    with open(key, "wb") as fp:
        fp.write(os.urandom(32))
    os.chmod(key, 0o600)

    redis = Redis(tmp)
    redis.start()
    broker = subprocess.Popen([MINTGATE, "broker", "--port", "0",
                               "--partitions", "4"],
                              stdout=subprocess.PIPE, text=True)
    serve = None
    try:
        bootstrap = broker.stdout.readline().strip().split("=", 1)[1]
        common = ["--brokers", bootstrap, "--redis",
                  "127.0.0.1:%d" % redis.port, "--log-level",
                  "warn"]
        # Two runs with a pause: the Kafka timestamps of the first half
        # are all before split_ms, those of the second all after.
        half = len(evs) // 2
        halves = [os.path.join(tmp, "events-1.jsonl"),
                  os.path.join(tmp, "events-2.jsonl")]
        for path, part in zip(halves, (evs[:half], evs[half:])):
            with open(path, "w") as fp:
                for ev in part:
                    fp.write(json.dumps(ev) + "\n")
        p = run(["produce", "--brokers", bootstrap, halves[0]])
        check(p.returncode == 0, "produce: " + p.stderr[-300:])
        time.sleep(0.3)
        split_ms = int(time.time() * 1000)
        time.sleep(0.3)
        p = run(["produce", "--brokers", bootstrap, halves[1]])
        check(p.returncode == 0, "produce: " + p.stderr[-300:])
        # The whole history is a backlog on three topics: ingest merges the
        # partitions by event time, but by default only to within
        # ingest.align_window (10 min), which may reorder one identity's
        # auth and usage events seconds apart. Exact equality with replay
        # (which reads them in file order) needs a strict merge.
        p = run(["score", "--group", "replay-e2e", "--idle-exit", "4s",
                 "--set", "ingest.align_window=1ms"] + common, timeout=300)
        check(p.returncode == 0, "score: " + p.stderr[-300:])
        serve = subprocess.Popen(
            [MINTGATE, "serve", "--listen", "127.0.0.1:0", "--policy",
             policy, "--set", "audit.log=" + os.path.join(tmp, "audit.log"),
             "--set", "audit.key_file=" + key] + common,
            stdout=subprocess.PIPE, text=True)
        addr = serve.stdout.readline().split()[0].split("=", 1)[1]
        p = run(["query", "--addr", addr, reqs])
        check(p.returncode == 0, "query: " + p.stderr[-300:])
        live = [comparable(l) for l in p.stdout.splitlines() if l.strip()]

        p = run(["replay", events, "--policy", policy, "--requests", reqs,
                 "--now", "wall", "--decisions",
                 os.path.join(tmp, "decisions.jsonl")])
        check(p.returncode == 0, "replay: " + p.stderr[-500:])
        offline = [comparable(l) for l in p.stdout.splitlines()
                   if l.strip()]
        check(len(live) == len(requests()) and len(offline) == len(live),
              "one answer per request: live %d, replay %d" % (
                  len(live), len(offline)))
        same = 0
        for a, b in zip(live, offline):
            if check(a == b, "live and replay agree on %s:\n  live   %s\n"
                     "  replay %s" % (a.get("id"), a, b)):
                same += 1
        outcomes = {a["decision"] for a in live}
        print("live == replay for %d of %d requests; outcomes %s" % (
            same, len(live), sorted(outcomes)), flush=True)
        check(len(outcomes) >= 3, "the requests reach at least three "
              "outcomes: %s" % sorted(outcomes))
        check(any(a["risk"] > 0 for a in live), "some risk is non-zero")

        # --decisions: one response per successful authentication.
        with open(os.path.join(tmp, "decisions.jsonl")) as fp:
            dec = [json.loads(l) for l in fp]
        issuances = [e for e in evs if e["type"] == "auth" and
                     e["outcome"] == "success"]
        check(len(dec) == len(issuances) and
              [d["id"] for d in dec] == [e["event_id"] for e in issuances],
              "--decisions has every issuance, in order (%d of %d)" % (
                  len(dec), len(issuances)))

        # The same history read back from the topics decides the same.
        kafka = ["--brokers", bootstrap, "--log-level", "warn"]
        p = run(["replay", "--policy", policy, "--decisions",
                 os.path.join(tmp, "decisions-kafka.jsonl"), "--requests",
                 reqs, "--now", "wall"] + kafka)
        check(p.returncode == 0 and "replayed %d events" % len(evs) in
              p.stderr, "replay --brokers replays every event: " +
              p.stderr[-500:])
        from_kafka = [comparable(l) for l in p.stdout.splitlines()
                      if l.strip()]
        check(from_kafka == offline, "replay --brokers answers the requests "
              "as the replay of the file: %s" % [
                  (a, b) for a, b in zip(from_kafka, offline) if a != b][:2])
        with open(os.path.join(tmp, "decisions-kafka.jsonl")) as fp:
            dec_kafka = [json.loads(l) for l in fp]
        by_id = {e["event_id"]: e for e in evs}

        def per_identity(lines):
            out = {}
            for d in lines:
                d = dict(d)
                d.pop("decision_id", None)
                out.setdefault(by_id[d["id"]]["identity"], []).append(d)
            return out
        check(len(dec_kafka) == len(dec) and
              per_identity(dec_kafka) == per_identity(dec),
              "the topics and the file give the same decisions, in the "
              "same order per identity (%d and %d)" % (len(dec_kafka),
                                                        len(dec)))
        ts = [by_id[d["id"]]["ts"] for d in dec_kafka]
        check(ts == sorted(ts), "the topics are replayed in event time "
              "across partitions")

        # A time window of the Kafka timestamps: the pause splits it.
        for window, want in ((["--to", str(split_ms)], half),
                             (["--from", str(split_ms)], len(evs) - half),
                             (["--from", str(split_ms), "--to",
                               str(split_ms)], 0)):
            p = run(["replay", "--policy", policy] + window + kafka)
            check(p.returncode == 0 and "replayed %d events" % want in
                  p.stdout, "replay %s replays %d events: %s" % (
                      " ".join(window), want, p.stdout[:200] +
                      p.stderr[-300:]))
        p = run(["replay", "--policy", policy, "--from", "@5", "--to", "@2"]
                + kafka)
        check(p.returncode == 2 and "--from @5 is after --to @2" in
              p.stderr, "an inverted range is refused: " + p.stderr[-300:])
        p = run(["replay", "--policy", policy, "--from", "yesterday"] +
                kafka)
        check(p.returncode == 2 and "--from: 'yesterday'" in p.stderr,
              "a bad bound is named: " + p.stderr[-300:])
        p = run(["replay", "--policy", policy, events, "--from", "@1"])
        check(p.returncode == 2 and "--brokers" in p.stderr,
              "--from without brokers is refused: " + p.stderr[-300:])
        p = run(["replay", "--policy", policy] + kafka +
                ["--set", "ingest.topics.signals=mg.nothere"])
        check(p.returncode == 1 and "'mg.nothere'" in p.stderr and
              "ingest.topics.signals" in p.stderr,
              "a missing topic is named: " + p.stderr[-300:])

        # Damaged messages are named by origin; the others are replayed.
        corrupt_log = os.path.join(tmp, "corrupt.tsv")
        bad_topic = ["--set", "ingest.topics.auth=mg.damaged",
                     "--set", "ingest.topics.usage=mg.damaged",
                     "--set", "ingest.topics.signals=mg.damaged"]
        p = run(["produce", "--brokers", bootstrap, halves[0],
                 "--corrupt-rate", "0.1", "--corrupt-log", corrupt_log] +
                bad_topic)
        with open(corrupt_log) as fp:
            damaged = {tuple(l.split("\t")[:3]) for l in fp.readlines()[1:]}
        check(p.returncode == 0 and len(damaged) > 5,
              "produce damages some messages: " + p.stderr[-300:])
        p = run(["replay", "--policy", policy, "--brokers", bootstrap,
                 "--log-level", "warn"] + bad_topic)
        named = set(re.findall(r"^mintgate replay: (mg\.damaged) \[(\d+)\] "
                               r"offset (\d+): ", p.stderr, re.M))
        check(p.returncode == 1 and named == damaged and
              "replayed %d events" % (half - len(damaged)) in p.stdout and
              "%d bad messages skipped" % len(damaged) in p.stderr,
              "damaged messages named by origin, the rest replayed "
              "(%d damaged, %d named): %s" % (
                  len(damaged), len(named), p.stdout[:200] +
                  p.stderr[-400:]))

        # --compare: a stricter policy changes decisions, listed by kind.
        p = run(["replay", events, "--policy", policy, "--compare", strict])
        m = re.search(r"(\d+) of (\d+) issuances changed outcome", p.stdout)
        rows = re.findall(r"^  (\w+)\s+-> (\w+)\s+(\d+)$", p.stdout, re.M)
        check(p.returncode == 0 and m and int(m.group(1)) > 0 and
              int(m.group(1)) == sum(int(r[2]) for r in rows) and
              int(m.group(2)) == len(issuances),
              "--compare counts the changed decisions by transition: " +
              p.stdout[-800:] + p.stderr[-300:])
        p = run(["replay", events, "--policy", policy, "--compare", policy])
        check(p.returncode == 0 and " 0 of %d issuances changed" % len(
            issuances) in p.stdout, "--compare with itself changes nothing")

        # Bad lines are named and skipped; the rest is replayed.
        bad = os.path.join(tmp, "bad.jsonl")
        with open(bad, "w") as fp:
            fp.write(json.dumps(evs[0]) + "\n")
            fp.write("{not json\n")
            fp.write(json.dumps(dict(evs[1], identity="")) + "\n")
            fp.write(json.dumps(evs[2]) + "\n")
        p = run(["replay", bad, "--policy", policy])
        check(p.returncode == 1 and "bad.jsonl:2:" in p.stderr and
              "bad.jsonl:3:" in p.stderr and "identity" in p.stderr and
              "replayed 2 events" in p.stdout,
              "bad lines named, good ones replayed: %s / %s" % (
                  p.stdout.strip(), p.stderr.strip()))
        p = run(["replay", events, "--policy", policy, "--labels",
                 os.path.join(tmp, "missing.jsonl")])
        check(p.returncode == 2 and "missing.jsonl" in p.stderr,
              "a missing labels file is named: " + p.stderr.strip())
        p = run(["replay", "--request-ttl", "0s", events])
        check(p.returncode == 2 and "--request-ttl" in p.stderr,
              "a bad flag is named: " + p.stderr.strip())
    finally:
        if serve:
            serve.terminate()
            serve.wait(timeout=30)
        broker.terminate()
        broker.wait(timeout=30)
        redis.stop()

    return verdict("test_replay_e2e")


if __name__ == "__main__":
    sys.exit(main())
