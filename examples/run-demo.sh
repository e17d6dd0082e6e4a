#!/usr/bin/env bash
# The README's first command: copy the demo into a real git repository under build/demo, then run
# `cascade fix` on each demo issue (scripted model answers, real sandbox, gate and proof) and
# check each run's proof with `cascade proof verify`. DEMO-4 names no test, so its run writes
# the proving test first (the reproduce stage), then the fix. DEMO-5 is a one-token bug that the
# `repair` rung (repair/mutate: no model, no cassette, $0) fixes.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
CASCADE="${CASCADE:-.venv/bin/cascade}"
DEMO_DIR="${DEMO_DIR:-build/demo}"
rm -rf "$DEMO_DIR" && mkdir -p "$(dirname "$DEMO_DIR")" && cp -r examples/demo "$DEMO_DIR"
git -C "$DEMO_DIR" init -q -b main
git -C "$DEMO_DIR" add -A
git -C "$DEMO_DIR" -c user.name=demo -c user.email=demo@localhost commit -q -m "demo: base"
echo "demo repository: $DEMO_DIR (issues in $DEMO_DIR/.cascade/issues)"
failed=0
for issue in DEMO-1 DEMO-2 DEMO-3 DEMO-4 DEMO-5; do
  echo
  echo "== cascade fix $issue"
  code=0
  "$CASCADE" fix "$issue" --repo "$DEMO_DIR" --json > "$DEMO_DIR.$issue.json" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "cascade fix $issue did not verify a patch (exit $code)"
    failed=1
    continue
  fi
  run_dir=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_dir"])' "$DEMO_DIR.$issue.json")
  "$CASCADE" proof verify "$run_dir"
done
echo
if [ "$failed" -eq 0 ]; then
  echo "all demo issues verified; proof under $DEMO_DIR/.cascade/runs/"
  echo
  "$CASCADE" ladder stats --repo "$DEMO_DIR"
else
  echo "some demo issues were not verified"; exit 1
fi
