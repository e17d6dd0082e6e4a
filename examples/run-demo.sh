#!/usr/bin/env bash
# Copy the demo into a real git repository under build/demo and run its suite in a sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf build/demo && mkdir -p build && cp -r examples/demo build/demo
git -C build/demo init -q -b main
git -C build/demo add -A
git -C build/demo -c user.name=demo -c user.email=demo@localhost commit -q -m "demo: base"
echo "demo repository: build/demo (issues in build/demo/.cascade/issues)"
.venv/bin/cascade sandbox run --repo build/demo -- python -m pytest -q -p no:cacheprovider || true
