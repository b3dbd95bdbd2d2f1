#!/usr/bin/env bash
# Data-parallel training against threads on one machine (issue 15): the mnist example's
# seed and convnet networks, 1 process x 2 threads vs mpirun -np 2 x 1 thread, alternated,
# ROUNDS rounds (default 3); prints each run's epoch-2 time per step and epoch time, and the
# combine time per step of the MPI runs. Needs the MPI build:
#   cargo build --release -p ember-model --features mpi --example mnist
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
bin=target/release/examples/mnist
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun -np 2 --mca btl self,vader --mca oob_tcp_if_include lo)
for r in $(seq "$rounds"); do
    for model in seed convnet; do
        for how in threads mpi; do
            if [ "$how" = threads ]; then
                out=$("$bin" --model "$model" --epochs 2 --quiet --no-pictures --threads 2)
            else
                out=$("${mpi[@]}" "$bin" --model "$model" --epochs 2 --quiet --no-pictures --threads 1 </dev/null)
            fi
            step=$(echo "$out" | grep -E "us/step" | sed -n 2p | sed -E 's/.* - ([0-9.]+)s - ([0-9]+)us\/step.*/\2 \1/')
            comb=$(echo "$out" | grep -E "^Combining" | sed -E 's/.*: ([0-9]+) us per step \(([0-9.]+)%.*/\1 \2/' || true)
            echo "round $r $model $how us/step,epoch_s: $step combine_us,pct: ${comb:-}"
        done
    done
done
