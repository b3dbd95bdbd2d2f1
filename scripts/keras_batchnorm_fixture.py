#!/usr/bin/env python3
"""Fixture for Ember's BatchNormalization against Keras's: a conv-BN-ReLU block under a
dense head (logits), Keras's initial weights, one Adam step (`train_on_batch`, batch
statistics) on 6 fixed samples, then the weights (moving statistics included) and the
inference-mode predictions after it. Written to
model/tests/fixtures/keras_batchnorm.safetensors (`init/<tensor>`, `after/<tensor>`, `x`,
`predictions`; labels and the step's loss in the metadata).

    .venv/bin/python scripts/keras_batchnorm_fixture.py
"""
import os

import numpy as np


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(1)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 2)),
            L.Conv2D(4, (3, 3), name="conv2d"),
            L.BatchNormalization(name="batch_normalization"),
            L.Activation("relu", name="activation"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="dense"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(2)
    x = rng.normal(0.5, 1.0, (6, 8, 8, 2)).astype("float32")
    y = np.array([0, 1, 2, 1, 0, 2])

    def weights(prefix):
        out = {}
        for layer in model.layers:
            for w in layer.weights:
                out[f"{prefix}/{layer.name}/{w.name}"] = np.ascontiguousarray(w.numpy().astype("float32"))
        return out

    tensors = weights("init")
    loss = float(model.train_on_batch(x, y))
    tensors.update(weights("after"))
    tensors["x"] = x
    tensors["predictions"] = model.predict(x, verbose=0).astype("float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_batchnorm.safetensors")
    meta = {"labels": ",".join(str(int(v)) for v in y), "loss": repr(loss), "tensorflow": tf.__version__}
    save_file(tensors, out, metadata=meta)
    print("loss", loss, "wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
