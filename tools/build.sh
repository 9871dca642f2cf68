#!/usr/bin/env bash
# Builds the test servers that no package registry here publishes: HashiCorp
# Vault and the OPA CLI, from their Go modules at the versions pinned in
# tools/<name>/go.mod, into .tools/bin. A tool is rebuilt only when its pin
# changed, so a warm machine skips this in a second.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin

build() {
  local name=$1 dir=tools/$1
  local stamp=".tools/bin/$name.stamp"
  local want
  want=$(cat "$dir/go.mod" "$dir/go.sum" "$dir/main.go" | sha256sum | cut -d' ' -f1)
  if [[ -x ".tools/bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tools: $name is current ($(".tools/bin/$name" version 2>/dev/null | head -n1))"
    return
  fi
  local started=$SECONDS
  echo "tools: building $name from its Go module (a cold build of Vault takes several minutes)..."
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "../../.tools/bin/$name" .)
  echo "$want" > "$stamp"
  echo "tools: built $name in $((SECONDS - started)) s: $(".tools/bin/$name" version | head -n1)"
}

build opa
build vault
