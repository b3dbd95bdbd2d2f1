#!/usr/bin/env python3
"""Fixture for Ember's losses against Keras's: each loss on fixed outputs (probabilities,
or logits with `from_logits=True`) and integer labels, its value (the batch mean) and its
gradient with respect to the outputs (tf.GradientTape), written to
model/tests/fixtures/keras_losses.safetensors (`labels`, `logits`, `probs`,
`binary_logits`, `binary_probs`, and per case `<case>/loss`, `<case>/grad`).

    .venv/bin/python scripts/keras_losses_fixture.py
"""
import os

import numpy as np


def main():
    import tensorflow as tf
    from tensorflow import keras
    from safetensors.numpy import save_file

    rng = np.random.default_rng(5)
    n, k = 6, 5
    labels = rng.integers(0, k, n)
    logits = rng.normal(0, 2, (n, k)).astype("float32")
    probs = tf.nn.softmax(logits).numpy().astype("float32")
    probs[0, labels[0]] = 1e-9  # one clipped probability
    blabels = rng.integers(0, 2, n)
    blogits = rng.normal(0, 3, (n, 1)).astype("float32")
    bprobs = tf.sigmoid(blogits).numpy().astype("float32")
    bprobs[1, 0] = 1.0  # clipped
    onehot = np.eye(k, dtype="float32")[labels]
    L = keras.losses
    cases = {
        "sparse_probs": (L.SparseCategoricalCrossentropy(), labels, probs),
        "sparse_logits": (L.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
        "categorical_probs": (L.CategoricalCrossentropy(), onehot, probs),
        "categorical_probs_smooth": (L.CategoricalCrossentropy(label_smoothing=0.1), onehot, probs),
        "categorical_logits_smooth": (L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), onehot, logits),
        "binary_probs": (L.BinaryCrossentropy(), blabels[:, None].astype("float32"), bprobs),
        "binary_probs_smooth": (L.BinaryCrossentropy(label_smoothing=0.2), blabels[:, None].astype("float32"), bprobs),
        "binary_logits": (L.BinaryCrossentropy(from_logits=True), blabels[:, None].astype("float32"), blogits),
        "mse": (L.MeanSquaredError(), onehot, probs),
    }
    tensors = {
        "labels": labels.astype("float32"),
        "binary_labels": blabels.astype("float32"),
        "logits": logits,
        "probs": probs,
        "binary_logits": blogits,
        "binary_probs": bprobs,
    }
    for name, (loss, y, out) in cases.items():
        v = tf.Variable(out)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(y), v)
        tensors[f"{name}/loss"] = np.array([float(value)], dtype="float32")
        tensors[f"{name}/grad"] = tape.gradient(value, v).numpy().astype("float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_losses.safetensors")
    save_file(tensors, out, metadata={"tensorflow": tf.__version__, "keras": keras.__version__})
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
