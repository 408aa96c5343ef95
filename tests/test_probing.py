"""Known answers for the offline probes, clustering accuracy and label budgets (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from latentprobe.evaluation import budgets, probing
from latentprobe.evaluation.probing import ProbeSettings


def blobs(n_per_class: int, k: int = 4, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated Gaussian classes: class c is centred at 10 * e_c."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class)
    centres = 10 * np.eye(k, d)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


@pytest.fixture(scope="module")
def separable():
    x_train, y_train = blobs(50, seed=0)
    x_test, y_test = blobs(100, seed=1)
    return x_train, y_train, x_test, y_test


@pytest.mark.parametrize("probe", probing.PROBES)
def test_probe_on_an_identity_encoder_of_separable_data_is_near_perfect(separable, probe):
    x_train, y_train, x_test, y_test = separable
    predicted = probing.fit_predict(probe, x_train, y_train, x_test, ProbeSettings(k=5))
    assert probing.accuracy(y_test, predicted) > 0.98


@pytest.mark.parametrize("probe", probing.PROBES)
def test_probe_on_a_constant_encoder_is_near_chance(separable, probe):
    _, y_train, _, y_test = separable
    constant_train = np.zeros((len(y_train), 3), np.float32)
    constant_test = np.zeros((len(y_test), 3), np.float32)
    predicted = probing.fit_predict(probe, constant_train, y_train, constant_test, ProbeSettings(k=5))
    # Four balanced classes: any constant answer scores 1/4; the features carry nothing to beat it.
    assert probing.accuracy(y_test, predicted) == pytest.approx(0.25, abs=0.05)


def test_knn_reference_set_is_subsampled_to_its_bound(separable):
    x_train, y_train, x_test, y_test = separable
    settings = ProbeSettings(k=3, knn_max_train=40)
    predicted = probing.fit_predict("knn", x_train, y_train, x_test, settings)
    assert probing.accuracy(y_test, predicted) > 0.95


def test_hungarian_accuracy_of_a_permuted_labelling_is_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 300)
    permutation = np.array([3, 5, 0, 1, 4, 2])
    clusters = permutation[y] + 10  # cluster ids need not be class ids
    assert probing.cluster_accuracy(y, clusters) == 1.0
    assert probing.match_clusters(y, clusters) == {int(permutation[c]) + 10: c for c in range(6)}


def test_hungarian_accuracy_counts_a_merged_cluster_once():
    y = np.array([0, 0, 1, 1, 2, 2])
    clusters = np.array([0, 0, 0, 0, 1, 1])  # classes 0 and 1 merged: one of them must be wrong
    assert probing.cluster_accuracy(y, clusters) == pytest.approx(4 / 6)


def test_kmeans_recovers_separable_classes_with_train_matching(separable):
    x_train, y_train, x_test, y_test = separable
    scores = probing.score_clustering(x_train, y_train, x_test, y_test, 4, ProbeSettings())
    assert scores["kmeans_accuracy"] > 0.98
    assert scores["nmi"] > 0.9


def test_per_class_accuracy_and_confusion_matrix():
    y = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 2])
    assert probing.per_class_accuracy(y, p, 4) == [0.5, pytest.approx(2 / 3), 1.0, None]
    assert probing.confusion(y, p, 3).tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]


# ---- label budgets ----

SHA = "ab" * 32


def test_budget_is_class_balanced_deterministic_and_nested():
    y = np.repeat(np.arange(3), [40, 50, 60])
    train_index = np.arange(0, 300, 2)  # rows' positions in the dataset's own train split
    ten = budgets.select_budget(y, train_index, 10, SHA, 0)
    thirty = budgets.select_budget(y, train_index, 30, SHA, 0)
    assert np.bincount(y[ten]).tolist() == [10, 10, 10]
    assert np.array_equal(ten, budgets.select_budget(y, train_index, 10, SHA, 0))
    assert set(ten) <= set(thirty)
    assert not np.array_equal(ten, budgets.select_budget(y, train_index, 10, SHA, 1))
    assert np.array_equal(budgets.select_budget(y, train_index, "all", SHA, 0), np.arange(len(y)))


def test_budget_of_two_runs_shares_the_labels_both_hold():
    """Two runs whose train parts differ (another validation draw) pick the same examples where they can."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 1000)  # the dataset's own train split
    picks = []
    for seed in (1, 2):
        held_out = np.random.default_rng(seed).choice(1000, 100, replace=False)
        train_index = np.setdiff1d(np.arange(1000), held_out)
        chosen = budgets.select_budget(labels[train_index], train_index, 10, SHA, 0)
        picks.append(set(train_index[chosen].tolist()))
    assert len(picks[0] & picks[1]) >= 40  # of 50; an example only differs where a run held it out


