#!/usr/bin/env bash
# Builds the test tools that no package registry here publishes, from their Go
# modules at the versions pinned in tools/<name>/go.mod, into .tools/bin:
# HashiCorp Vault and the OPA CLI (test servers and policy compiler), Helm (the
# chart's lint and render), compose-go (the compose file's loader) and the
# Kubernetes manifest checker. A tool is rebuilt only when its folder changed,
# so a warm machine skips this in a second.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin

# build NAME [PACKAGE]: tools/NAME is a Go module; PACKAGE is the main package
# to build from it (default: the module's own main.go).
build() {
  local name=$1 package=${2:-.} dir=tools/$1
  local stamp=".tools/bin/$name.stamp"
  local want
  want=$( (cd "$dir" && find . -type f | LC_ALL=C sort | xargs cat) | sha256sum | cut -d' ' -f1)
  if [[ -x ".tools/bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "tools: $name is current"
    return
  fi
  local started=$SECONDS
  echo "tools: building $name from its Go module (a cold build of Vault takes several minutes)..."
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "../../.tools/bin/$name" "$package")
  echo "$want" > "$stamp"
  echo "tools: built $name in $((SECONDS - started)) s"
}

build opa
build vault
build compose
build helm helm.sh/helm/v3/cmd/helm
build k8s-validate
