#!/usr/bin/env bash
# bench_replay.sh — `mintgate simulate` + `mintgate replay` of the default
# scenario (7 days x 2,000 identities), R rounds with different seeds:
# wall time of each step and of both (target < 60 s), replayed events/s,
# and the detection figures of each round. Prints medians.
#
# Usage: tests/bench/bench_replay.sh [MINTGATE, default build/mintgate]
#                                    [R, default 3] [DAYS] [IDENTITIES]
set -euo pipefail

MG=${1:-build/mintgate}
ROUNDS=${2:-3}
DAYS=${3:-7}
IDS=${4:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
POLICY="$HERE/../../deploy/policy-simulated.yaml"
TMP=$(mktemp -d /tmp/mg-bench-replay-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR] = $1} END {
  if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "simulate + replay: $DAYS days x $IDS identities, $ROUNDS rounds ($MG)"
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now)
  "$MG" simulate --seed "$r" --days "$DAYS" --identities "$IDS" \
    --labels "$TMP/labels.jsonl" -o "$TMP/events.jsonl" 2>"$TMP/sim.err"
  t1=$(now)
  "$MG" replay "$TMP/events.jsonl" --policy "$POLICY" \
    --labels "$TMP/labels.jsonl" --json >"$TMP/replay.json"
  t2=$(now)
  events=$(wc -l <"$TMP/events.jsonl")
  python3 - "$TMP/replay.json" "$events" "$t0" "$t1" "$t2" "$r" \
    >>"$TMP/rounds" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
events = int(sys.argv[2])
t0, t1, t2 = map(float, sys.argv[3:6])
overall = doc["detection"][0]
b = doc["benign"]
print("%s %d %.2f %.2f %.2f %.0f %.4f %.4f %.4f" % (
    sys.argv[6], events, t1 - t0, t2 - t1, t2 - t0, events / (t2 - t1),
    overall["auc"] or 0, overall["tpr_at_1pct_fpr"] or 0,
    b["hurt_share"] or 0))
EOF
  read -r _ ev ts tr tt eps auc tpr hurt < <(tail -1 "$TMP/rounds")
  printf '  round %d: %d events; simulate %.1f s, replay %.1f s (%.0f ev/s), ' \
    "$r" "$ev" "$ts" "$tr" "$eps"
  printf 'both %.1f s; AUC %.3f, TPR@1%%FPR %.3f, benign hurt %.2f%%\n' \
    "$tt" "$auc" "$tpr" "$(awk -v h="$hurt" 'BEGIN { print h * 100 }')"
done
col() { awk -v c="$1" '{print $c}' "$TMP/rounds" | median; }
printf 'median: simulate %.1f s, replay %.1f s, both %.1f s (target < 60 s), ' \
  "$(col 3)" "$(col 4)" "$(col 5)"
printf 'replay %.0f events/s; AUC %.3f, TPR@1%%FPR %.3f\n' "$(col 6)" \
  "$(col 7)" "$(col 8)"
