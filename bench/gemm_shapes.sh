#!/usr/bin/env bash
# Runs `gantry bench gemm` at the square 1024³ product and every SGEMM
# shape of a smollm2-135m training step (batch 8 × seq 256 = 2048 rows),
# forward and backward, printing one JSON object per line.
#
#   bench/gemm_shapes.sh [--threads T] [--kernel avx512|avx2|generic] [--iters N]
#
# GANTRY is the gantry binary (default: built from ./cmd/gantry).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--threads | --kernel | --iters) args+=("$1" "$2"); shift 2 ;;
	*) echo "gemm_shapes.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
if [ -z "${GANTRY:-}" ]; then
	GANTRY=$(mktemp -d)/gantry
	go build -o "$GANTRY" ./cmd/gantry
fi
# m n k flags: forward x·Wᵀ, backward dX = dY·W, dW = dYᵀ·X.
shapes=(
	"1024 1024 1024"
	"2048 576 576 --transb" "2048 192 576 --transb" "2048 1536 576 --transb" "2048 576 1536 --transb"
	"2048 576 576" "2048 1536 576" "2048 576 1536"
	"576 576 2048 --transa" "192 576 2048 --transa" "1536 576 2048 --transa" "576 1536 2048 --transa"
	"2048 49152 576 --transb" "2048 576 49152"
)
for s in "${shapes[@]}"; do
	set -- $s
	"$GANTRY" bench gemm --m "$1" --n "$2" --k "$3" ${4:-} "${args[@]}"
done
