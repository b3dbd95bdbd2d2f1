#!/usr/bin/env python3
"""Fixture for Ember's optimizers against Keras's: three `apply_gradients` steps of each
optimizer on one float32 variable with fixed gradients, written to
model/tests/fixtures/keras_optimizers.safetensors (`w0`, `g1`..`g3`, and per optimizer
`<name>/w1`..`<name>/w3`), the learning-rate schedules at fixed steps (`steps`,
`schedule/<name>`), and Adam on values where TensorFlow flushes subnormals to zero
(`tiny/w0`, `tiny/m0`, `tiny/v0`, `tiny/g1`..`tiny/g3`, and after each step `tiny/w<k>`,
`tiny/m<k>`, `tiny/v<k>`: 64 values with gradients from 1e-45 to 1e-15 and moments and
weights about the smallest normal, so that operands and results are subnormal), and RMSprop
and Adagrad from the same values, their running sums starting at `tiny/v0`
(`tiny_rmsprop/w<k>`, `tiny_rmsprop/s<k>`, likewise `tiny_adagrad/`), AdamW from them
(`tiny_adamw/w<k>`), AdamW's decay alone on `tiny/w0` (`tiny_adamw_decay/w<k>`), and SGD
without and with (Nesterov) momentum from them (`tiny_sgd*/w<k>`, `tiny_sgd*/m<k>`).

    .venv/bin/python scripts/keras_optimizers_fixture.py
"""
import os

import numpy as np


