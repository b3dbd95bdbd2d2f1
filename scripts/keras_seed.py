#!/usr/bin/env python3
"""The benchmark suite's networks in TensorFlow/Keras, for side-by-side runs with Ember.

    python3 -m venv .venv && .venv/bin/pip install tensorflow-cpu
    .venv/bin/python scripts/keras_seed.py [--model seed|convnet|resnet] [--threads N] [--epochs 10]
        [--train-limit N]
    .venv/bin/python scripts/keras_seed.py --model seed|convnet|cifar --threads N --bench 50 [--json F]

Training mode (the default) trains on the vendored MNIST files as the mnist example does
(`seed`: Keras's reference program, batch 32; `convnet`: keras.io's "Simple MNIST convnet",
batch 128, validation split 0.1; `resnet`: its residual network, batch 64, validation split
0.1; `--train-limit N`: the first N training images, as the example's flag) and prints
seconds per epoch (validation included, as Keras's progress line counts it; and the median of
epochs 2..), the validation's share of each epoch, the idle wait before each epoch's first
batch (tf.data's previous iterator being torn down: tens of seconds in some epochs with
TensorFlow 2.21; see `epoch_timer`) and the median epoch without it, test loss and accuracy, and
the peak RSS.

Bench mode (`--bench STEPS`) times training steps of the network on synthetic data of its
shape, as `cargo bench -p ember-benches --bench networks` does (`seed`, `convnet`, `cifar`:
TensorFlow's CIFAR-10 tutorial CNN on 32x32x3, logits): `fit` over STEPS batches, three
epochs, the median epoch of the last two (from its first batch: without the idle wait before
it, which `waits_s` lists) divided by STEPS, at the suite's batch (resnet: 128)
unless `--batch-size` says; `--json F` appends the result as
one JSON line. --threads N sets TensorFlow's intra- and inter-op thread counts (0: its
default).
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


# The programs' training batches (the mnist example's)...
BATCH = {"seed": 32, "convnet": 128, "cifar": 32, "resnet": 64}
# ...and the benchmark suite's (`--bench`; `networks/resnet` runs batches of 128).
BENCH_BATCH = {"seed": 32, "convnet": 128, "cifar": 32, "resnet": 128}
# The example's label smoothing per model (`--label-smoothing` in model/examples/mnist).
LABEL_SMOOTHING = {"resnet": 0.1}
INPUT = {"seed": (28, 28, 1), "convnet": (28, 28, 1), "cifar": (32, 32, 3), "resnet": (28, 28, 1)}


def resnet(keras):
    """The example's `--model resnet`, layer for layer."""
    L = keras.layers
    conv = lambda f, s, k: L.Conv2D(f, (k, k), strides=(s, s), padding="same", use_bias=False)
    bn_relu = lambda t: L.Activation("relu")(L.BatchNormalization()(t))
    x = keras.Input(shape=(28, 28, 1))
    h = bn_relu(conv(32, 1, 3)(x))
    for _ in range(2):
        r = bn_relu(conv(32, 1, 3)(h))
        r = L.BatchNormalization()(conv(32, 1, 3)(r))
        h = L.Activation("relu")(L.Add()([h, r]))
    r = bn_relu(conv(64, 2, 3)(h))
    r = L.BatchNormalization()(conv(64, 1, 3)(r))
    s = L.BatchNormalization()(conv(64, 2, 1)(h))
    h = L.Activation("relu")(L.Add()([r, s]))
    y = L.Dense(10)(L.GlobalAveragePooling2D()(h))
    return keras.Model(x, y)


def build(keras, name, decay_steps=1000, label_smoothing=0.0):
    """The suite's network `name`, compiled as the Ember benchmark compiles it (the resnet as
    the example trains it: Adam from 0.003 decayed to 0 along a cosine over `decay_steps`;
    with label smoothing, categorical cross-entropy on one-hot labels)."""
    if name == "resnet":
        model = resnet(keras)
        if label_smoothing:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        lr = keras.optimizers.schedules.CosineDecay(0.003, decay_steps)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
        return model
    L = keras.layers
    conv = lambda f: L.Conv2D(f, (3, 3), activation="relu")
    body = {
        "seed": [conv(32), L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(10, activation="softmax")],
        "convnet": [conv(32), L.MaxPooling2D((2, 2)), conv(64), L.MaxPooling2D((2, 2)), L.Flatten(),
                    L.Dropout(0.5), L.Dense(10, activation="softmax")],
        "cifar": [conv(32), L.MaxPooling2D((2, 2)), conv(64), L.MaxPooling2D((2, 2)), conv(64), L.Flatten(),
                  L.Dense(64, activation="relu"), L.Dense(10)],
    }[name]
    model = keras.Sequential([keras.Input(shape=INPUT[name])] + body)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=(name == "cifar"))
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def epoch_timer(keras):
    """A callback that records each epoch's wall time as Keras's progress line counts it (its
    validation included; `times`), the validation's own share of it (`val_times`), and the
    time from the epoch's start to its first batch (`waits`): there `fit` drops the previous
    epoch's tf.data iterator, whose destructor waits for tf.data's autotuning thread to wake
    from its timed sleep (up to a minute, idle; seen with TensorFlow 2.21 in `gdb`:
    `~LogicalThreadWrapper` waiting on `Model::OptimizeLoop`)."""

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.val_times, self.waits = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()
            self.v = 0.0
            self.first = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first is None:
                self.first = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.v0 = time.perf_counter()

        def on_test_end(self, logs=None):
            self.v += time.perf_counter() - self.v0

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t)
            self.val_times.append(self.v)
            self.waits.append(self.first - self.t)

    return EpochTimer()


