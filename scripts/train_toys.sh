#!/usr/bin/env bash
# Train the bundled 2D-toy checkpoints pretrained/toy_<dataset>_<objective>.safetensors with train.py:
# every toy dataset x every objective, cosine schedule, T = 1000, the MLP "small" preset, on the CPU.
# One run at a time on one core (OMP_NUM_THREADS=1), so a machine busy with other work keeps its other cores.
# --lr 2e-3: the learning rate the bundled files were trained with (train.py's default was 2e-3 then).
#
#     bash scripts/train_toys.sh                  # all 15, 2 to 5 minutes each on one core
#     bash scripts/train_toys.sh two-moons v      # only the named datasets / objectives
#
# Results and the commands as run are recorded in pretrained/README.md (bench/toy_checkpoints.py measures them).
set -euo pipefail
cd "$(dirname "$0")/.."

DATASETS=(two-moons swiss-roll 8-gaussians checkerboard blobs)
OBJECTIVES=(eps x0 v)
# 4000 steps fit every toy to the data-vs-data floor but blobs: a class-conditional toy with 6 classes, whose
# null class (used for unconditional samples) sees only the label-dropped tenth of each batch; 8000 steps there.
declare -A STEPS=([two-moons]=4000 [swiss-roll]=4000 [8-gaussians]=4000 [checkerboard]=4000 [blobs]=8000)
for arg in "$@"; do
  case " ${DATASETS[*]} " in *" $arg "*) ONLY_D+=("$arg") ;; *)
    case " ${OBJECTIVES[*]} " in *" $arg "*) ONLY_O+=("$arg") ;; *)
      echo "train_toys.sh: unknown dataset or objective '$arg'" >&2; exit 2 ;; esac ;; esac
done
for dataset in "${ONLY_D[@]:-${DATASETS[@]}}"; do
  for objective in "${ONLY_O[@]:-${OBJECTIVES[@]}}"; do
    OMP_NUM_THREADS=1 python train.py --dataset "$dataset" --objective "$objective" --schedule cosine --T 1000 \
      --model small --steps "${STEPS[$dataset]}" --batch-size 512 --lr 2e-3 --device cpu --sample-every 0 \
      --out "pretrained/toy_${dataset}_${objective}.safetensors" --run-dir "runs/toys/${dataset}_${objective}" --force
  done
done
