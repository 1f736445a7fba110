#!/usr/bin/env bash
# How the embedded digits model was made: trained without a fifth of each class's training digits (279 of 1,397),
# its temperature fitted and its front tuned on those 279 only, then measured on the 400 test digits.
#   bash scripts/ship_digits.sh        (about 20 min of training and 5 of tuning on one CPU thread)
set -euo pipefail
diffclass --threads 1 train --dataset digits --hold-out 0.2 --out runs/digits --steps 3000 --seed 0
diffclass --threads 1 fit-temperature --model runs/digits --images 279
diffclass --threads 1 tune --model runs/digits --images 279 --slots 64
cp runs/digits/{config.json,diffusion_pytorch_model.safetensors,diffclass.json} src/diffclass/assets/digits/
diffclass --threads 1 evaluate --model digits --json results/digits_default.json
diffclass --threads 1 bench --model digits --strategy exhaustive --strategy adaptive --strategy auto \
  --json results/digits_strategies.json
