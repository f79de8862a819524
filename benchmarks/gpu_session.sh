#!/usr/bin/env bash
# One run on a machine with a GPU: training-step speed (eager and compiled), neural neighbours'
# time at 512 px, the optimisation method with each L-BFGS (line search / on the device), then every shipped
# feed-forward model and the AdaIN decoder (with the shift-consistency term, against its 8 px grid)
# continued in parallel with the recipe's settings, weights and logs to OUT.
#
#   benchmarks/gpu_session.sh DATA OUT            # DATA: the test data folder (train/content, train/style)
#   STEPS=2 ADAIN_STEPS=2 CROP=32 BENCH_STEPS=2 LBFGS_SIZE=64 INFERENCE=0 SPEED=0 QUALITY_SIZE=48 \
#       QUALITY_ITERATIONS=2 benchmarks/gpu_session.sh DATA /tmp/out   # a dry run on a CPU
#
# Last, while time is left (DEADLINE seconds after the start), the quality harness scores the new
# weights on the GPU (the optimisation references take ~4 min each on a 2-core CPU, seconds here);
# its results, contact sheet and reference cache come back as quality.tar.gz (put the cache into
# benchmarks/results/cache to reuse it: it is keyed by the pictures' pixels, so carry DATA/content's
# three test photos and the paintings as they are, not downsized).
#
# Model files are fp16 already (under 1 MB each at width 0.5); evaluate them on any machine with
# `benchmarks/bench_quality.py --model OUT/NAME.pt` before shipping.
set -u
DATA=${1:?DATA folder}; OUT=${2:?OUT folder}
STEPS=${STEPS:-3000}          # per model, continued from the shipped weights (--init)
ADAIN_STEPS=${ADAIN_STEPS:-3000}
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

echo "== training-step speed" | tee "$OUT/logs/summary.txt"
for compile in "" "--compile inductor"; do
  [ "$SPEED" = 1 ] || break
  $PY benchmarks/bench_training.py --crop 256 --batch-size 8 --width 1.0 --warmup 10 --steps "$BENCH_STEPS" \
      $compile >> "$OUT/logs/bench_training.txt" 2>&1
  tail -4 "$OUT/logs/bench_training.txt" >> "$OUT/logs/summary.txt"
done

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

echo "== continuing the shipped models ($STEPS steps each, in parallel)" | tee -a "$OUT/logs/summary.txt"
train() {  # NAME STYLE_WEIGHT STYLE...  (each model's own style weight, from its record)
  local name=$1 weight=$2; shift 2
  local styles=(); for s in "$@"; do styles+=(--style "$DATA/train/style/$s.jpg"); done
  $IMPASTO train fast "${styles[@]}" --data "$DATA/train/content" --init "$name" -o "$OUT/$name.pt" \
      --width 0.5 --crop "$CROP" --batch-size "$BATCH" --steps "$STEPS" --style-size "$STYLE_SIZE" --style-weight "$weight" \
      --checkpoint-every 500 --previews "$OUT/logs/$name-previews" -q > "$OUT/logs/$name.log" 2>&1
  echo "$name: exit $?" >> "$OUT/logs/summary.txt"
}
train mosaic 6 mosaic &
train candy 3 candy &
train udnie 0.5 udnie &
train rain_princess 3 rain_princess &
train two-styles 8 starry_night wave_kanagawa &
(  # the shipped decoder, bilinear as shipped, the paintings of the AdaIN check held out as in its record
  $IMPASTO train adain --init adain-decoder --upsample bilinear --shift-weight 1000 --content "$DATA/train/content" \
      --style "$DATA/train/style" --hold-out "$HOLD_OUT" --crop "$CROP" --shorter-side $(( CROP * 5 / 4 )) \
      --batch-size "$BATCH" --lr 5e-5 --lr-decay 0 --steps "$ADAIN_STEPS" --checkpoint-every 500 \
      -o "$OUT/adain-decoder.pt" --previews "$OUT/logs/adain-previews" -q > "$OUT/logs/adain.log" 2>&1
  echo "adain-decoder: exit $?" >> "$OUT/logs/summary.txt"
) &
wait
rm -f "$OUT"/*.ckpt  # optimiser state: not needed to evaluate, too large to bring back
echo "training done at $(( $(date +%s) - started )) s" >> "$OUT/logs/summary.txt"

left=$(( DEADLINE - ($(date +%s) - started) ))
if [ ! -d "$DATA/content" ]; then
  echo "== no quality harness: $DATA/content (the test photos) was not carried" >> "$OUT/logs/summary.txt"
elif [ "$left" -ge 60 ]; then
  echo "== the quality harness on the new weights (stopped after $left s if not done)" | tee -a "$OUT/logs/summary.txt"
  models=(); for name in mosaic candy udnie rain_princess two-styles; do
    [ -f "$OUT/$name.pt" ] && models+=(--model "$OUT/$name.pt"); done
  decoders=(--decoder shipped); [ -f "$OUT/adain-decoder.pt" ] && decoders+=(--decoder "$OUT/adain-decoder.pt")
  mkdir -p "$OUT/quality"
  timeout "$left" $PY benchmarks/bench_quality.py --data "$DATA" "${models[@]}" "${decoders[@]}" \
      --size "$QUALITY_SIZE" --iterations "$QUALITY_ITERATIONS" --results "$OUT/quality" \
      --sheet "$OUT/quality/one-pass-sheet.jpg" > "$OUT/quality/report.md" 2> "$OUT/logs/bench_quality.txt"
  echo "quality harness: exit $? (124: stopped at the deadline; the references done so far are in its cache)" \
      >> "$OUT/logs/summary.txt"
  tar -C "$OUT" -czf "$OUT/quality.tar.gz" quality && rm -rf "$OUT/quality"
else
  echo "== no time left for the quality harness ($left s)" >> "$OUT/logs/summary.txt"
fi
echo "total $(( $(date +%s) - started )) s" >> "$OUT/logs/summary.txt"
tar -C "$OUT" -czf "$OUT/logs.tar.gz" logs && rm -rf "$OUT/logs"
