#!/usr/bin/env python3
"""Fixture for Ember's optimizers against Keras's: three `apply_gradients` steps of each
optimizer on one float32 variable with fixed gradients, written to
model/tests/fixtures/keras_optimizers.safetensors (`w0`, `g1`..`g3`, and per optimizer
`<name>/w1`..`<name>/w3`).

    .venv/bin/python scripts/keras_optimizers_fixture.py
"""
import os

import numpy as np


def main():
    import tensorflow as tf
    from tensorflow import keras
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    w0 = rng.uniform(-1, 1, 16).astype("float32")
    gs = [rng.uniform(-0.5, 0.5, 16).astype("float32") for _ in range(3)]
    opts = {
        "adam": keras.optimizers.Adam(learning_rate=0.01),
        "adamw": keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.05),
        "rmsprop": keras.optimizers.RMSprop(learning_rate=0.01),
        "adagrad": keras.optimizers.Adagrad(learning_rate=0.1),
        "sgd": keras.optimizers.SGD(learning_rate=0.1),
        "sgd_momentum": keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        "sgd_nesterov": keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    }
    tensors = {"w0": w0, "g1": gs[0], "g2": gs[1], "g3": gs[2]}
    for name, opt in opts.items():
        v = tf.Variable(w0)
        for k, g in enumerate(gs):
            opt.apply_gradients([(tf.constant(g), v)])
            tensors[f"{name}/w{k + 1}"] = v.numpy().astype("float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_optimizers.safetensors")
    save_file(tensors, out, metadata={"tensorflow": tf.__version__, "keras": keras.__version__})
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
