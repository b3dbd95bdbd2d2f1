#!/usr/bin/env python3
"""Fixture for Ember's Adam against Keras's: the reference CNN's initial weights (Keras's
glorot-uniform draws, seed 0), three Adam steps on the first 32 training images, the loss of
each step and the predictions after them, written to
model/tests/fixtures/keras_adam_seed.safetensors (Ember's tensor names, Keras's layouts).

    python3 -m venv .venv && .venv/bin/pip install tensorflow-cpu safetensors
    .venv/bin/python scripts/keras_adam_fixture.py

Reads the vendored MNIST files through keras_seed.py's reader. Runs on one thread, so the
numbers do not depend on TensorFlow's thread count.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from keras_seed import find, read_idx  # noqa: E402


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(0)
    data = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")
    x = (read_idx(find(data, "train-images-idx3-ubyte"))[:32].reshape(-1, 28, 28, 1) / 255.0).astype("float32")
    y = read_idx(find(data, "train-labels-idx1-ubyte"))[:32].astype("int64")

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, (3, 3), activation="relu", name="conv2d"),
            keras.layers.MaxPooling2D((2, 2), name="max_pooling2d"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, activation="softmax", name="dense"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    tensors = {}
    for layer in model.layers:
        for w in layer.weights:
            tensors[f"{layer.name}/{w.name}"] = np.ascontiguousarray(w.numpy().astype("float32"))
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    tensors["x"] = x
    tensors["predictions"] = model.predict(x, verbose=0).astype("float32")
    meta = {
        "labels": ",".join(str(int(v)) for v in y),
        "losses": ",".join(repr(v) for v in losses),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_adam_seed.safetensors")
    save_file(tensors, out, metadata=meta)
    print("losses", losses)
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
