#!/usr/bin/env bash
# Records examples/policy-repo/decisions/sample.jsonl the way a team gets its
# sample: vaultgate running with VAULTGATE_DECISION_LOG=true (here `vaultgate
# dev` with the example's policy, its own issuer and the local secrets file),
# a week's kind of steps asking for their secrets, and the decision lines of
# its log kept. Claims and references only: the log never holds a value.
# Needs dist/ (npm run build) and OPA (tools/build.sh). Run from anywhere:
#   bash tools/record-decision-sample.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/.."

port=${1:-18089}
work=$(mktemp -d)
trap 'kill "$dev" 2>/dev/null || true; rm -rf "$work"' EXIT
export PATH="$PWD/.tools/bin:$PATH"

VAULTGATE_DECISION_LOG=true node bin/vaultgate.js dev --port "$port" --state "$work/state" \
  --policy examples/policy-repo/policy >"$work/banner" 2>"$work/log" &
dev=$!
for _ in $(seq 100); do grep -q '^  TOKEN=' "$work/banner" && break; sleep 0.2; done
grep -q '^  TOKEN=' "$work/banner" || { cat "$work/log" >&2; exit 1; }

acme='{6b0c3e3a-3c8e-4f53-9a57-1b1f7d1f0a11}'
payments='{9a8b7c6d-2222-4333-8444-555566667777}'
web='{1b2c3d4e-5555-4666-8777-888899990000}'
infra='{7c8d9e0f-4444-4555-8666-777788889999}'
legacy='{2d3e4f5a-6666-4777-8888-999900001111}'
unlisted='{4e5f6a7b-8888-4999-8aaa-bbbbccccdddd}'
staging='{5e6f7a8b-1111-4222-8333-000000000001}'
production='{d3e4f5a6-3333-4444-8555-666677778888}'

# ask WORKSPACE REPOSITORY BRANCH [DEPLOYMENT [STEP PIPELINE]]: one step asks for its secrets.
ask() {
  local args=(--state "$work/state" --workspace "$1" --repo "$2" --branch "$3")
  [ -n "${4:-}" ] && args+=(--deployment "$4")
  [ -n "${5:-}" ] && args+=(--step "$5" --pipeline "$6")
  local token
  token=$(node bin/vaultgate.js token "${args[@]}")
  curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/secrets"
}

for branch in feature/PAY-311-refunds feature/PAY-311-refunds feature/PAY-318-3ds renovate/koa-3.x \
  feature/PAY-320-ledger feature/PAY-320-ledger main main main main release/2.4 release/2.4; do
  ask "$acme" "$payments" "$branch"
done
ask "$acme" "$payments" main "$staging"
ask "$acme" "$payments" main "$staging"
ask "$acme" "$payments" main "$production"
ask "$acme" "$payments" release/2.4 "$production"
for branch in feature/WEB-77-dark-mode feature/WEB-77-dark-mode feature/WEB-80-a11y renovate/vite-6.x main main; do
  ask "$acme" "$web" "$branch"
done
ask "$acme" "$web" main "$production"
ask "$acme" "$web" main "$production"
ask "$acme" "$infra" feature/INF-12-vpc
ask "$acme" "$infra" main
ask "$acme" "$infra" main "$production"
ask "$acme" "$legacy" main
ask "$acme" "$legacy" main
# A runner asking again for the same step (after a 503's Retry-After): one step, two decisions.
ask "$acme" "$legacy" main "" '{a1b2c3d4-0000-4000-8000-00000000b47c}' '{0d6f1f55-59e5-4b6c-8a5b-00000000b47c}'
ask "$acme" "$legacy" main "" '{a1b2c3d4-0000-4000-8000-00000000b47c}' '{0d6f1f55-59e5-4b6c-8a5b-00000000b47c}'
ask "$acme" "$unlisted" main
ask "$acme" "$unlisted" feature/try-vaultgate
ask '{99999999-0000-4000-8000-000000000000}' "$payments" main

kill "$dev" && wait "$dev" 2>/dev/null || true
grep '"msg":"decision log"' "$work/log" >examples/policy-repo/decisions/sample.jsonl
echo "wrote examples/policy-repo/decisions/sample.jsonl: $(wc -l <examples/policy-repo/decisions/sample.jsonl) decisions"
