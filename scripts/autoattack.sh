#!/usr/bin/env bash
# AutoAttack's `rand` version (APGD-CE, then APGD-DLR on the images that survive, 20 EOT draws a step, 10 steps
# each) at ℓ∞ 8/255 on the models whose stand-in is cheap enough on a CPU: the twins on every test image, DiDiCM on
# the first 212 glyphs. results/attacks/*-autoattack-8_255.json, beside the PGD and APGD runs of attacks.sh.
#   bash scripts/autoattack.sh [MODEL ...]    (the twins take minutes, DiDiCM about half an hour)
set -euo pipefail
declare -A plan=(
  [plain-glyphs]="--limit 424"
  [plain-glyphs-aug]="--limit 424"
  [plain-emoji]="--limit 681"
  [plain-emoji-aug]="--limit 681"
  [didicm-glyphs]="--limit 212 --strategy cp(steps=8;update=euler)"
)
for model in ${*:-plain-glyphs plain-glyphs-aug plain-emoji plain-emoji-aug didicm-glyphs}; do
  diffclass --threads 1 attack --model "$model" ${plan[$model]} --attack autoattack --eps 8/255 --steps 10 \
    --json "results/attacks/${model##*/}-autoattack-8_255.json"
done
