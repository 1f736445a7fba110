#!/usr/bin/env bash
# How the embedded models' tuned fronts (and glyphs-pruned's temperature) were made: each model is copied out of
# the package, tuned on training images only, and its diffclass.json copied back. Rerun after retraining.
#   bash scripts/ship_fronts.sh        (about 70 min on 2 CPU cores, most of it the two glyph error tables)
set -euo pipefail
assets=src/diffclass/assets
mkdir -p runs/ship
for model in glyphs glyphs-pruned digits; do
  rm -rf "runs/ship/$model" && cp -r "$assets/$model" "runs/ship/$model"
done
diffclass fit-temperature --model runs/ship/glyphs-pruned --images 200
diffclass tune --model runs/ship/glyphs --images 400 --slots 32
diffclass tune --model runs/ship/glyphs-pruned --images 400 --slots 32
diffclass tune --model runs/ship/digits --images 400 --slots 64
for model in glyphs glyphs-pruned digits; do
  cp "runs/ship/$model/diffclass.json" "$assets/$model/diffclass.json"
done
