#!/usr/bin/env python3
"""Fixture for Ember's losses against Keras's: each loss on fixed outputs (probabilities,
or logits with `from_logits=True`) and integer labels or dense targets (soft class
probabilities, multi-label 0 / 1 and soft, regression values), its value (the batch mean)
and its gradient with respect to the outputs (tf.GradientTape), written to
model/tests/fixtures/keras_losses.safetensors (the inputs by name, and per case
`<case>/loss`, `<case>/grad`).

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
    # Dense targets: soft class probabilities (rows summing to 1), 0 / 1 per output of a
    # four-output multi-label model and soft values there, regression targets.
    soft = rng.dirichlet(np.ones(k), n).astype("float32")
    multi = rng.integers(0, 2, (n, 4)).astype("float32")
    msoft = rng.uniform(0, 1, (n, 4)).astype("float32")
    mlogits = rng.normal(0, 2, (n, 4)).astype("float32")
    mprobs = tf.sigmoid(mlogits).numpy().astype("float32")
    mprobs[2, 3] = 0.0  # clipped
    regress = rng.normal(0, 1, (n, 3)).astype("float32")
    rout = rng.normal(0, 1, (n, 3)).astype("float32")
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
        "dense_categorical_probs": (L.CategoricalCrossentropy(), soft, probs),
        "dense_categorical_logits": (L.CategoricalCrossentropy(from_logits=True), soft, logits),
        "dense_categorical_logits_smooth": (L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), soft, logits),
        "dense_binary_probs": (L.BinaryCrossentropy(), multi, mprobs),
        "dense_binary_logits_smooth": (L.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), multi, mlogits),
        "dense_binary_soft_logits": (L.BinaryCrossentropy(from_logits=True), msoft, mlogits),
        "dense_mse": (L.MeanSquaredError(), regress, rout),
    }
    tensors = {
        "labels": labels.astype("float32"),
        "binary_labels": blabels.astype("float32"),
        "logits": logits,
        "probs": probs,
        "binary_logits": blogits,
        "binary_probs": bprobs,
        "soft": soft,
        "multi": multi,
        "multi_soft": msoft,
        "multi_logits": mlogits,
        "multi_probs": mprobs,
        "regress": regress,
        "regress_out": rout,
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
