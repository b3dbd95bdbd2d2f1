#!/usr/bin/env python3
"""Fixture for Ember's `Model::summary` against Keras's `model.summary()`: the text Keras
prints (no colours) for the reference CNN (a Sequential) at its default line length and
at 76 (what Keras prints into a pipe or an 80-column terminal), a residual block with
two branches of unequal length (a functional model with branches: four columns,
"Connected to", Keras's row order, wrapped and cut cells), a functional chain (three
columns, with the input layer's row), and the chain after a training step with Adam, SGD
and RMSprop on a schedule (the optimizer's variables counted), written to
model/tests/fixtures/keras_summary.txt, one `=== <case>` line before each.

Keras clips its default line length (88 for sequential-like models, 108 otherwise) to the
terminal's width less 4; COLUMNS=200 here gives the defaults.

    .venv/bin/python scripts/keras_summary_fixture.py
"""
import os
import sys

os.environ["COLUMNS"] = "200"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    import keras
    import keras_seed

    def chain():
        x = keras.Input(shape=(12, 12, 1))
        h = keras.layers.Conv2D(8, (3, 3), activation="relu")(x)
        h = keras.layers.MaxPooling2D((2, 2))(h)
        y = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(h))
        return keras.Model(x, y)

    def branches():
        L = keras.layers
        conv = lambda k: L.Conv2D(4, (k, k), padding="same", use_bias=False)
        x = keras.Input(shape=(8, 8, 1))
        h = L.Activation("relu")(L.BatchNormalization()(conv(3)(x)))
        h = L.BatchNormalization()(conv(3)(h))
        s = L.BatchNormalization()(conv(1)(x))
        y = L.Dense(10)(L.GlobalAveragePooling2D()(L.Add()([h, s])))
        return keras.Model(x, y)

    def trained(optimizer):
        # The chain after one training step: Keras builds the optimizer then, and the
        # summary counts its variables ("Optimizer params").
        def make():
            import numpy as np

            model = chain()
            model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy")
            model.fit(np.zeros((2, 12, 12, 1), "float32"), np.array([0, 1]), batch_size=2, verbose=0)
            return model

        return make

    O = keras.optimizers
    cases = [
        ("seed", lambda: keras_seed.build(keras, "seed"), None),
        ("seed_76", lambda: keras_seed.build(keras, "seed"), 76),
        ("branches", branches, None),
        ("chain", chain, None),
        ("chain_adam", trained(O.Adam), None),
        ("chain_sgd", trained(O.SGD), None),
        ("chain_rmsprop_cosine", trained(lambda: O.RMSprop(O.schedules.CosineDecay(0.01, 100))), None),
    ]
    out = []
    for name, make, line_length in cases:
        # Fresh name counters, so that layers are named as in a program with one model.
        keras.backend.clear_session()
        model = make()
        text = []
        model.summary(line_length=line_length, print_fn=lambda s, **_: text.append(s))
        out.append(f"=== {name}\n" + "".join(text))
    path = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_summary.txt")
    with open(path, "w") as f:
        f.write("".join(out))
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
