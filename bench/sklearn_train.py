"""scikit-learn side of `npm run bench:train`: fits the same files with matched parameters.

Reads raw little-endian float64 features and uint8 labels written by bench/train.ts and prints
one JSON object: {gbdt: {fitSeconds, testAuc}, logreg: {fitSeconds, testAuc}}.
Run with Debian's /usr/bin/python3 (python3-sklearn).
"""
import json
import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load(prefix, cols):
    x = np.fromfile(prefix + ".x.f64", dtype="<f8").reshape(-1, cols)
    y = np.fromfile(prefix + ".y.u8", dtype=np.uint8)
    return x, y


def main():
    data_dir, cols = sys.argv[1], int(sys.argv[2])
    params = json.loads(sys.argv[3])
    x_train, y_train = load(data_dir + "/train", cols)
    x_test, y_test = load(data_dir + "/test", cols)
    out = {}

    gbdt = HistGradientBoostingClassifier(
        max_iter=params["gbdt"]["maxIter"],
        learning_rate=params["gbdt"]["learningRate"],
        max_leaf_nodes=params["gbdt"]["maxLeafNodes"],
        min_samples_leaf=params["gbdt"]["minSamplesLeaf"],
        l2_regularization=params["gbdt"]["l2Regularization"],
        max_bins=params["gbdt"]["maxBins"],
        early_stopping=False,
        random_state=0,
    )
    started = time.perf_counter()
    gbdt.fit(x_train, y_train)
    fit = time.perf_counter() - started
    out["gbdt"] = {"fitSeconds": fit, "testAuc": roc_auc_score(y_test, gbdt.predict_proba(x_test)[:, 1])}

    logreg = make_pipeline(StandardScaler(), LogisticRegression(C=params["logreg"]["C"], max_iter=1000))
    started = time.perf_counter()
    logreg.fit(x_train, y_train)
    fit = time.perf_counter() - started
    out["logreg"] = {"fitSeconds": fit, "testAuc": roc_auc_score(y_test, logreg.predict_proba(x_test)[:, 1])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