def check_tininess_after_rounding(tf, rng):
    """Ember's Adam assumes x86's rule under flush-to-zero: a product is zero when its exact
    value rounded to 24 bits with an unbounded exponent is below the smallest normal, even
    where IEEE rounding takes it up to the smallest normal. Checks that TensorFlow does so."""
    tiny = float(np.finfo("float32").tiny)
    xs, cs = [], []
    for c in rng.uniform(0.001, 0.9, 2000).astype("float32"):
        base = int(np.float32(tiny / float(c)).view(np.uint32))
        for d in range(-3, 4):
            x = np.array([base + d], dtype=np.uint32).view(np.float32)[0]
            if tiny - 2.0**-150 <= float(x) * float(c) < tiny - 2.0**-151:
                xs.append(x)
                cs.append(c)
    xs, cs = np.array(xs, dtype="float32"), np.array(cs, dtype="float32")
    with np.errstate(all="ignore"):
        assert np.all(xs * cs == np.float32(tiny)), "IEEE rounds these up to the smallest normal"
    flushed = (tf.constant(xs) * tf.constant(cs)).numpy()
    assert len(xs) > 100 and np.all(flushed == 0), "TensorFlow kept a product in the window"
    print(f"tininess after rounding: {len(xs)} products in the window, all zero in TensorFlow")


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
        "adam_exponential": keras.optimizers.Adam(
            learning_rate=keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=2, decay_rate=0.5)
        ),
    }
    S = keras.optimizers.schedules
    schedules = {
        "exponential": S.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.96),
        "exponential_staircase": S.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.96, staircase=True),
        "cosine": S.CosineDecay(0.1, decay_steps=1000, alpha=0.1),
        "piecewise": S.PiecewiseConstantDecay([100, 500], [0.1, 0.05, 0.01]),
    }
    steps = np.array([0, 1, 2, 5, 10, 99, 100, 101, 499, 500, 501, 999, 1000, 2000], dtype="float32")
    tensors = {"w0": w0, "g1": gs[0], "g2": gs[1], "g3": gs[2]}
    for name, opt in opts.items():
        v = tf.Variable(w0)
        for k, g in enumerate(gs):
            opt.apply_gradients([(tf.constant(g), v)])
            tensors[f"{name}/w{k + 1}"] = v.numpy().astype("float32")
    tensors["steps"] = steps
    n = 64
    mag = lambda lo, hi: (10.0 ** rng.uniform(lo, hi, n)) * rng.choice([-1.0, 1.0], n)
    tiny = {
        "w0": np.where(rng.uniform(0, 1, n) < 0.5, mag(-39, -36), rng.uniform(-1, 1, n)).astype("float32"),
        "m0": mag(-45, -36).astype("float32"),
        "v0": np.abs(mag(-45, -36)).astype("float32"),
    }
    tiny.update({f"g{k}": mag(-45, -15).astype("float32") for k in (1, 2, 3)})
    v = tf.Variable(tiny["w0"])
    opt = keras.optimizers.Adam(learning_rate=1e-3)
    opt.build([v])
    opt._momentums[0].assign(tiny["m0"])
    opt._velocities[0].assign(tiny["v0"])
    for k in (1, 2, 3):
        opt.apply_gradients([(tf.constant(tiny[f"g{k}"]), v)])
        tiny[f"w{k}"] = v.numpy().astype("float32")
        tiny[f"m{k}"] = opt._momentums[0].numpy().astype("float32")
        tiny[f"v{k}"] = opt._velocities[0].numpy().astype("float32")
    tensors.update({f"tiny/{k}": t for k, t in tiny.items()})
    check_tininess_after_rounding(tf, rng)
    # RMSprop and Adagrad on the same tiny values: their running sums start at `tiny/v0`.
    for name, opt, slots in [
        ("rmsprop", keras.optimizers.RMSprop(learning_rate=1e-3), "_velocities"),
        ("adagrad", keras.optimizers.Adagrad(learning_rate=1e-3), "_accumulators"),
    ]:
        v = tf.Variable(tiny["w0"])
        opt.build([v])
        getattr(opt, slots)[0].assign(tiny["v0"])
        for k in (1, 2, 3):
            opt.apply_gradients([(tf.constant(tiny[f"g{k}"]), v)])
            tensors[f"tiny_{name}/w{k}"] = v.numpy().astype("float32")
            tensors[f"tiny_{name}/s{k}"] = getattr(opt, slots)[0].numpy().astype("float32")
    # AdamW on the same tiny values (moments from `tiny/m0`, `tiny/v0`), and its decay alone
    # (zero gradients and moments) where `w·wd·lr` and `w - w·wd·lr` reach subnormals.
    for name, opt, (m0, v0), grads in [
        ("adamw", keras.optimizers.AdamW(learning_rate=1e-3), (tiny["m0"], tiny["v0"]), None),
        ("adamw_decay", keras.optimizers.AdamW(learning_rate=0.9, weight_decay=0.7), (None, None), np.zeros(n, "float32")),
    ]:
        v = tf.Variable(tiny["w0"])
        opt.build([v])
        if m0 is not None:
            opt._momentums[0].assign(m0)
            opt._velocities[0].assign(v0)
        for k in (1, 2, 3):
            g = tiny[f"g{k}"] if grads is None else grads
            opt.apply_gradients([(tf.constant(g), v)])
            tensors[f"tiny_{name}/w{k}"] = v.numpy().astype("float32")
    # SGD on the same tiny values: without momentum, with it and Nesterov's (velocities from
    # `tiny/m0`), and with momentum on zero gradients, where the velocities decay further
    # into the subnormal range (`tiny_<name>/w<k>`, and `tiny_<name>/m<k>` with momentum).
    for name, opt, grads in [
        ("sgd", keras.optimizers.SGD(learning_rate=1e-3), None),
        ("sgd_momentum", keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9), None),
        ("sgd_nesterov", keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9, nesterov=True), None),
        ("sgd_momentum_dead", keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9), np.zeros(n, "float32")),
    ]:
        v = tf.Variable(tiny["w0"])
        opt.build([v])
        if opt.momentum:
            opt.momentums[0].assign(tiny["m0"])
        for k in (1, 2, 3):
            g = tiny[f"g{k}"] if grads is None else grads
            opt.apply_gradients([(tf.constant(g), v)])
            tensors[f"tiny_{name}/w{k}"] = v.numpy().astype("float32")
            if opt.momentum:
                tensors[f"tiny_{name}/m{k}"] = opt.momentums[0].numpy().astype("float32")
    for name, sch in schedules.items():
        tensors[f"schedule/{name}"] = np.array([float(sch(int(t))) for t in steps], dtype="float32")
    out = os.path.join(os.path.dirname(__file__), "..", "model", "tests", "fixtures", "keras_optimizers.safetensors")
    save_file(tensors, out, metadata={"tensorflow": tf.__version__, "keras": keras.__version__})
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