def test_budgets_are_saved_and_reused(tmp_path):
    y = np.repeat(np.arange(2), 30)
    train_index = np.arange(60) * 3
    path = tmp_path / "budgets.npz"
    first = budgets.load_or_select_budgets(path, y, train_index, (5, "all"), SHA, 0)
    with np.load(path) as saved:
        assert np.array_equal(saved["budget_5"], train_index[first["5"]])  # dataset train indices
        assert str(saved["sha256"]) == SHA
    # A file written by another draw is what counts: reuse it as it is.
    np.savez(path, sha256=np.array(SHA), eval_seed=np.array(0), budget_5=train_index[[0, 1, 30, 31, 32]])
    again = budgets.load_or_select_budgets(path, y, train_index, (5, "all"), SHA, 0)
    assert again["5"].tolist() == [0, 1, 30, 31, 32]
    assert len(again["all"]) == 60


# ---- tuned probes ----


def test_tuning_folds_shrink_to_the_smallest_class():
    assert probing.tuning_folds(np.repeat(np.arange(3), 10), 5) == 5
    assert probing.tuning_folds(np.array([0, 0, 0, 1, 1, 1, 1]), 5) == 3
    assert probing.tuning_folds(np.array([0, 1, 1, 1]), 5) == 0  # a class with one label: no folds


