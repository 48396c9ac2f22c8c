"""examples/train_digits.py: its backprop is right, it learns, and both backends agree."""
import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"

pytest.importorskip("sklearn", reason="the example needs scikit-learn (the 'example' extra)")


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(example):
    return example.load_data()


def test_the_data_is_float32_nhwc_digits_with_a_stratified_split(data):
    x_train, y_train, x_test, y_test = data
    assert x_train.shape == (1437, 16, 16, 1) and x_test.shape == (360, 16, 16, 1)
    assert x_train.dtype == x_test.dtype == np.float32
    assert abs(float(x_train.mean())) < 1e-5 and abs(float(x_train.std()) - 1) < 1e-5
    assert set(y_train) == set(y_test) == set(range(10))


def test_the_example_gradients_match_numerical_gradients(example, rng, data):
    """The example's hand-written backprop, checked through numbaconv in float64."""
    import numbaconv

    x = data[0][:3].astype(np.float64)
    y = data[1][:3]
    params = {k: v.astype(np.float64) for k, v in
              example.init_params(np.random.default_rng(1), x.shape[1]).items()}
    # Nonzero biases too.
    params = {k: v + 0.01 * rng.standard_normal(v.shape) for k, v in params.items()}
    loss, grads = example.loss_and_grads(numbaconv, params, x, y)
    assert all(grads[k].dtype == np.float64 and grads[k].shape == params[k].shape for k in params)
    h = 1e-6
    for name, value in params.items():
        for flat in rng.choice(value.size, size=min(4, value.size), replace=False):
            ix = np.unravel_index(flat, value.shape)
            old = value[ix]
            value[ix] = old + h
            plus = example.loss_and_grads(numbaconv, params, x, y)[0]
            value[ix] = old - h
            minus = example.loss_and_grads(numbaconv, params, x, y)[0]
            value[ix] = old
            numerical = (plus - minus) / (2 * h)
            assert grads[name][ix] == pytest.approx(numerical, rel=1e-4, abs=1e-7), (name, ix)


def test_training_lowers_the_loss(example, data):
    history = example.train("numba", epochs=1, max_steps=30, verbose=False, data=data)
    losses = history["step_loss"]
    assert len(losses) == 30 and len(history["epochs"]) == 1
    assert losses[0] == pytest.approx(np.log(10), rel=0.1)  # about chance at the start
    assert np.mean(losses[-5:]) < 0.4 * np.mean(losses[:5])  # measured 0.10-0.16 (seeds 0-2)
    # The whole training set, before and after the 30 steps.
    initial = example.init_params(np.random.default_rng(0), 16)
    before = example.evaluate(example.backend("numba"), initial, data[0], data[1])[0]
    after = example.evaluate(example.backend("numba"), history["params"], data[0], data[1])[0]
    assert after < 0.5 * before
    assert history["params"]["w1"].dtype == np.float32


def test_numba_and_reference_backends_give_the_same_first_steps(example, data):
    runs = [example.train(name, epochs=1, max_steps=6, verbose=False, data=data)
            for name in ("numba", "reference")]
    numba_run, reference_run = runs
    np.testing.assert_allclose(numba_run["step_loss"], reference_run["step_loss"], rtol=1e-4)
    for name, value in numba_run["params"].items():
        np.testing.assert_allclose(value, reference_run["params"][name], rtol=1e-3, atol=1e-5)


def test_the_command_line_prints_a_bar_and_each_epoch(example, capsys):
    history = example.main(["--backend", "reference", "--epochs", "1", "--batch-size", "128",
                            "--seed", "3"])
    out = capsys.readouterr().out
    assert "] 12/12 loss" in out  # the progress bar's last update: ceil(1437 / 128) steps
    assert "epoch  1/1  loss" in out and "test acc" in out and "time" in out
    assert f"final test accuracy {100 * history['test_accuracy']:.1f}%" in out
    assert len(history["epochs"]) == 1 and history["backend"] == "reference"


def test_an_unknown_backend_is_refused(example):
    with pytest.raises(ValueError, match="backend must be"):
        example.backend("torch")
