#!/usr/bin/env bash
# Runs `gantry bench train` and bench/torch_train.py back to back on the
# same shape and method, then prints both JSON results and the ratio of
# their training throughputs (gantry / torch).
#
#   bench/compare.sh [--method lora|tfew|vanilla] [--seq 256] [--batch 8] [--steps 3] [--threads 2]
#
# Both sides build the smollm2-135m shape with random weights (gantry:
# --preset smollm2-135m; vanilla trains the last 2 layers on both sides).
# Extra flags for gantry go in GANTRY_TRAIN_ARGS; GANTRY is the gantry
# binary (default: ./cmd/gantry built into a temporary directory). Debian's OpenBLAS 0.3.21 does not know
# recent Xeons and falls back to its generic Prescott kernels, which would
# make torch several times slower than it can be: unless OPENBLAS_CORETYPE
# is set already, this script sets it to SkylakeX (the AVX-512 kernels).
set -euo pipefail
cd "$(dirname "$0")/.."

method=lora seq=256 batch=8 steps=3 threads=2
while [ $# -gt 0 ]; do
	case "$1" in
	--method) method=$2; shift 2 ;;
	--seq) seq=$2; shift 2 ;;
	--batch) batch=$2; shift 2 ;;
	--steps) steps=$2; shift 2 ;;
	--threads) threads=$2; shift 2 ;;
	*) echo "compare.sh: unknown flag $1" >&2; exit 2 ;;
	esac
done

if [ -z "${GANTRY:-}" ]; then
	GANTRY=$(mktemp -d)/gantry
	go build -o "$GANTRY" ./cmd/gantry
fi

export OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}"
export GANTRY_THREADS="$threads"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
last=()
if [ "$method" = vanilla ]; then
	last=(--last-layers 2)
fi
# shellcheck disable=SC2086
g=$("$GANTRY" bench train --preset smollm2-135m --method "$method" --seq "$seq" --batch "$batch" \
	--steps "$steps" --threads "$threads" "${last[@]}" ${GANTRY_TRAIN_ARGS:-} | tail -n 1)
t=$(/usr/bin/python3 bench/torch_train.py --method "$method" --seq "$seq" --batch "$batch" --steps "$steps" --threads "$threads" | tail -n 1)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "gantry: $g"
echo "torch:  $t"
/usr/bin/python3 - "$g" "$t" <<'PY'
import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "method": t["method"], "seq": t["seq"], "batch": t["batch"],
    "gantry_tokens_per_sec": g["tokens_per_sec"], "torch_tokens_per_sec": t["tokens_per_sec"],
    "ratio": g["tokens_per_sec"] / t["tokens_per_sec"],
    "gantry_peak_rss_bytes": g.get("peak_rss_bytes"), "torch_peak_rss_bytes": t["peak_rss_bytes"],
}))
PY