@pytest.mark.parametrize("probe", probing.PROBES)
def test_untuned_probes_give_the_old_fixed_settings_numbers(separable, probe):
    """--no-tune is eval's probe before tuning: a scikit-learn pipeline with C = 1 and 200 iterations,
    k = settings.k, the MLP's default alpha; the same predictions, bit for bit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train, x_test, _ = separable
    noisy = x_train + np.random.default_rng(3).normal(scale=8, size=x_train.shape).astype(np.float32)
    old = {
        "linear": LogisticRegression(max_iter=200),
        "mlp": MLPClassifier((64,), max_iter=probing.mlp_epochs(len(noisy)), random_state=0),
        "knn": KNeighborsClassifier(n_neighbors=5),
    }[probe]
    expected = make_pipeline(StandardScaler(), old).fit(noisy.astype(np.float64), y_train)
    fit = probing.fit_probe(probe, noisy, y_train, x_test, ProbeSettings(k=5, tune=False))
    assert np.array_equal(fit.prediction, expected.predict(x_test.astype(np.float64)))
    assert fit.tuning == {"reason": "--no-tune"}
    assert fit.chosen == {"linear": {"C": 1.0}, "mlp": {"alpha": 1e-4}, "knn": {"k": 5}}[probe]


def test_tuned_linear_probe_reports_its_choice_and_convergence_and_never_reads_the_test_split(separable):
    x_train, y_train, x_test, _ = separable
    settings = ProbeSettings(linear_cs=(1e-3, 1.0, 100.0))
    fit = probing.fit_probe("linear", x_train, y_train, x_test, settings)
    assert fit.chosen["C"] in (1e-3, 1.0, 100.0)
    assert fit.converged is True and 0 < fit.n_iter < settings.linear_max_iter
    assert fit.tuning["folds"] == 5 and fit.tuning["examples"] == len(y_train)
    assert set(fit.tuning["scores"]) == {"0.001", "1", "100"}
    # Separable blobs: C = 0.001 shrinks the weights towards zero but still ranks the right class first.
    assert all(0.9 <= s <= 1.0 for s in fit.tuning["scores"].values())
    other_test = np.random.default_rng(9).normal(size=x_test.shape).astype(np.float32)
    assert probing.fit_probe("linear", x_train, y_train, other_test, settings).chosen == fit.chosen


def test_tuning_picks_the_regularisation_that_cross_validates_best():
    """Two well separated clusters with a quarter of the labels flipped: one neighbour repeats the noise,
    fifteen vote it down; cross-validation on the labels alone prefers the larger k."""
    rng = np.random.default_rng(0)
    cluster = np.repeat(np.arange(2), 60)
    x = (10.0 * cluster + rng.normal(size=120))[:, None]
    y = np.where(rng.random(120) < 0.25, 1 - cluster, cluster)
    value, tuning, _ = probing.tune("knn", x, y, ProbeSettings(knn_ks=(1, 15)))
    assert value == 15, tuning
    assert tuning["scores"]["15"] > tuning["scores"]["1"] + 0.1


def test_knn_k_is_bounded_by_the_smallest_class_in_a_training_fold(separable):
    x_train, y_train, x_test, _ = separable
    few = np.concatenate([np.flatnonzero(y_train == c)[:5] for c in range(4)])  # 5 labels per class
    fit = probing.fit_probe("knn", x_train[few], y_train[few], x_test, ProbeSettings())
    assert fit.tuning["folds"] == 5
    assert set(fit.tuning["scores"]) == {"1", "3"}  # training folds hold 4 per class: k = 5.. left out
    assert fit.chosen["k"] in (1, 3) and fit.converged is None


def test_one_label_per_class_is_not_tuned_and_says_why(separable):
    x_train, y_train, x_test, _ = separable
    one = np.array([np.flatnonzero(y_train == c)[0] for c in range(4)])
    fit = probing.fit_probe("linear", x_train[one], y_train[one], x_test, ProbeSettings())
    assert fit.tuning["reason"] == "a class has fewer than 2 labels"
    assert fit.chosen == {"C": 1.0}


def test_non_convergence_is_reported_not_hidden(separable):
    x_train, y_train, x_test, _ = separable
    fit = probing.fit_probe("linear", x_train, y_train, x_test, ProbeSettings(linear_max_iter=1))
    assert fit.converged is False and fit.n_iter == 1
    few = np.arange(0, len(y_train), 5)  # 40 labels, every class
    mlp = probing.fit_probe("mlp", x_train[few], y_train[few], x_test, ProbeSettings(tune=False))
    assert mlp.converged is False and mlp.n_iter == probing.mlp_epochs(40)  # 200 epochs, still moving


def test_large_sets_are_tuned_on_a_stratified_subsample():
    x, y = blobs(300, seed=2)  # 1200 labels
    settings = ProbeSettings(tune_max_train=200, linear_cs=(0.1, 1.0))
    fit = probing.fit_probe("linear", x, y, x[:10], settings)
    assert fit.tuning["examples"] == 200 and fit.converged


def test_cached_results_survive_the_process_and_leave_no_temporary_files(tmp_path):
    from latentprobe.evaluation import controls

    key = controls.cache_key("pixels", ("sha", "split"), 3)
    assert key != controls.cache_key("pixels", ("sha", "split"), 4)
    controls.write_cached(tmp_path, key, {"fits": [1, 2]}, {"linear__all": np.arange(5)})
    controls._REUSED.pop(key)  # as a new process would start
    hit = controls.read_cached(tmp_path, key)
    assert hit["meta"] == {"fits": [1, 2]} and np.array_equal(hit["arrays"]["linear__all"], np.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.npz"]
    (tmp_path / f"{key}.npz").write_bytes(b"half a file")  # a writer killed mid-way: a miss, no error
    controls._REUSED.pop(key)
    assert controls.read_cached(tmp_path, key) is None


def test_an_mlp_tuned_on_a_subsample_scales_its_alpha_to_the_whole_set():
    x, y = blobs(100, seed=4)  # 400 labels, tuned on 100
    settings = ProbeSettings(mlp_tune_max_train=100, mlp_alphas=(1.0,), mlp_tune_updates=2000)
    fit = probing.fit_probe("mlp", x, y, x[:5], settings)
    assert fit.tuning["examples"] == 100 and fit.tuning["alpha_scaled_by"] == 0.25
    assert fit.chosen == {"alpha": 0.25}
