#!/usr/bin/env bash
# How the embedded glyph models' temperatures and tuned fronts were made. `glyphs` trained on all 17 training font
# styles, so nothing of its own training data is unseen; its temperature and front (and those of glyphs-pruned
# and the all-class student) are fitted instead on the same 106 characters rendered in typefaces the benchmark
# never uses (scripts/unseen_glyphs.py: eight Liberation styles, Debian's fonts-liberation), which none of them
# nor the plain twin ever saw, so the twin can price and rank its own prefilter compositions on them.
#   bash scripts/ship_fronts.sh        (about an hour on 2 CPU cores, most of it the error tables and replays)
set -euo pipefail
run="diffclass --threads 1"
assets=src/diffclass/assets
python scripts/unseen_glyphs.py runs/unseen-glyphs
mkdir -p runs/ship
for model in glyphs glyphs-pruned glyphs-allclass; do
  rm -rf "runs/ship/$model" && cp -r "$assets/$model" "runs/ship/$model"
  $run fit-temperature --model "runs/ship/$model" --images 400 --images-from folder:runs/unseen-glyphs
done
$run tune --model runs/ship/glyphs --images 400 --slots 32 --images-from folder:runs/unseen-glyphs
$run tune --model runs/ship/glyphs-pruned --images 400 --slots 32 --images-from folder:runs/unseen-glyphs \
  --prefilter plain-glyphs
$run tune --model runs/ship/glyphs-allclass --images 400 --slots 32 --images-from folder:runs/unseen-glyphs
for model in glyphs glyphs-pruned glyphs-allclass; do
  cp "runs/ship/$model/diffclass.json" "$assets/$model/diffclass.json"
done
