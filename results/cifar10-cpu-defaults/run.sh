#!/usr/bin/env bash
# Issue 29's defaults audit: every built-in at its defaults, width 32, batch 64, CIFAR-10,
# 1,500 steps, evaluated every 500 steps (FID/KID/coverage on 500 samples against 1,000 test
# images; reconstructions of 256 test images). Run from the repository root:
#   bash results/cifar10-cpu-defaults/run.sh [--resume results/cifar10-cpu-defaults/runs/<run>]
set -euo pipefail
DATA=${BENCH_DATA_DIR:-../shared/data}
WEIGHTS=${BENCH_FID_WEIGHTS:-../shared/fid/inception-2015-12-05-pool3.pth}
MODELS=gan,lsgan,vae,wae,arvae,bigan,alpha-gan,vaegan,soft-intro-vae,wgan-gp  # cheapest first
widths=()
for m in ${MODELS//,/ }; do widths+=(--set "$m.width=32"); done
if [[ "${1:-}" == "--resume" ]]; then
  exec bench run --resume "$2" --no-progress
fi
exec bench run --models "$MODELS" --dataset cifar10 --data-dir "$DATA" --fid-weights "$WEIGHTS" \
  --budget 1500steps --batch-size 64 --eval-every 500steps \
  --eval-samples 500 --eval-ref test --ref-samples 1000 --recon-samples 256 \
  --checkpoint-every 250steps --results-dir results/cifar10-cpu-defaults/runs --no-progress "${widths[@]}"
