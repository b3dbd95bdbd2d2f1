#!/usr/bin/env python3
"""Fixture for Ember's explain module against Keras: the reference CNN
(Conv2D(32,3x3,relu) -> MaxPooling2D(2) -> Flatten -> Dense(10,softmax)) trained in Keras for
one epoch on the first 6,000 vendored MNIST training images, then, on the first 8 test
digits, keras.io's Grad-CAM recipe at layer `conv2d` (the last activation set to None, so the
class score is the logit; the predicted class) and the vanilla gradient of that logit with
respect to the input. Written to model/tests/fixtures/keras_explain.safetensors:
`weights/<layer>/<name>`, `x` [8,28,28,1], `classes` [8] (as f32), `logits` [8,10],
`grad_cam` [8,26,26] (relu'd, before the recipe's division by the maximum),
`grad_cam_upsampled` [8,28,28] (`tf.image.resize`, bilinear), `input_gradients` [8,28,28,1].

    /work/tfvenv/bin/python scripts/keras_explain_fixture.py
"""
import gzip
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "mnist")


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tensorflow import keras
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(7)
    x_train = (idx("train-images-idx3-ubyte.gz")[:6000].astype("float32") / 255.0)[..., None]
    y_train = idx("train-labels-idx1-ubyte.gz")[:6000].astype("int64")
    x = (idx("t10k-images-idx3-ubyte.gz")[:8].astype("float32") / 255.0)[..., None]
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            L.Conv2D(32, (3, 3), activation="relu", name="conv2d"),
            L.MaxPooling2D((2, 2), name="max_pooling2d"),
            L.Flatten(name="flatten"),
            L.Dense(10, activation="softmax", name="dense"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)

    tensors = {}
    for layer in model.layers:
        for w in layer.weights:
            tensors[f"weights/{layer.name}/{w.name}"] = np.ascontiguousarray(w.numpy().astype("float32"))

    # keras.io's recipe (Grad-CAM class activation visualization), one image at a time.
    model.layers[-1].activation = None
    grad_model = keras.models.Model(model.inputs, [model.get_layer("conv2d").output, model.outputs[0]])
    cams, ups, classes, logits, input_grads = [], [], [], [], []
    for i in range(len(x)):
        img = x[i:i + 1]
        with tf.GradientTape() as tape:
            conv_out, preds = grad_model(img)
            pred_index = tf.argmax(preds[0])
            class_channel = preds[:, pred_index]
        grads = tape.gradient(class_channel, conv_out)
        pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
        heatmap = conv_out[0] @ pooled_grads[..., tf.newaxis]
        heatmap = tf.maximum(tf.squeeze(heatmap), 0)
        cams.append(heatmap.numpy())
        ups.append(tf.image.resize(heatmap[..., None], (28, 28), method="bilinear").numpy()[..., 0])
        classes.append(int(pred_index))
        logits.append(preds[0].numpy())
        xi = tf.convert_to_tensor(img)
        with tf.GradientTape() as tape:
            tape.watch(xi)
            score = model(xi)[:, int(pred_index)]
        input_grads.append(tape.gradient(score, xi).numpy()[0])

    tensors["x"] = x
    tensors["classes"] = np.array(classes, dtype="float32")
    tensors["logits"] = np.stack(logits).astype("float32")
    tensors["grad_cam"] = np.stack(cams).astype("float32")
    tensors["grad_cam_upsampled"] = np.stack(ups).astype("float32")
    tensors["input_gradients"] = np.stack(input_grads).astype("float32")
    out = os.path.join(HERE, "..", "model", "tests", "fixtures", "keras_explain.safetensors")
    save_file(tensors, out, metadata={"tensorflow": tf.__version__, "keras": keras.__version__})
    print("classes", classes, "wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
