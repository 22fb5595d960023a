#!/usr/bin/env python3
"""End-to-end ingest: `mintgate broker`, `mintgate produce`, `mintgate ingest`
and kcat, as separate processes over real TCP on loopback.

Accounts for every message of a 100,000-event stream with about 1% damaged
on purpose (truncated, wrong magic byte, unknown fingerprint, unknown schema
id, invalid enum, empty identity, oversize field): every good event must be
decoded exactly once, every damaged one must be in mg.dlq with the reason
that fits its damage and its origin (topic, partition, offset). Also: v1
auth events decode under the v2 reader with defaults, the Confluent framing
decodes, bad JSON lines are reported with their line numbers, committed
offsets are honoured by a restarted consumer, and kcat sees the topics.

Usage: test_ingest_e2e.py /path/to/mintgate
"""
import collections
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

from mgtest import check, verdict

MINTGATE = sys.argv[1]
N_EVENTS = int(os.environ.get("MG_E2E_EVENTS", "100000"))
CORRUPT_RATE = 0.01

# What each kind of damage must be dead-lettered as (mg_err_name()).
EXPECTED_REASON = {
    "truncated": {"truncated", "decode"},
    "bad_magic": {"bad_magic"},
    "unknown_fingerprint": {"unknown_schema"},
    "unknown_schema_id": {"unknown_schema"},
    "bad_enum": {"bad_enum"},
    "empty_identity": {"invalid"},
    "oversize": {"too_big"},
}




def gen_events(n, seed, prefix):
    rnd = random.Random(seed)
    kinds = ["service_account", "ci_runner", "integration", "ai_agent",
             "workload"]
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        ident = "spiffe://corp/ns%d/sa%d" % (rnd.randrange(20),
                                             rnd.randrange(500))
        ts = now - rnd.randrange(3600 * 1000)
        r = rnd.random()
        if r < 0.45:
            ev = {"type": "auth", "event_id": "%sa%d" % (prefix, i), "ts": ts,
                  "identity": ident, "identity_kind": rnd.choice(kinds),
                  "client_id": "client-%d" % rnd.randrange(50),
                  "source_ip": "203.0.113.%d" % rnd.randrange(256),
                  "user_agent": "agent/%d.%d" % (rnd.randrange(3),
                                                 rnd.randrange(10)),
                  "auth_method": rnd.choice(["client_secret", "mtls",
                                             "jwt_svid", "private_key_jwt"]),
                  "grant_type": rnd.choice(["client_credentials",
                                            "token_exchange"]),
                  "audience": "api://svc%d" % rnd.randrange(30),
                  "scopes": ["s%d:read" % rnd.randrange(9)
                             for _ in range(rnd.randrange(4))],
                  "outcome": "success" if rnd.random() < 0.95 else "failure",
                  "token_id": "t-%d" % i, "parent_token_id": None}
        elif r < 0.95:
            ev = {"type": "usage", "event_id": "%su%d" % (prefix, i),
                  "ts": ts, "identity": ident, "token_id": "t-%d" % i,
                  "resource": "api://svc%d" % rnd.randrange(30),
                  "action": "GET /v1/items/%d" % rnd.randrange(100),
                  "scope": "s%d:read" % rnd.randrange(9),
                  "source_ip": "198.51.100.%d" % rnd.randrange(256),
                  "status": rnd.choice([200, 201, 403, 404]),
                  "bytes": rnd.randrange(100000)}
        else:
            ev = {"type": "signal", "event_id": "%ss%d" % (prefix, i),
                  "ts": ts, "identity": ident,
                  "kind": rnd.choice(["secret_exposed",
                                      "credential_compromise", "quarantine",
                                      "release"]),
                  "severity": rnd.randrange(101), "source": "scanner",
                  "detail": "finding %d" % i}
        out.append(ev)
    return out


def write_jsonl(path, events):
    with open(path, "w") as fp:
        for ev in events:
            fp.write(json.dumps(ev) + "\n")


def run(args, **kw):
    t0 = time.monotonic()
    kw.setdefault("stdout", subprocess.PIPE)
    p = subprocess.run([MINTGATE] + args, stderr=subprocess.PIPE, text=True,
                       timeout=kw.pop("timeout", 300), **kw)
    print("$ mintgate %s  (exit %d, %.1fs)\n%s" % (
        " ".join(args), p.returncode, time.monotonic() - t0,
        p.stderr.strip()[-2000:]), flush=True)
    return p


