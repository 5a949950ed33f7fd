#!/usr/bin/env bash
# make bench-gpu [PART=1|2]: every GPU figure of docs/PERFORMANCE.md#gpu in one run, on a machine with a
# CUDA GPU and the project installed (make install). Part 1 (under 10 minutes on an H100): every model
# config under each precision, raw text to a tested model and its checkpoint served, the GPU recipe
# against the CPU recipe on the same GPU, the benchmarks of the paper's model and the default recipe.
# Part 2 (about 6 minutes): the 1,000,000-document stand-in, encoded, then one epoch.
# Each step has its own time limit, most important first; after each, everything measured so far is
# packed into $OUT/bench_gpu_$PART.tgz, so that a run cut short keeps what it measured. Everything is
# written under the git-ignored logs/bench_gpu/ ($OUT too unless given). A word-BiGRU floor script, if
# given as FLOOR=path, is timed beside the benchmark. Try it on a CPU in a few minutes first:
#   OUT=logs/bench_gpu/cpu_out DEVICE=cpu QUICK=1 bash scripts/bench_gpu.sh 1   (and 2)
set -u
cd "$(dirname "$0")/.."  # the project root: every path below is inside the project
PART=${1:-1}
ROOT=$PWD/logs/bench_gpu
OUT=${OUT:-$ROOT/out}
WORK=$ROOT/work  # logs/ and results/, packed into $OUT/bench_gpu_$PART.tgz after every step
RUNS=$ROOT/runs  # training runs (their checkpoints stay here)
STANDIN=$ROOT/standin  # part 2's stand-in corpus
DEVICE=${DEVICE:-cuda}
IMDB=${HDC_IMDB_DIR:-data/stanfordnlp/imdb}
rm -rf "$WORK" "$RUNS" && mkdir -p "$OUT" "$WORK/logs" "$WORK/results"  # each part packs its own archive
quick=${QUICK:+debug=fast}  # QUICK=1: smoke-test this script in a few minutes
gpu=$([ "$DEVICE" = cuda ] && echo trainer=gpu || echo trainer=default)
start=$SECONDS

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to logs/NAME.txt, pack what is there
  local name=$1 limit=$2 began=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$WORK/logs/$name.txt" 2>&1
  echo "$name: exit $?, $((SECONDS - began)) s ($((SECONDS - start)) s in all)" | tee -a "$WORK/logs/steps.txt"
  for run in "$RUNS"/*/; do
    [ -f "$run/metrics.json" ] && cp "$run/metrics.json" "$WORK/results/$(basename "$run").json"
  done
  tar czf "$OUT/bench_gpu_$PART.tgz" -C "$WORK" .
}

python -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" \
  | tee "$WORK/logs/device.txt"

if [ "$PART" = 1 ]; then
# Most important first: whether the GPU path works at all, then the user's commands, then speed.
# 1. Precision: every model config under 32-true, bf16-mixed and 16-mixed, predictions against fp32's
#    (4 pytest workers where pytest-xdist is installed).
workers=$(python -c "import xdist" 2>/dev/null && echo "-n 4")
step pytest_gpu 130 python -m pytest tests/test_gpu.py -q -p no:cacheprovider $workers

# 2. Raw text to a tested model (empty cache), then its checkpoint served on the same device: the API's
#    answers against hdc.load's, and the load figures with and without batching.
rm -rf data/cache
step imdb_fast_gpu 70 python train.py experiment=imdb_fast "$gpu" data.path="$IMDB" hydra.run.dir="$RUNS/imdb_fast" $quick
step serve_gpu 110 python scripts/load_test.py "$RUNS/imdb_fast/checkpoints/last.ckpt" --device "$DEVICE" \
  --texts "$IMDB/test.parquet" --requests 1000 --seconds 6 --memory-requests 0 --out "$WORK/results/serve_load_gpu.json"

# 3. The GPU recipe with its epoch times (SimpleProfiler), then the CPU recipe it is measured against
#    (recipe=paper_adamw on IMDB: batch 64, one-cycle AdamW peaking at 4e-3, 3 epochs) in fp32 on the
#    same GPU: the validation accuracy imdb_gpu must reach within 0.3 points.
step imdb_gpu 80 python train.py experiment=imdb_gpu "$gpu" data.path="$IMDB" +trainer.profiler=simple \
  hydra.run.dir="$RUNS/imdb_gpu" $quick
step imdb_reference 100 python train.py recipe=paper_adamw "$gpu" trainer.precision=32-true data.path="$IMDB" \
  hydra.run.dir="$RUNS/imdb_reference" $quick

# 4. hdc's benchmark of the paper's model at its caps (60 x 80) and the floor (embedding + word BiGRU
#    alone) in the same run: docs/s, peak memory, the step's split and a torch.profiler table; last,
#    the benchmark of the default recipe's model (HAN + wide term), which first fits its wide term.
few=${QUICK:+--batches 2 --repeats 1}
step bench_60x80 70 python scripts/benchmark.py data.path="$IMDB" --rows paper_adamw --device "$DEVICE" \
  --precisions fp32,bf16,fp16 --out "$WORK/results/bench_gpu_60x80.json" \
  --profile "$WORK/results/profile_gpu_60x80.txt" $few
if [ -n "${FLOOR:-}" ]; then
  step floor 60 bash -c "for args in '' '--bf16' '--batch-size 512' '--batch-size 512 --bf16'; do
    echo \"== \$args\"; python $FLOOR $IMDB --device $DEVICE --max-sents 60 --max-words 80 --batches 20 \$args; done"
fi
step bench_60x80_b512 60 python scripts/benchmark.py data.path="$IMDB" data.batch_size=512 --rows paper_adamw \
  --device "$DEVICE" --precisions fp32,bf16 --out "$WORK/results/bench_gpu_60x80_b512.json" ${few:---batches 10}
step bench_default 120 python scripts/benchmark.py data.path="$IMDB" --rows default --device "$DEVICE" $quick \
  --precisions fp32,bf16 --out "$WORK/results/bench_gpu_default.json" $few

fi

if [ "$PART" = 2 ]; then
# 4. The paper's scale: a 1,000,000-document stand-in, encoded with every core, one epoch on the GPU.
documents=$([ -n "${QUICK:-}" ] && echo 20000 || echo 1000000)
step standin 90 python scripts/scale_standin.py "$IMDB" "$STANDIN" --documents "$documents"
step scale 330 python scripts/scale.py "$STANDIN" --out "$WORK/results/scale_gpu.json" --train "$gpu" \
  data.batch_size=512 +trainer.profiler=simple \
  ${QUICK:+trainer.limit_train_batches=3 trainer.limit_val_batches=2 trainer.limit_test_batches=2}
fi
echo "done in $((SECONDS - start)) s" | tee -a "$WORK/logs/steps.txt"
tar czf "$OUT/bench_gpu_$PART.tgz" -C "$WORK" .
