#!/usr/bin/env bash
# How the embedded glyph diffusion models were made: `glyphs` trained without 4 of its 17 training font styles
# (--hold-out 0.25, the styles the plain twin's hold-out keeps out with the same seed) and with translation and
# scale augmentation, so it does not learn where the baseline sits; its window, temperature and tuned front come
# from those 4 styles only. `glyphs-pruned` is Diff-Pruning of it, fine-tuned with the same recipe and held-out
# styles; its front holds plain-twin prefilters, tuned with a twin that never trained on those styles either.
#   bash scripts/ship_glyphs.sh        (about 3 hours on one CPU thread: training 75 min, error tables most of the rest)
set -euo pipefail
run="diffclass --threads 1"
assets=src/diffclass/assets
$run train --dataset glyphs --tree glyphs --ancestor-probability 0.2 --hold-out 0.25 --augment shift=0.2,scale=0.1 \
  --out runs/glyphs-v2 --steps 11000 --checkpoint-every 500 --seed 0
$run calibrate --model runs/glyphs-v2 --images 64 --save --plot docs/glyphs_calibration.png \
  --json results/glyphs_calibration.json
$run fit-temperature --model runs/glyphs-v2 --images 400
$run tune --model runs/glyphs-v2 --images 400 --slots 32
cp runs/glyphs-v2/{config.json,diffusion_pytorch_model.safetensors,diffclass.json} "$assets/glyphs/"

$run prune --model runs/glyphs-v2 --method diff-pruning --ratio 0.25 --threshold 0.05 --finetune-steps 2200 \
  --out runs/glyphs-pruned-v2
$run didicm train --dataset glyphs --baseline --hold-out 0.25 --out runs/plain-glyphs-holdout --steps 3000 --seed 0
$run fit-temperature --model runs/glyphs-pruned-v2 --images 200
$run tune --model runs/glyphs-pruned-v2 --images 400 --slots 32 \
  --prefilter plain-glyphs --prefilter-ranker runs/plain-glyphs-holdout
rm -rf "$assets/glyphs-pruned" && mkdir "$assets/glyphs-pruned"
cp runs/glyphs-pruned-v2/{config.json,pruned_architecture.json,pruned_weights.safetensors,diffclass.json} \
  "$assets/glyphs-pruned/"
