#!/usr/bin/env bash
# One run on a machine with a GPU: the arbitrary-style network continued from the shipped weights with bilinear upsampling
# at two style weights in parallel (and, with FAST=1, two feed-forward models beside it), then, while
# time is left, bench_arbitrary scores each candidate (the optimisation references take ~4 min each
# on a 2-core CPU, seconds here); its reports, sheets and reference cache come back as
# quality.tar.gz (put the cache into benchmarks/results/cache to reuse it: it is keyed by the
# pictures' pixels, so carry DATA/content and DATA/style as they are, not downsized). BENCHES=1
# first runs the speed benches (training steps, neighbours, L-BFGS, one-pass inference).
#
#   benchmarks/gpu_session.sh DATA OUT            # DATA: the test data folder (train/content, train/style)
#   ARB_STEPS=2 ARB_CROP=32 ARB_BATCH=2 QUALITY_SIZE=48 QUALITY_ITERATIONS=2 benchmarks/gpu_session.sh DATA /tmp/out
#                                                  # a dry run on a CPU
#
# Model files are fp16 (about 4 MB each); look at the sheets and compare the reports before shipping
# one as src/impasto/models/arbitrary.pt.
set -u
DATA=${1:?DATA folder}; OUT=${2:?OUT folder}
STEPS=${STEPS:-3000}          # per feed-forward model (FAST=1), continued from the shipped weights (--init)
FAST=${FAST:-0}               # 1: also continue mosaic and two-styles beside the arbitrary network
ARB_STEPS=${ARB_STEPS:-8000}  # the arbitrary network, continued from the shipped one (--init)
ARB_CROP=${ARB_CROP:-192}
TRAIN_SECONDS=${TRAIN_SECONDS:-420}  # the training runs are stopped (Ctrl-C: model written) after this
ARB_BATCH=${ARB_BATCH:-16}
BENCHES=${BENCHES:-0}         # 1: first the speed benches (training steps, neighbours, L-BFGS, inference)
HOLD_OUT=asheville.jpg,la_muse.jpg,picasso_self_portrait.jpg,starry_night.jpg,the_scream.jpg,woman-with-hat-matisse.jpg
CROP=${CROP:-256}
BATCH=${BATCH:-8}
STYLE_SIZE=${STYLE_SIZE:-384} # the painting's size the harness scores against
BENCH_STEPS=${BENCH_STEPS:-50}
LBFGS_SIZE=${LBFGS_SIZE:-512}
INFERENCE=${INFERENCE:-1}     # 0: skip the one-pass inference benchmarks (a dry run)
SPEED=${SPEED:-1}             # 0: skip the training-step speed (a dry run: 256 px steps take ~30 s on a CPU)
QUALITY_SIZE=${QUALITY_SIZE:-384}
QUALITY_ITERATIONS=${QUALITY_ITERATIONS:-50}
DEADLINE=${DEADLINE:-690}     # seconds after the start by which the quality harness is stopped
PY=${PY:-.venv/bin/python}
IMPASTO=${IMPASTO:-.venv/bin/impasto}
mkdir -p "$OUT/logs"
started=$(date +%s)

: > "$OUT/logs/summary.txt"
[ "$BENCHES" = 1 ] || SPEED=0
[ "$SPEED" = 1 ] && echo "== training-step speed" | tee -a "$OUT/logs/summary.txt"
for compile in "" "--compile inductor"; do
  [ "$SPEED" = 1 ] || break
  $PY benchmarks/bench_training.py --crop 256 --batch-size 8 --width 1.0 --warmup 10 --steps "$BENCH_STEPS" \
      $compile >> "$OUT/logs/bench_training.txt" 2>&1
  tail -4 "$OUT/logs/bench_training.txt" >> "$OUT/logs/summary.txt"
done

