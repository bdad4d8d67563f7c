#!/usr/bin/env bash
# Benchmark two commits with the same (current) asv suite in the existing
# environment, then compare them.  Exits non-zero when a benchmark got more than
# 10% worse (or failed) from A to B.
#
#   scripts/asv_compare.sh A B [extra asv run arguments, e.g. -b Kernels]
#
# Each commit is checked out in a temporary git worktree and put first on the
# benchmarks' import path (ASV_PYTHONPATH); results are recorded under each
# commit's hash (--set-commit-hash).  FASTBP_ASV_PROFILE=fast gives a quick run.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 COMMIT_A COMMIT_B [asv run arguments]" >&2
    exit 2
fi
A=$(git rev-parse --verify "$1^{commit}")
B=$(git rev-parse --verify "$2^{commit}")
shift 2

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/asv_benchmarks"
asv machine --yes > /dev/null

trees=()
cleanup() {
    for t in "${trees[@]}"; do git -C "$here" worktree remove --force "$t" 2> /dev/null || true; done
}
trap cleanup EXIT

for sha in "$A" "$B"; do
    tree=$(mktemp -d "${TMPDIR:-/tmp}/fastbp-asv-${sha:0:8}-XXXX")
    trees+=("$tree")
    git -C "$here" worktree add --detach --force "$tree" "$sha" > /dev/null
    echo "== benchmarking ${sha:0:8} from $tree"
    ASV_PYTHONPATH="$tree" asv run --python=same --set-commit-hash="$sha" --show-stderr "$@"
done

report=$(asv compare --factor 1.10 --split "$A" "$B")
echo "$report"
# asv marks a slowdown beyond the factor with '+' and a failure with '!', in the
# first column of its table (a '|' first when it prints Markdown)
if echo "$report" | grep -Eq '^[|[:space:]]*[+!][[:space:]]'; then
    echo "performance got worse from ${A:0:8} to ${B:0:8} (factor 1.10)" >&2
    exit 1
fi
