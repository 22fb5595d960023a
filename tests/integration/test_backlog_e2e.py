#!/usr/bin/env python3
"""A scorer that starts behind a backlog applies every event, none late.

The bug this guards against: `mintgate score` reads one topic per kind of
event (mg.auth, mg.usage, mg.signals) and refuses an event older than its
identity's newest by more than scoring.late_bound as late. Reading a
backlog, librdkafka fetches every partition on its own, so one topic ran
hours of event time ahead of another and one identity's auth events came
after its usage events of hours later: dead-lettered as late although
nothing was late. Ingest now aligns its partitions by event time
(ingest.align_window).

Two cases, each a history produced BEFORE the scorer starts, then `mintgate
score --idle-exit` until it is idle:
  1. two days of 30 identities, interleaved auth and usage and a few
     signals, on the default three topics;
  2. the same shape without signals, on three other topics whose signals
     topic stays empty: the empty partitions must not hold the others back
     (the run ends, and every event is applied).
In both, every identity's events.auth / events.usage / events.signal
(`mintgate baseline show --json`) must equal what was produced, and the
scorer's summary must count no late event, no dead letter, and some
partitions paused for alignment. Then the order itself: `mintgate ingest
--print` of the first backlog with a one-minute window must give every
event once, and no identity's event more than a minute behind its newest
(without alignment: hours).

Usage: test_backlog_e2e.py /path/to/mintgate
"""
import calendar
import collections
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
N_IDS = 30
RNG = random.Random(23)
# The other case's topics: created by the broker, the signals one empty.
OTHER = {"auth": "bk.auth", "usage": "bk.usage", "signals": "bk.signals"}


def gen_events(prefix, signals):
    """Two days ending a few minutes ago; per identity an authentication,
    its token used a second later, then a pause of 5-25 minutes. Returned
    in event-time order, as a producer that had been down would send
    them."""
    end = int(time.time() * 1000) - 5 * 60 * 1000
    start = end - 2 * 86400 * 1000
    evs = []
    for i in range(N_IDS):
        ident = "spiffe://corp/%s/sa-%d" % (prefix, i)
        t = start + RNG.randrange(600000)
        k = 0
        while t < end:
            tok = "%s-t-%d-%d" % (prefix, i, k)
            evs.append({"type": "auth", "event_id": "%s-a-%d-%d" % (
                prefix, i, k), "ts": t, "identity": ident,
                "client_id": "svc-%d" % (i % 4),
                "source_ip": "10.%d.0.%d" % (i, RNG.randrange(3)),
                "auth_method": "jwt_svid",
                "grant_type": "client_credentials", "audience": "api://x",
                "scopes": ["x:read"], "outcome": "success",
                "token_id": tok})
            evs.append({"type": "usage", "event_id": "%s-u-%d-%d" % (
                prefix, i, k), "ts": t + 1000, "identity": ident,
                "token_id": tok, "resource": "api://x", "action": "GET /",
                "scope": "x:read", "source_ip": "10.%d.0.1" % i,
                "status": 200, "bytes": 300})
            k += 1
            t += RNG.randrange(300000, 1500000)
        if signals and i % 6 == 0:
            evs.append({"type": "signal", "event_id": "%s-s-%d" % (
                prefix, i), "ts": start + RNG.randrange(end - start),
                "identity": ident, "kind": "secret_exposed",
                "severity": 70, "source": "scanner", "detail": "leak"})
    evs.sort(key=lambda e: (e["ts"], e["event_id"]))
    return evs


def truth_of(evs):
    truth = collections.defaultdict(collections.Counter)
    for ev in evs:
        truth[ev["identity"]][ev["type"]] += 1
    return truth


def run(args, timeout=120):
    return subprocess.run([MINTGATE] + args, capture_output=True, text=True,
                          timeout=timeout)


def summary(stderr):
    """The score command's last line as {name: count}."""
    m = re.search(r"mintgate score: consumed (\d+), applied (\d+), "
                  r"replayed (\d+), late (\d+), dead-lettered (\d+), "
                  r"risk changes \d+, retries \d+, alignment pauses (\d+)",
                  stderr)
    if not m:
        return None
    return dict(zip(("consumed", "applied", "replayed", "late", "dead",
                     "pauses"), map(int, m.groups())))


def check_counts(redis, truth, what):
    bad = 0
    for ident, counts in sorted(truth.items()):
        p = run(["baseline", "show", ident, "--json", "--redis",
                 "127.0.0.1:%d" % redis.port], timeout=30)
        if not check(p.returncode == 0, "%s: baseline show %s: %s" % (
                what, ident, p.stderr.strip())):
            bad += 1
            continue
        got = json.loads(p.stdout)["events"]
        want = {t: counts.get(t, 0) for t in ("auth", "usage", "signal")}
        if got != want:
            bad += 1
            check(False, "%s: %s stored %s, produced %s" % (
                what, ident, got, want))
    check(bad == 0, "%s: all %d identities have exactly the events "
          "produced" % (what, len(truth)))