def bench(keras, a):
    import json
    import numpy as np

    model = build(keras, a.model)
    batch = a.batch_size or BENCH_BATCH[a.model]
    n = batch * a.bench
    rng = np.random.default_rng(7)
    x = rng.random((n,) + INPUT[a.model], dtype=np.float32)
    x[x < 0.6] = 0.0
    y = (np.arange(n) % 10).astype("int64")
    timer = epoch_timer(keras)
    model.fit(x, y, epochs=3, batch_size=batch, shuffle=False, callbacks=[timer], verbose=0)
    times = [t - w for t, w in zip(timer.times, timer.waits)]
    ms = statistics.median(times[1:]) / a.bench * 1e3
    out = {"model": a.model, "threads": a.threads, "batch": batch, "ms_per_step": ms, "epochs_s": times,
           "waits_s": timer.waits}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="seed", choices=["seed", "convnet", "cifar", "resnet"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--train-limit", type=int, default=None,
                    help="train on the first N training images only (the example's --train-limit)")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps on synthetic data")
    ap.add_argument("--json", default=None)
    ap.add_argument("--label-smoothing", type=float, default=None,
                    help="resnet only; default: the example's (LABEL_SMOOTHING)")
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    a = ap.parse_args()

    import tensorflow as tf

    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    from tensorflow import keras

    if a.bench:
        return bench(keras, a)
    if a.model == "cifar":
        sys.exit("cifar runs in --bench mode only (CIFAR-10 is not vendored)")
    a.epochs = a.epochs or {"seed": 10, "convnet": 15, "resnet": 5}[a.model]
    a.batch_size = a.batch_size or BATCH[a.model]

    x_train = read_idx(find(a.data_dir, "train-images-idx3-ubyte")).reshape(-1, 28, 28, 1) / 255.0
    y_train = read_idx(find(a.data_dir, "train-labels-idx1-ubyte"))
    x_test = read_idx(find(a.data_dir, "t10k-images-idx3-ubyte")).reshape(-1, 28, 28, 1) / 255.0
    y_test = read_idx(find(a.data_dir, "t10k-labels-idx1-ubyte"))
    if a.train_limit:
        x_train, y_train = x_train[: a.train_limit], y_train[: a.train_limit]

    split = 0.1 if a.model in ("convnet", "resnet") else 0.0
    steps = a.epochs * -(-int(len(x_train) * (1 - split)) // a.batch_size)
    ls = LABEL_SMOOTHING.get(a.model, 0.0) if a.label_smoothing is None else a.label_smoothing
    model = build(keras, a.model, decay_steps=steps, label_smoothing=ls)
    if ls:
        y_train, y_test = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)

    timer = epoch_timer(keras)
    model.fit(x_train, y_train, epochs=a.epochs, batch_size=a.batch_size, validation_split=split,
              callbacks=[timer], verbose=2)
    times, val_times, waits = timer.times, timer.val_times, timer.waits
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    after_first = lambda xs: statistics.median(xs[1:]) if len(xs) > 1 else xs[0]
    med = after_first(times)
    med_busy = after_first([t - w for t, w in zip(times, waits)])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("seconds per epoch: " + " ".join(f"{t:.2f}" for t in times))
    print("of which validation: " + " ".join(f"{t:.2f}" for t in val_times))
    print("of which waiting before the first batch: " + " ".join(f"{t:.2f}" for t in waits))
    print(f"median s/epoch (epochs 2..): {med:.3f}")
    print(f"median s/epoch without that wait (epochs 2..): {med_busy:.3f}")
    print(f"test loss {loss:.4f} accuracy {acc:.4f}")
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
