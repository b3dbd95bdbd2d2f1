#!/usr/bin/env python3
"""Fixture for Ember's activations against Keras's: `keras.activations.get(name)` and its
gradient (tf.GradientTape) on fixed inputs, written to
model/tests/fixtures/keras_activations.safetensors (`x`, and per activation `<name>/y` and
`<name>/dydx`).

    .venv/bin/python scripts/keras_activations_fixture.py
"""
import os

import numpy as np


def main():
    import tensorflow as tf
    from tensorflow import keras
    from safetensors.numpy import save_file

    x = np.concatenate([np.linspace(-6, 6, 121), [-20, -10, 10, 20, 1e-3, -1e-3, 0.0]]).astype("float32")
    tensors = {"x": x}
    names = ["linear", "relu", "sigmoid", "tanh", "elu", "selu", "gelu", "silu", "swish", "leaky_relu", "softplus"]
    for name in names:
        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = keras.activations.get(name)(xv)
            s = tf.reduce_sum(y)
        tensors[f"{name}/y"] = np.asarray(y, dtype="float32")
        tensors[f"{name}/dydx"] = np.asarray(tape.gradient(s, xv), dtype="float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_activations.safetensors")
    save_file(tensors, out, metadata={"names": ",".join(names), "tensorflow": tf.__version__, "keras": keras.__version__})
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
