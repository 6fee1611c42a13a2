#!/usr/bin/env bash
# Every cargo-fuzz target (fuzz/run.sh) for SECONDS each, 60 unless given;
# fails on the first crash, hang or out-of-memory. fuzz/run.sh installs
# cargo-fuzz if it is missing.
#
#   bash .ci/groups/fuzz.sh [SECONDS]
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

seconds=${1:-60}
step "fuzzing: every cargo-fuzz target for $seconds s"
bash fuzz/run.sh "$seconds"
pass "every fuzz target ran $seconds s without a crash, hang or out-of-memory"
group_result fuzz
