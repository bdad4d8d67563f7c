#!/usr/bin/env bash
# Build the HTML history of every result recorded so far (asv_benchmarks/.asv/html);
# `asv preview` (in asv_benchmarks/) serves it.
set -euo pipefail
cd "$(dirname "$0")/../asv_benchmarks"
asv publish "$@"
echo "HTML history in $(pwd)/.asv/html (view with: cd asv_benchmarks && asv preview)"
