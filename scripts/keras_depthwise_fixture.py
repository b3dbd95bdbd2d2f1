#!/usr/bin/env python3
"""Fixture for Ember's DepthwiseConv2D and SeparableConv2D against Keras's: x [6,9,9,3] ->
DepthwiseConv2D(3x3, depth_multiplier 2, strides 2, same) -> SeparableConv2D(4, 3x3, same,
dilation 1, relu) -> DepthwiseConv2D(2x2, valid, tanh, no bias) -> Flatten -> Dense(3)
logits, Keras's initial weights, the predictions, then one Adam step (`train_on_batch`,
lr 0.01) and the weights after it. Written to
model/tests/fixtures/keras_depthwise.safetensors (`init/<tensor>`, `after/<tensor>`, `x`,
`predictions`; labels and the step's loss in the metadata).

    /work/tfvenv/bin/python scripts/keras_depthwise_fixture.py
"""
import os

import numpy as np


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(5)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(9, 9, 3)),
            L.DepthwiseConv2D((3, 3), depth_multiplier=2, strides=(2, 2), padding="same", name="depthwise_conv2d"),
            L.SeparableConv2D(4, (3, 3), padding="same", activation="relu", name="separable_conv2d"),
            L.DepthwiseConv2D((2, 2), activation="tanh", use_bias=False, name="depthwise_conv2d_1"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="dense"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, (6, 9, 9, 3)).astype("float32")
    y = np.array([0, 1, 2, 1, 0, 2])

    def weights(prefix):
        return {f"{prefix}/{l.name}/{w.name}": np.ascontiguousarray(w.numpy().astype("float32"))
                for l in model.layers for w in l.weights}

    tensors = weights("init")
    tensors["predictions"] = model.predict(x, verbose=0).astype("float32")
    loss = float(model.train_on_batch(x, y))
    tensors.update(weights("after"))
    tensors["x"] = x
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_depthwise.safetensors")
    meta = {"labels": ",".join(str(int(v)) for v in y), "loss": repr(loss), "tensorflow": tf.__version__}
    save_file(tensors, out, metadata=meta)
    print("loss", loss, "tensors", sorted(k for k in tensors if k.startswith("init/")), "wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
