#!/usr/bin/env python3
"""The reference program in TensorFlow/Keras, on the vendored MNIST files, for side-by-side
timing with `cargo run --release --example mnist`.

    python3 -m venv .venv && .venv/bin/pip install tensorflow-cpu
    .venv/bin/python scripts/keras_seed.py [--threads N] [--epochs 10] [--data-dir data/mnist]

Prints seconds per epoch (and the median of epochs 2..), test loss and accuracy, and the
peak RSS. --threads N sets TensorFlow's intra- and inter-op thread counts (0: its default).
"""
import argparse
import gzip
import os
import resource
import statistics
import struct
import sys
import time


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 8:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    import numpy as np

    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(d, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit(f"{d}: no {stem}[.gz]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    a = ap.parse_args()

    import tensorflow as tf

    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    from tensorflow import keras

    x_train = read_idx(find(a.data_dir, "train-images-idx3-ubyte")).reshape(-1, 28, 28, 1) / 255.0
    y_train = read_idx(find(a.data_dir, "train-labels-idx1-ubyte"))
    x_test = read_idx(find(a.data_dir, "t10k-images-idx3-ubyte")).reshape(-1, 28, 28, 1) / 255.0
    y_test = read_idx(find(a.data_dir, "t10k-labels-idx1-ubyte"))

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, (3, 3), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)

    times = []
    model.fit(x_train, y_train, epochs=a.epochs, batch_size=a.batch_size, callbacks=[Timer()], verbose=2)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    med = statistics.median(times[1:]) if len(times) > 1 else times[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("seconds per epoch: " + " ".join(f"{t:.2f}" for t in times))
    print(f"median s/epoch (epochs 2..): {med:.3f}")
    print(f"test loss {loss:.4f} accuracy {acc:.4f}")
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
