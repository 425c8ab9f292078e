#!/usr/bin/env python3
"""PyOD PCA fit and score time on 1M x 20 float32 (the workload of
crates/models/examples/iforest_speed.rs), best of 3 after a warm-up fit,
one BLAS thread. Run with the reference venv of ../shared/bench:
    OPENBLAS_NUM_THREADS=1 ~/.cache/palisade-bench/venv/bin/python bench/pyod_pca_speed.py
"""
import time

import numpy as np
from pyod.models.pca import PCA

X = np.random.default_rng(0).standard_normal((1_000_000, 20)).astype(np.float32)
PCA().fit(X)  # warm-up: first-touch page faults and imports
fit = score = float("inf")
for _ in range(3):
    m = PCA()
    t = time.perf_counter()
    m.fit(X)
    fit = min(fit, time.perf_counter() - t)
    t = time.perf_counter()
    m.decision_function(X)
    score = min(score, time.perf_counter() - t)
print(f"pyod PCA 1000000x20: fit {fit:.3f}s, score {score:.3f}s (1 BLAS thread)")