if [ "$BENCHES" = 1 ]; then
echo "== neural neighbours at 512 px (goal <= 1 s on a GPU; the first run loads and warms up)" | tee -a "$OUT/logs/summary.txt"
photo=$(ls "$DATA"/train/content/*.jpg | head -1)
for run in 1 2 3; do
  began=$(date +%s.%N)
  $IMPASTO stylize --method neighbours "$photo" "$DATA/train/style/starry_night.jpg" -o "$OUT/logs/neighbours.png" \
      --size 512 -q >> "$OUT/logs/neighbours.txt" 2>&1
  code=$?
  seconds=$($PY -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))' "$began" "$(date +%s.%N)")
  echo "neighbours run $run: exit $code, $seconds s (command start to file, process start included)" \
      >> "$OUT/logs/summary.txt"
done

echo "== the optimisation method at $LBFGS_SIZE px: lbfgs (line search) and lbfgs-device, two rounds" | tee -a "$OUT/logs/summary.txt"
$PY benchmarks/bench_lbfgs.py --size "$LBFGS_SIZE" --rounds 2 > "$OUT/logs/bench_lbfgs.txt" 2>&1
tail -8 "$OUT/logs/bench_lbfgs.txt" >> "$OUT/logs/summary.txt"

if [ "$INFERENCE" = 1 ]; then
  echo "== one-pass inference (bf16 weights, channels-last) and video frames per network call" | tee -a "$OUT/logs/summary.txt"
  $PY benchmarks/bench_feedforward.py --only speed --device cuda > "$OUT/logs/bench_feedforward.txt" 2>&1
  tail -20 "$OUT/logs/bench_feedforward.txt" >> "$OUT/logs/summary.txt"
  $PY benchmarks/bench_video.py --methods fast --batch 1,8 --device cuda > "$OUT/logs/bench_video.txt" 2>&1
  tail -6 "$OUT/logs/bench_video.txt" >> "$OUT/logs/summary.txt"
fi
fi  # BENCHES

echo "== the arbitrary-style network continued from the shipped one with bilinear upsampling ($ARB_STEPS steps, two style weights)" | tee -a "$OUT/logs/summary.txt"
arbitrary() {  # NAME STYLE_WEIGHT
  timeout -s INT "$TRAIN_SECONDS" $IMPASTO train arbitrary --init arbitrary --content "$DATA/train/content" --style "$DATA/train/style" \
      --hold-out "$HOLD_OUT" --crop "$ARB_CROP" --shorter-side $(( ARB_CROP * 5 / 3 )) --style-crop "$ARB_CROP" \
      --style-shorter-side $(( ARB_CROP * 2 )) --batch-size "$ARB_BATCH" --style-loss swd --style-weight "$2" \
      --upsample bilinear --lr 2e-4 --steps "$ARB_STEPS" \
      --checkpoint-every 500 -o "$OUT/$1.pt" --previews "$OUT/logs/$1-previews" -q > "$OUT/logs/$1.log" 2>&1
  echo "$1: exit $? (130: stopped after TRAIN_SECONDS, model written)" >> "$OUT/logs/summary.txt"
}
arbitrary arbitrary-swd30 30 &  # bilinear upsampling: no 2 px stripe lattice (the CPU run's recipe)
arbitrary arbitrary-swd25 25 &
if [ "$FAST" = 1 ]; then  # the shipped feed-forward models continued (issue 11's recipe), beside it
  train() {  # NAME STYLE_WEIGHT STYLE...  (each model's own style weight, from its record)
    local name=$1 weight=$2; shift 2
    local styles=(); for s in "$@"; do styles+=(--style "$DATA/train/style/$s.jpg"); done
    $IMPASTO train fast "${styles[@]}" --data "$DATA/train/content" --init "$name" -o "$OUT/$name.pt" \
        --width 0.5 --crop "$CROP" --batch-size "$BATCH" --steps "$STEPS" --style-size "$STYLE_SIZE" --style-weight "$weight" \
        --checkpoint-every 500 --previews "$OUT/logs/$name-previews" -q > "$OUT/logs/$name.log" 2>&1
    echo "$name: exit $?" >> "$OUT/logs/summary.txt"
  }
  train mosaic 6 mosaic &
  train two-styles 8 starry_night wave_kanagawa &
fi
wait
rm -f "$OUT"/*.ckpt  # optimiser state: not needed to evaluate, too large to bring back
echo "training done at $(( $(date +%s) - started )) s" >> "$OUT/logs/summary.txt"

left=$(( DEADLINE - ($(date +%s) - started) ))
if [ ! -d "$DATA/content" ]; then
  echo "== no quality harness: $DATA/content (the test photos) was not carried" >> "$OUT/logs/summary.txt"
elif [ "$left" -ge 60 ]; then
  echo "== the quality harness on the new weights (stopped after $left s if not done)" | tee -a "$OUT/logs/summary.txt"
  mkdir -p "$OUT/quality"
  for name in arbitrary-swd30 arbitrary-swd25; do
    [ -f "$OUT/$name.pt" ] || continue
    remaining=$(( DEADLINE - ($(date +%s) - started) ))
    [ "$remaining" -ge 30 ] || break
    timeout "$remaining" $PY benchmarks/bench_arbitrary.py --data "$DATA" --model "$OUT/$name.pt" --skip-commands \
        --size "$QUALITY_SIZE" --iterations "$QUALITY_ITERATIONS" --results "$OUT/quality" \
        --sheet "$OUT/quality/$name-sheet.jpg" > "$OUT/quality/$name.md" 2>> "$OUT/logs/bench_arbitrary.txt"
    echo "bench_arbitrary $name: exit $? (124: stopped at the deadline; references so far are in its cache)" \
        >> "$OUT/logs/summary.txt"
  done
  tar -C "$OUT" -czf "$OUT/quality.tar.gz" quality && rm -rf "$OUT/quality"
else
  echo "== no time left for the quality harness ($left s)" >> "$OUT/logs/summary.txt"
fi
echo "total $(( $(date +%s) - started )) s" >> "$OUT/logs/summary.txt"
tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs && rm -rf "$OUT/logs"
