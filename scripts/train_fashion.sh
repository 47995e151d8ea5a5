#!/usr/bin/env bash
# Train the bundled Fashion-MNIST checkpoints pretrained/fashion_<objective>_<schedule>.safetensors with
# train.py's defaults but lr 2e-3 (the "small" UNet, class-conditional with label dropout 0.1, batch 128, 2000 steps, EMA):
# eps / x0 / v with the cosine schedule (same network and budget, so the app's eps / x0 / v toggle compares like
# with like) and eps with the linear schedule (the original DDPM setting). About 75 minutes each on 2 CPU cores.
#
#     bash scripts/train_fashion.sh                       # all four, one after another
#     bash scripts/train_fashion.sh x0_cosine eps_linear  # only these
#
# Interrupted? Run the same line again: a run whose state exists in runs/ resumes exactly (--resume), a finished
# one is skipped. Each file records its command; pretrained/README.md has the times and samples.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=(eps_cosine x0_cosine v_cosine eps_linear)
for arg in "$@"; do
  case " ${RUNS[*]} " in *" $arg "*) ;; *) echo "train_fashion.sh: unknown run '$arg' (${RUNS[*]})" >&2; exit 2 ;; esac
done
STEPS=2000
finished() {  # the app file exists and holds weights of the last step
  [ -f "$1" ] && python -c "import sys; from explorer.checkpoint import read_config; \
sys.exit(read_config(sys.argv[1]).step < $STEPS)" "$1"
}
for run in "${@:-${RUNS[@]}}"; do
  out="pretrained/fashion_${run}.safetensors"
  # --lr 2e-3: the learning rate these files were trained with (train.py's default was 2e-3 then)
  args=(--dataset fashion-mnist --objective "${run%_*}" --schedule "${run#*_}" --steps "$STEPS" --lr 2e-3 --out "$out")
  if finished "$out"; then
    echo "$out: finished, skipped"
  elif [ -f "runs/fashion_${run}/state.safetensors" ]; then
    python train.py "${args[@]}" --resume
  else
    python train.py "${args[@]}"
  fi
done