def case(tmp, bootstrap, redis, what, evs, topics, group):
    path = os.path.join(tmp, group + ".jsonl")
    with open(path, "w") as fp:
        for ev in evs:
            fp.write(json.dumps(ev) + "\n")
    p = run(["produce", "--brokers", bootstrap, path] + topics)
    check(p.returncode == 0, "%s: produce: %s" % (what, p.stderr[-300:]))
    began = time.monotonic()
    try:
        p = run(["score", "--group", group, "--idle-exit", "5s",
                 "--brokers", bootstrap, "--redis",
                 "127.0.0.1:%d" % redis.port, "--log-level", "warn"] + topics,
                timeout=300)
    except subprocess.TimeoutExpired:
        check(False, "%s: the scorer ends by itself once idle" % what)
        return
    took = time.monotonic() - began
    print("%s: %s (%.1f s)" % (what, p.stderr.strip().splitlines()[-1]
                               if p.stderr.strip() else "", took),
          flush=True)
    check(p.returncode == 0, "%s: score exits 0: %s" % (
        what, p.stderr[-500:]))
    s = summary(p.stderr)
    if check(s is not None, "%s: score prints its summary" % what):
        check(s["late"] == 0, "%s: no event refused as late (late %d)" % (
            what, s["late"]))
        check(s["dead"] == 0, "%s: nothing dead-lettered (%d)" % (
            what, s["dead"]))
        check(s["applied"] == len(evs), "%s: applied %d of %d events" % (
            what, s["applied"], len(evs)))
        # A backlog of topics read at their own pace: alignment held some
        # partitions back (else this test would not test it).
        check(s["pauses"] > 0, "%s: partitions were paused to align "
              "event time (%d)" % (what, s["pauses"]))
    check_counts(redis, truth_of(evs), what)


def check_order(bootstrap, evs, window_s):
    """`mintgate ingest --print` of the first case's backlog with a window
    of window_s: every event exactly once, and each identity's events in
    event-time order give or take the window (without alignment they are
    hours apart)."""
    what = "ingest order, window %ds" % window_s
    p = run(["ingest", "--print", "--group", "backlog-order", "--idle-exit",
             "5s", "--brokers", bootstrap, "--log-level", "warn", "--set",
             "ingest.align_window=%ds" % window_s], timeout=300)
    if not check(p.returncode == 0, "%s: ingest exits 0: %s" % (
            what, p.stderr[-500:])):
        return
    got = [json.loads(l)["event"] for l in p.stdout.splitlines() if l]
    ids = [e["event_id"] for e in got]
    check(sorted(ids) == sorted(e["event_id"] for e in evs),
          "%s: every event exactly once (%d delivered, %d produced)" % (
              what, len(ids), len(evs)))
    newest = {}
    worst = 0
    for e in got:
        ts = e["ts"] if isinstance(e["ts"], int) else parse_ts(e["ts"])
        behind = newest.get(e["identity"], ts) - ts
        worst = max(worst, behind)
        newest[e["identity"]] = max(newest.get(e["identity"], ts), ts)
    print("%s: an identity's event came at most %.1f s behind its newest" % (
        what, worst / 1000.0), flush=True)
    check(worst <= window_s * 1000, "%s: no identity's event comes more "
          "than the window behind its newest (worst %.1f s)" % (
              what, worst / 1000.0))


def parse_ts(text):
    """RFC 3339 with milliseconds and Z, as mg_event_to_json writes it."""
    base, frac = text.rstrip("Z").split(".")
    return (calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) *
            1000 + int(frac))


def main():
    tmp = tempfile.mkdtemp(prefix="mg-backlog-e2e-")
    redis = Redis(tmp)
    redis.start()
    broker = subprocess.Popen(
        [MINTGATE, "broker", "--port", "0", "--partitions", "4", "--topics",
         ",".join(["mg.auth", "mg.usage", "mg.signals", "mg.dlq"] +
                  sorted(OTHER.values()))],
        stdout=subprocess.PIPE, text=True)
    try:
        bootstrap = broker.stdout.readline().strip().split("=", 1)[1]

        evs = gen_events("backlog", signals=True)
        check(sum(e["type"] == "signal" for e in evs) > 0,
              "the history has signals")
        case(tmp, bootstrap, redis, "three topics", evs, [], "backlog")
        check_order(bootstrap, evs, 60)

        evs = gen_events("nosig", signals=False)
        topics = ["--set", "ingest.topics.auth=" + OTHER["auth"],
                  "--set", "ingest.topics.usage=" + OTHER["usage"],
                  "--set", "ingest.topics.signals=" + OTHER["signals"]]
        case(tmp, bootstrap, redis, "empty signals topic", evs, topics,
             "backlog-nosig")
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        redis.stop()

    return verdict("test_backlog_e2e")


if __name__ == "__main__":
    sys.exit(main())
