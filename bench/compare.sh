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
# binary (default: ./cmd/gantry built into a temporary directory).
#
# PyTorch is compared in its fastest configuration: OMP_WAIT_POLICY=PASSIVE,
# glibc malloc tuned, and the OpenBLAS kernel set that runs fastest on this
# CPU. Debian's OpenBLAS 0.3.21 does not know recent Xeons (it falls back to
# its generic Prescott kernels, several times slower), and which of its
# kernel sets wins depends on the CPU and the method (on AMD Zen 4 the AVX2
# Haswell kernels beat the AVX-512 ones; on a Sapphire Rapids Xeon SkylakeX
# wins LoRA and Cooperlake Vanilla; on AMD Zen 5 Cooperlake won LoRA). So
# torch runs once per core type in TORCH_CORETYPES (default "Haswell
# Cooperlake SkylakeX", plus OPENBLAS_CORETYPE when the environment sets
# another: some machines set it to Haswell for every program, which alone
# would hide a faster torch) and the fastest run is the one compared.
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
if [ -z "${TORCH_CORETYPES:-}" ]; then
	TORCH_CORETYPES="Haswell Cooperlake SkylakeX"
	case " $TORCH_CORETYPES " in
	*" ${OPENBLAS_CORETYPE:-Haswell} "*) ;;
	*) TORCH_CORETYPES="$TORCH_CORETYPES $OPENBLAS_CORETYPE" ;;
	esac
fi
export GANTRY_THREADS="$threads"

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
last=()
if [ "$method" = vanilla ]; then
	last=(--last-layers 2)
fi
# shellcheck disable=SC2086
g=$("$GANTRY" bench train --preset smollm2-135m --method "$method" --seq "$seq" --batch "$batch" \
	--steps "$steps" --threads "$threads" "${last[@]}" ${GANTRY_TRAIN_ARGS:-} | tail -n 1)
t=
for core in $TORCH_CORETYPES; do
	r=$(OPENBLAS_CORETYPE=$core /usr/bin/python3 bench/torch_train.py --method "$method" --seq "$seq" --batch "$batch" --steps "$steps" --threads "$threads" | tail -n 1)
	echo "torch ($core): $r" >&2
	t=$(/usr/bin/python3 - "$t" "$r" <<'PY'
import json, sys
best, r = sys.argv[1], json.loads(sys.argv[2])
print(json.dumps(r) if not best or r["tokens_per_sec"] > json.loads(best)["tokens_per_sec"] else best)
PY
	)
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "gantry: $g"
echo "torch:  $t"
/usr/bin/python3 - "$g" "$t" <<'PY'
import json, sys
g, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "method": t["method"], "seq": t["seq"], "batch": t["batch"],
    "gantry_precision": g.get("precision"), "torch_openblas_core": t.get("openblas_core"),
    "gantry_tokens_per_sec": g["tokens_per_sec"], "torch_tokens_per_sec": t["tokens_per_sec"],
    "ratio": g["tokens_per_sec"] / t["tokens_per_sec"],
    # Per-step best against best and median against median (torch's
    # tokens_per_sec is its best step; gantry's is the mean of its steps).
    "gantry_best_tokens_per_sec": g.get("best_tokens_per_sec"), "gantry_median_tokens_per_sec": g.get("median_tokens_per_sec"),
    "torch_median_tokens_per_sec": t["median_tokens_per_sec"],
    "ratio_best": g.get("best_tokens_per_sec", g["tokens_per_sec"]) / t["tokens_per_sec"],
    "ratio_median": g.get("median_tokens_per_sec", g["tokens_per_sec"]) / t["median_tokens_per_sec"],
    "gantry_peak_rss_bytes": g.get("peak_rss_bytes"), "torch_peak_rss_bytes": t["peak_rss_bytes"],
}))
PY
