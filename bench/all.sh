#!/usr/bin/env bash
# Runs every benchmark of record back to back and prints one line per
# result: the FMA peak and SGEMM shapes (gemm_shapes.sh), the training
# comparisons with PyTorch (compare.sh: LoRA, T-Few, Vanilla on the last 2
# layers in fp32, and LoRA with --precision bf16 against torch's fp32),
# and decoding against the weight-read bound (BenchmarkDecode).
#
#   bench/all.sh [--steps 3]
#
# Takes about half an hour on 2 cores; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=3
while [ $# -gt 0 ]; do
	case "$1" in
	--steps) steps=$2; shift 2 ;;
	*) echo "all.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done
if [ -z "${GANTRY:-}" ]; then
	GANTRY=$(mktemp -d)/gantry
	go build -o "$GANTRY" ./cmd/gantry
fi
export GANTRY
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) load $(cut -d' ' -f1-3 /proc/loadavg)"
bench/gemm_shapes.sh --iters 20
for m in lora tfew vanilla; do
	bench/compare.sh --method "$m" --steps "$steps" | tail -n 1
done
GANTRY_TRAIN_ARGS="--precision bf16" bench/compare.sh --method lora --steps "$steps" | tail -n 1
go test ./internal/model -run '^$' -bench 'Decode/smollm2' -benchtime 64x | grep Benchmark
echo "# done $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
