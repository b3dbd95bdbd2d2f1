#!/usr/bin/env python3
"""Fixture for BatchNormalization over many steps (the resnet's inference question): the
resnet's block in miniature, Conv2D(4, 3x3, same, no bias) -> BatchNormalization -> ReLU ->
Flatten -> Dense(3) logits, Keras's initial weights, 40 Adam steps (lr 0.01, `train_on_batch`)
on fixed batches of 16, then the weights (the moving statistics included), each step's
loss, and inference-mode predictions on 8 other samples. Written to
model/tests/fixtures/keras_batchnorm_steps.safetensors: `init/<tensor>`, `after/<tensor>`,
`x` [40,16,8,8,2], `labels` [40,16] (f32), `losses` [40], `x_test` [8,8,8,2], `predictions` [8,3].

    /work/tfvenv/bin/python scripts/keras_batchnorm_steps_fixture.py
"""
import os

import numpy as np

STEPS, BATCH = 40, 16


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(3)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 2)),
            L.Conv2D(4, (3, 3), padding="same", use_bias=False, name="conv2d"),
            L.BatchNormalization(name="batch_normalization"),
            L.Activation("relu", name="activation"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="dense"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(4)
    x = rng.normal(0.3, 1.0, (STEPS, BATCH, 8, 8, 2)).astype("float32")
    y = rng.integers(0, 3, (STEPS, BATCH))
    x_test = rng.normal(0.3, 1.0, (8, 8, 8, 2)).astype("float32")

    def weights(prefix):
        return {f"{prefix}/{l.name}/{w.name}": np.ascontiguousarray(w.numpy().astype("float32"))
                for l in model.layers for w in l.weights}

    tensors = weights("init")
    losses = [float(model.train_on_batch(x[s], y[s])) for s in range(STEPS)]
    tensors.update(weights("after"))
    tensors["x"] = x
    tensors["labels"] = y.astype("float32")
    tensors["losses"] = np.array(losses, dtype="float32")
    tensors["x_test"] = x_test
    tensors["predictions"] = model.predict(x_test, verbose=0).astype("float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures",
                       "keras_batchnorm_steps.safetensors")
    save_file(tensors, out, metadata={"tensorflow": tf.__version__})
    print("losses", losses[0], losses[-1], "wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
