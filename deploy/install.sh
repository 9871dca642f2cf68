#!/bin/sh
# Installs a packed vaultgate (the tarball `npm pack` writes) into DIR with its
# production dependencies only, at the versions npm-shrinkwrap.json pins.
# The Docker image runs this script, a VM is set up with it, and the test
# suite installs the copy it tests with it: one way in, so what is tested is
# what is deployed.
#   sh deploy/install.sh vaultgate-0.1.0.tgz /opt/vaultgate
set -eu
if [ $# -ne 2 ]; then
  echo "usage: install.sh TARBALL DIR" >&2
  exit 2
fi
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
cd "$2"
[ -f package.json ] || printf '{ "private": true }\n' > package.json
npm install --omit=dev --no-audit --no-fund --no-update-notifier "$tarball"
echo "vaultgate installed in $(pwd): $(pwd)/node_modules/.bin/vaultgate"
