#!/usr/bin/env bash
# The benchmarks (bench/benches/compare/, the securenet-bench package) at
# a quick scale, OpenSSL rows included: figures for the log, nothing
# compared; the full run is in BENCHMARKS.md.
#
#   bash .ci/groups/bench.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "benchmarks, quick scale (figures only; the full run is in BENCHMARKS.md)"
need_libssl_dev
SECURENET_BENCH_SCALE=0.05 cargo bench --quiet -p securenet-bench --bench compare --features openssl
pass "the benchmarks ran"

step "scale, quick (50 and 500 idle connections per server process; the limit only at full scale)"
need_go
SECURENET_BENCH_SCALE=0.05 SECURENET_BENCH_REPEAT=2 cargo bench --quiet -p securenet-bench --bench scale
pass "the scale benchmark ran"
step "WebSocket servers, quick (securenet's, tungstenite's and Node ws's, the same client; 50 clients at one message a second)"
need_node
SECURENET_BENCH_NODE_DIR=$nodedir SECURENET_BENCH_REQUIRE_ALL=1 SECURENET_BENCH_SCALE=0.05 SECURENET_BENCH_REPEAT=2 \
  cargo bench --quiet -p securenet-bench --bench wsserver
pass "the WebSocket server benchmark ran"
step "handshakes, client and server apart, quick"
SECURENET_BENCH_SCALE=0.05 SECURENET_BENCH_REPEAT=2 cargo bench --quiet -p securenet-bench --bench sides
pass "the handshake sides benchmark ran"
group_result bench
