#!/usr/bin/env bash
# Issue 14's side-by-side: the example's convnet and resnet, Ember against Keras, 1 and 2
# threads, time per training step at the example's batch (convnet 128, resnet 64; Ember: the
# mnist example's second epoch on 12,800 of the images; Keras: scripts/keras_seed.py --bench
# 40 at that batch, its median), alternated, ROUNDS rounds (default 2). KERAS_PY: the venv's
# python (default /work/tfvenv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
py=${KERAS_PY:-/work/tfvenv/bin/python}
bin=target/release/examples/mnist
for r in $(seq "$rounds"); do
    for model in convnet resnet; do
        batch=$([ "$model" = resnet ] && echo 64 || echo 128)
        for t in 1 2; do
            e=$("$bin" --model "$model" --batch-size "$batch" --epochs 2 --train-limit 14223 --threads "$t" \
                --quiet --no-pictures |
                grep us/step | sed -n 2p | sed -E 's/.* - ([0-9]+)us\/step.*/\1/')
            k=$("$py" scripts/keras_seed.py --model "$model" --threads "$t" --batch-size "$batch" --bench 40 2>/dev/null |
                grep ms_per_step | sed -E 's/.*"ms_per_step": ([0-9.]+).*/\1/')
            echo "round $r $model ${t}t ember_ms $(echo "$e / 1000" | bc -l | cut -c1-7) keras_ms $k"
        done
    done
done
