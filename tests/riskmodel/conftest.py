"""Shared fixtures of the risk model tests: the KCS synthetic data carried in the repository, a small trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from riskmodel import kcs

KCS = Path(__file__).resolve().parents[2] / "data" / "kcs-synthetic"
# Small and fast: the first rows of each period (the files are in date order), shallow trees, few rounds.
TRAIN_ROWS, VALID_ROWS = 12_000, 4_000
SMALL = {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20}
ROUNDS = 60


@pytest.fixture(scope="session")
def kcs_data() -> dict[str, tuple[list, np.ndarray]]:
    splits = kcs.read_dir(KCS)
    (train, y_train), (valid, y_valid) = splits["train"], splits["valid"]
    return {"train": (train[:TRAIN_ROWS], y_train[:TRAIN_ROWS]), "valid": (valid[:VALID_ROWS], y_valid[:VALID_ROWS])}


@pytest.fixture(scope="session")
def small_settings() -> dict:
    """Keyword arguments of training.train for a small, fast model."""
    return {"rounds": ROUNDS, "params": SMALL}


@pytest.fixture(scope="session")
def small_model(kcs_data):
    from riskmodel import training

    items, labels = kcs_data["train"]
    return training.train(items, labels, rounds=ROUNDS, params=SMALL)
