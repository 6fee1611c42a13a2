#!/usr/bin/env bash
# The Autobahn test cases (kosoku's fuzzingserver) against our client
# (examples/autobahn_client, release build): no case failed, unimplemented
# or closed wrongly, and all 216 permessage-deflate cases (12.x, 13.x) OK.
#
#   bash .ci/groups/autobahn.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "Autobahn test cases (kosoku fuzzingserver) against our client"
need_venv kosoku
cargo build --quiet --release --example autobahn_client
# Cases 13.2, 13.5 and 13.6 accept only an offer with client_no_context_takeover;
# a client cannot learn a case's wishes, so they run separately with that offer.
autobahn_run() {
  local name=$1 flag=$2
  shift 2
  local log=$work/kosoku_$name.log
  : >"$log"
  "$venv/bin/kosoku" -m fuzzingserver -o "$work/autobahn_$name" "$@" 127.0.0.1:0 >"$log" 2>&1 &
  local kpid=$!
  pids+=("$kpid")
  wait_for "$log" 'listening on'
  local url
  url=$(grep -m1 -oE 'ws://[0-9.]+:[0-9]+' "$log")
  # $flag is nothing or one option, hence unquoted.
  # shellcheck disable=SC2086
  timeout 1800 target/release/examples/autobahn_client "$url" $flag
  for _ in $(seq 300); do
    [ -f "$work/autobahn_$name/index.json" ] && break
    sleep 0.2
  done
  wait "$kpid" 2>/dev/null || true
}
autobahn_run main "" -x '13.2.*' -x '13.5.*' -x '13.6.*'
autobahn_run nct --client-no-context-takeover -i '13.2.*' -i '13.5.*' -i '13.6.*'
# The summary: its passed and failed cases go to group_result (through
# autobahn_counts); it also fails when a permessage-deflate case is not OK or
# they are not all there.
py_status=0
"$venv/bin/python" - "$work/autobahn_counts" "$work/autobahn_main/index.json" \
  "$work/autobahn_nct/index.json" <<'PY' || py_status=$?
import collections, json, sys
results = {}
for path in sys.argv[2:]:
    data = json.load(open(path))
    for agent in data.values():
        results.update(agent)
behavior = collections.Counter(r["behavior"] for r in results.values())
close = collections.Counter(r["behaviorClose"] for r in results.values())
print(f"autobahn: {len(results)} cases")
print("behavior:", ", ".join(f"{k} {v}" for k, v in sorted(behavior.items())))
print("behaviorClose:", ", ".join(f"{k} {v}" for k, v in sorted(close.items())))
deflate = {k: r for k, r in results.items() if k.split(".")[0] in ("12", "13")}
deflate_ok = sum(r["behavior"] == "OK" for r in deflate.values())
print(f"permessage-deflate cases (12.x, 13.x): {deflate_ok} of {len(deflate)} OK")
bad = [k for k, r in results.items()
       if r["behavior"] in ("FAILED", "UNIMPLEMENTED") or r["behaviorClose"] in ("WRONG CODE", "FAILED", "UNCLEAN")]
for k in sorted(bad):
    print("  not passed:", k, results[k]["behavior"], results[k]["behaviorClose"])
failed = len(bad) + (len(deflate) - deflate_ok)
with open(sys.argv[1], "w") as counts:
    print(len(results) - len(bad), len(bad), file=counts)
sys.exit(1 if failed or len(deflate) != 216 else 0)
PY
read -r passed failed <"$work/autobahn_counts"
group_result autobahn
exit "$py_status"
