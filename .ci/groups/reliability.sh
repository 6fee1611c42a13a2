#!/usr/bin/env bash
# The figures the reliability tests print (verify_matrix, connection_ends,
# timeouts, slow_clients, load), shown in the CI log: the tests run again
# with --nocapture, and must pass and print them.
#
#   bash .ci/groups/reliability.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "reliability figures (the tests above, their printed figures)"
if cargo test --quiet --test verify_matrix --test connection_ends --test timeouts --test slow_clients \
    --test load -- --nocapture 2>&1 \
    | sed 's/^\.*//' | grep -E 'cases, |connections x|idle connections|fired after|stalled clients|real client'; then
  pass "the reliability tests passed and printed their figures"
else
  fail "the reliability tests printed no figures"
fi
group_result reliability
