#!/usr/bin/env bash
# Every GPU measurement of the GPU issue in one prepared run, for a session lent a GPU machine
# (15 minutes of device time, start-up included; one command may run 10 minutes). Here:
#   bash ../shared/gpu/prepare.sh && cp ../shared/tools/gru_floor.py .device/
# then the device tool, with carry [".device"] and timeout_s 600, twice back to back (the machine
# goes back after 30 s idle), since the whole does not fit one 10-minute command:
#   bash .device/run.sh bash scripts/gpu_session.sh 1     # precision, floor, benchmark, recipes (~8 min)
#   bash .device/run.sh bash scripts/gpu_session.sh 2     # the 1,000,000-document stand-in (~6 min)
# Each step has its own time limit, most important first; after each, everything measured so far is
# packed into $OUT/session_$PART.tgz (the device tool returns few files), so that a run cut short still
# returns what it measured. Try it on a CPU first:
#   OUT=/tmp/gpu_out DEVICE=cpu QUICK=1 bash scripts/gpu_session.sh 1   (and 2)
set -u
PART=${1:-1}
OUT=${OUT:-/tmp/gpu_session}
WORK=/tmp/gpu_session_work  # logs/ and results/, packed into $OUT/session_$PART.tgz after every step
RUNS=/tmp/gpu_session_runs  # training runs (their checkpoints stay on the machine)
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
  echo "$name: exit $?, $((SECONDS - began)) s (session $((SECONDS - start)) s)" | tee -a "$WORK/logs/steps.txt"
  for run in "$RUNS"/*/; do
    [ -f "$run/metrics.json" ] && cp "$run/metrics.json" "$WORK/results/$(basename "$run").json"
  done
  tar czf "$OUT/session_$PART.tgz" -C "$WORK" .
}

python -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" \
  | tee "$WORK/logs/device.txt"

if [ "$PART" = 1 ]; then
# 1. Precision: every model config under 32-true, bf16-mixed and 16-mixed, predictions against fp32's.
step pytest_gpu 150 python -m pytest -m gpu -q -x -p no:cacheprovider

# 2. The floor (embedding + word BiGRU alone) and hdc's benchmark in the same session: docs/s, peak
#    memory, the step's split and a torch.profiler table.
if [ -f .device/gru_floor.py ]; then
  step floor 120 bash -c "for args in '' '--bf16' '--batch-size 512' '--batch-size 512 --bf16'; do
    echo \"== \$args\"; python .device/gru_floor.py $IMDB --device $DEVICE --max-sents 60 --max-words 80 \$args; done"
fi
few=${QUICK:+--batches 2 --repeats 1}
step bench_60x80 150 python scripts/benchmark.py data.path="$IMDB" --device "$DEVICE" --precisions fp32,bf16,fp16 \
  --out "$WORK/results/bench_gpu_60x80.json" --profile "$WORK/results/profile_gpu_60x80.txt" $few
step bench_60x80_b512 90 python scripts/benchmark.py data.path="$IMDB" data.batch_size=512 --device "$DEVICE" \
  --precisions fp32,bf16 --out "$WORK/results/bench_gpu_60x80_b512.json" $few

# 3. Raw text to a tested model (empty cache), then the GPU recipe with its epoch times (SimpleProfiler).
rm -rf data/cache
step imdb_fast_gpu 120 python train.py experiment=imdb_fast "$gpu" data.path="$IMDB" hydra.run.dir="$RUNS/imdb_fast" $quick
step imdb_gpu 150 python train.py experiment=imdb_gpu "$gpu" data.path="$IMDB" +trainer.profiler=simple \
  hydra.run.dir="$RUNS/imdb_gpu" $quick
# The CPU recipe (experiment=imdb: batch 64, one-cycle AdamW peaking at 4e-3, 3 epochs) in fp32 on the same GPU: the
# validation accuracy imdb_gpu must reach within 0.3 points.
step imdb_reference 150 python train.py experiment=imdb "$gpu" trainer.precision=32-true data.path="$IMDB" \
  hydra.run.dir="$RUNS/imdb_reference" $quick

fi

if [ "$PART" = 2 ]; then
# 4. The paper's scale: a 1,000,000-document stand-in, encoded with every core, one epoch on the GPU.
documents=$([ -n "${QUICK:-}" ] && echo 20000 || echo 1000000)
step standin 90 python scripts/scale_standin.py "$IMDB" /tmp/standin --documents "$documents"
step scale 330 python scripts/scale.py /tmp/standin --out "$WORK/results/scale_gpu.json" --train "$gpu" \
  data.batch_size=512 +trainer.profiler=simple \
  ${QUICK:+trainer.limit_train_batches=3 trainer.limit_val_batches=2 trainer.limit_test_batches=2}
fi
echo "done in $((SECONDS - start)) s" | tee -a "$WORK/logs/steps.txt"
tar czf "$OUT/session_$PART.tgz" -C "$WORK" .