def read_decoded(path):
    seen = collections.Counter()
    events = {}
    with open(path) as fp:
        for line in fp:
            rec = json.loads(line)
            ev = rec["event"]
            seen[ev["event_id"]] += 1
            events[ev["event_id"]] = rec
    return seen, events


def kcat_dlq(bootstrap):
    """Headers of every dead letter. Only the headers are printed: the
    values are damaged bytes, which may contain newlines. kcat writes
    headers as k=v,k=v; details may contain commas, so split on the known
    key prefix."""
    p = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", "mg.dlq", "-o",
                        "beginning", "-e", "-q", "-f", "%h\\n"],
                       capture_output=True, timeout=120)
    out_text = p.stdout.decode("utf-8", errors="replace")
    check(p.returncode == 0, "kcat reads mg.dlq: " +
          p.stderr.decode(errors="replace")[-500:])
    out = []
    for line in out_text.split("\n"):
        if not line.strip():
            continue
        hdrs = {}
        for part in re.split(r",(?=mg\.dlq\.)", line):
            k, _, v = part.partition("=")
            hdrs[k] = v
        out.append(hdrs)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="mg-e2e-")
    broker = subprocess.Popen([MINTGATE, "broker", "--port", "0",
                               "--partitions", "8"], stdout=subprocess.PIPE,
                              text=True)
    try:
        line = broker.stdout.readline().strip()
        check(line.startswith("bootstrap.servers="), "broker prints address")
        bootstrap = line.split("=", 1)[1]

        # kcat lists the topics of `mintgate broker`.
        p = subprocess.run(["kcat", "-b", bootstrap, "-L"],
                           capture_output=True, text=True, timeout=60)
        for t in ("mg.auth", "mg.usage", "mg.signals", "mg.dlq"):
            check('topic "%s"' % t in p.stdout, "kcat -L lists " + t)

        # 1. The main stream, single-object encoding, 1% damaged.
        events = gen_events(N_EVENTS, 1, "m")
        main_file = os.path.join(tmp, "events.jsonl")
        write_jsonl(main_file, events)
        corrupt_log = os.path.join(tmp, "corrupt.tsv")
        p = run(["produce", "--brokers", bootstrap, "--corrupt-rate",
                 str(CORRUPT_RATE), "--corrupt-seed", "42", "--corrupt-log",
                 corrupt_log, main_file])
        check(p.returncode == 0, "produce main stream exits 0")
        check("%d sent, 0 rejected, 0 failed" % N_EVENTS in p.stderr,
              "produce reports all sent")

        # 2. v1 auth writers and the Confluent framing.
        v1 = [e for e in gen_events(2000, 2, "v") if e["type"] == "auth"]
        v1_file = os.path.join(tmp, "v1.jsonl")
        write_jsonl(v1_file, v1)
        p = run(["produce", "--brokers", bootstrap, "--schema", "auth.v1",
                 v1_file])
        check(p.returncode == 0, "produce v1 exits 0")
        conf = gen_events(2000, 3, "c")
        conf_file = os.path.join(tmp, "confluent.jsonl")
        write_jsonl(conf_file, conf)
        p = run(["produce", "--brokers", bootstrap, "--confluent", conf_file])
        check(p.returncode == 0, "produce confluent exits 0")

        # 3. Bad lines: reported with their numbers, the rest still sent.
        bad_file = os.path.join(tmp, "bad.jsonl")
        good = gen_events(3, 4, "b")
        with open(bad_file, "w") as fp:
            fp.write(json.dumps(good[0]) + "\n")
            fp.write("{not json\n")
            fp.write(json.dumps(dict(good[1], identity="")) + "\n")
            fp.write(json.dumps(dict(good[1], type="bogus")) + "\n")
            fp.write(json.dumps(good[1]) + "\n")
            fp.write(json.dumps(good[2]) + "\n")
        p = run(["produce", "--brokers", bootstrap, bad_file])
        check(p.returncode == 1, "produce with bad lines exits 1")
        for n in (2, 3, 4):
            check("line %d:" % n in p.stderr, "bad line %d reported" % n)
        check("3 sent, 3 rejected" in p.stderr, "3 good lines still sent")

        # 4. Consume everything.
        decoded_file = os.path.join(tmp, "decoded.jsonl")
        with open(decoded_file, "w") as out:
            p = run(["ingest", "--brokers", bootstrap, "--group", "e2e",
                     "--print", "--idle-exit", "4s"], stdout=out)
        check(p.returncode == 0, "ingest exits 0")
        seen, dec = read_decoded(decoded_file)

        damaged = {}
        with open(corrupt_log) as fp:
            next(fp)
            for line in fp:
                topic, part, off, kind, eid = line.rstrip("\n").split("\t")
                damaged[(topic, int(part), int(off))] = (kind, eid)
        kinds = collections.Counter(k for k, _ in damaged.values())
        print("damaged on purpose:", dict(kinds), flush=True)
        check(len(kinds) == len(EXPECTED_REASON),
              "every kind of damage exercised")
        check(abs(len(damaged) - N_EVENTS * CORRUPT_RATE) <
              N_EVENTS * CORRUPT_RATE * 0.3, "about 1% damaged")

        damaged_ids = {eid for _, eid in damaged.values()}
        expected = [e["event_id"] for e in events
                    if e["event_id"] not in damaged_ids]
        expected += [e["event_id"] for e in v1 + conf]
        expected += [good[0]["event_id"], good[1]["event_id"],
                     good[2]["event_id"]]
        missing = [e for e in expected if seen[e] == 0]
        dupes = [e for e in expected if seen[e] > 1]
        extra = set(seen) - set(expected)
        check(not missing, "every good event decoded (%d missing, e.g. %s)"
              % (len(missing), missing[:3]))
        check(not dupes, "no event decoded twice (%d)" % len(dupes))
        check(not extra, "no damaged event decoded (%d, e.g. %s)"
              % (len(extra), list(extra)[:3]))

        # Decoded content matches the input.
        for src in (events[:50] + conf[:50]):
            if src["event_id"] in damaged_ids:
                continue
            got = dec[src["event_id"]]["event"]
            for k, v in src.items():
                if k == "ts":
                    continue
                check(got.get(k) == v, "field %s of %s round-trips (%r != %r)"
                      % (k, src["event_id"], got.get(k), v))
        for src in v1[:50]:
            got = dec[src["event_id"]]["event"]
            check(got["identity_kind"] == "unknown" and
                  got["user_agent"] is None and
                  got["parent_token_id"] is None and
                  got["client_id"] == src["client_id"] and
                  got["scopes"] == src["scopes"],
                  "v1 event %s decodes with v2 defaults" % src["event_id"])

        # 5. Every damaged message is in the DLQ, once, with its reason.
        dlq = kcat_dlq(bootstrap)
        print("dead letters:", len(dlq), collections.Counter(
            h.get("mg.dlq.reason") for h in dlq), flush=True)
        by_origin = collections.Counter()
        for h in dlq:
            key = (h.get("mg.dlq.topic"), int(h.get("mg.dlq.partition", -1)),
                   int(h.get("mg.dlq.offset", -1)))
            by_origin[key] += 1
            if key not in damaged:
                check(False, "unexpected dead letter %s: %s" % (key, h))
                continue
            kind = damaged[key][0]
            check(h.get("mg.dlq.reason") in EXPECTED_REASON[kind],
                  "%s dead-lettered as %s (%s)" % (
                      kind, h.get("mg.dlq.reason"), h.get("mg.dlq.error")))
            check(bool(h.get("mg.dlq.error")), "dead letter has a detail")
        check(len(dlq) == len(damaged), "DLQ holds %d of %d damaged" % (
            len(dlq), len(damaged)))
        check(all(c == 1 for c in by_origin.values()),
              "each damaged message dead-lettered once")

        # 6. Offsets were committed: the same group reads nothing again.
        p = run(["ingest", "--brokers", bootstrap, "--group", "e2e",
                 "--idle-exit", "3s"])
        check(p.returncode == 0 and "consumed 0," in p.stderr,
              "restarted consumer resumes after the committed offsets")

        # 7. Bad usage and configuration: exit 2 with a named error.
        p = run(["ingest", "--brokers", bootstrap, "--set",
                 "ingest.batch_size=0"])
        check(p.returncode == 2 and "ingest.batch_size" in p.stderr,
              "bad config value exits 2 naming the key")
        p = run(["ingest", "--set", "ingest.nope=1"])
        check(p.returncode == 2 and "ingest.nope" in p.stderr,
              "unknown config key exits 2 naming the key")
    finally:
        broker.terminate()
        try:
            rc = broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            rc = -9
        check(rc == 0, "broker exits cleanly on SIGTERM (rc %s)" % rc)

    return verdict("test_ingest_e2e")


if __name__ == "__main__":
    sys.exit(main())
