#!/usr/bin/env bash
# The README's test command (`npm test`). On a fresh machine it provisions
# everything the tests need (redis-server, redis-sentinel, haproxy, nginx, ss and
# systemd-analyze from Debian;
# Vault, OPA, Helm, compose-go and the Kubernetes manifest checker built from
# their Go modules; the npm packages), then runs every test against those real
# servers and tools: unit tests, the Rego tests, the HTTP tests, and the
# deployment tests (packed install, Dockerfile, compose file, Helm chart, systemd unit).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The policy bundle server in the bundle tests: a static file server with ETags.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing ${missing[*]} from Debian's packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash tools/build.sh

if [ ! -f node_modules/.package-lock.json ] || [ npm-shrinkwrap.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

npm run --silent typecheck
# Lint and format: typescript-eslint (no `any`, no forgotten promise) and Prettier.
npm run --silent lint
npm run --silent build

export PATH="$PWD/.tools/bin:$PATH"
# Every test process records the log lines, error bodies and tokens it saw here;
# the leak scan below reads them all.
export VAULTGATE_TEST_RUN_DIR="$PWD/.test-run"
rm -rf "$VAULTGATE_TEST_RUN_DIR" && mkdir -p "$VAULTGATE_TEST_RUN_DIR"
log=$(mktemp)
status=0
if [ $# -gt 0 ]; then
  npx ava "$@" 2>&1 | tee "$log" || status=$?
else
  # The chaos run loads both cores for about a minute and a half: it runs alone, after the
  # rest, so that its load is not what the other files' deadlines meet (two CI runs failed
  # there, each beside it), nor theirs what its failure windows measure.
  chaos=test/cli/chaos.test.ts
  mapfile -t files < <(find test -name '*.test.ts' ! -path "$chaos" | sort)
  npx ava "${files[@]}" 2>&1 | tee "$log" || status=$?
  npx ava "$chaos" 2>&1 | tee -a "$log" || status=$?
fi
leaks=0
if [ "$status" -eq 0 ]; then
  npx tsx test/leak-scan.ts || { status=$?; leaks=1; }
fi
# One plain closing line that any CI reader understands; a leak counts as a failure.
echo "tests: $(grep -c '✔' "$log" || true) passed, $(( $(grep -c '✘' "$log" || true) + leaks )) failed"
rm -f "$log"
exit "$status"
