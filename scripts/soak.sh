#!/usr/bin/env bash
# The suite under load: two fresh clones of HEAD run the README's test command side by side, round after round,
# each loading the machine for the other. Every run's exit code, counts and time go to soak/<clone>.tsv.
#
#   bash scripts/soak.sh [ROUNDS]          # default 5 rounds: 2 x 5 = 10 runs, each beside a second copy
#
# A round starts both copies together and waits for both, so every run has the other copy beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
root="${SOAK_DIR:-/tmp/smsnexus-soak}"
commit="$(git rev-parse HEAD)"
rm -rf "$root" && mkdir -p "$root/logs"
for clone in a b; do
  git clone -q --no-hardlinks . "$root/$clone"
  git -C "$root/$clone" checkout -q "$commit"
done

run_one() {  # clone round
  local dir="$root/$1" log="$root/logs/$1-$2.log" start end rc
  start=$(date +%s)
  set +e
  (cd "$dir" && SMSNEXUS_REQUIRE_POSTGRES=1 SMSNEXUS_REQUIRE_DEPLOYMENT=1 make test) >"$log" 2>&1
  rc=$?
  set -e
  end=$(date +%s)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rc" "$((end - start))" \
    "$(grep -E '^=+ .*(passed|failed).* in ' "$log" | tail -n 1 | tr -d '=' | xargs)" >>"$root/runs.tsv"
}

printf 'clone\tround\trc\tseconds\tsummary\n' >"$root/runs.tsv"
for round in $(seq 1 "$rounds"); do
  run_one a "$round" &
  run_one b "$round" &
  wait
  tail -n 2 "$root/runs.tsv"
done
echo "commit $commit"
cat "$root/runs.tsv"
! awk -F'\t' 'NR > 1 && $3 != 0 { found = 1 } END { exit !found }' "$root/runs.tsv"
