#!/usr/bin/env python3
"""A Keel `command` trainer: scikit-learn logistic regression, exported as ONNX with onnx.helper.

Keel runs this script in a fresh working directory and tells it where everything is:

  KEEL_TRAIN   training rows as CSV (header first; an empty cell is a missing value; label is 0/1)
  KEEL_PARAMS  params.json: the trainer's "params" from the pipeline config
  KEEL_SCHEMA  schema.json: columns and types, the label, the feature order and encoding
  KEEL_OUTPUT  the directory where model.onnx must be written

The model: mean imputation of missing values, standardisation, then LogisticRegression (L2).
The ONNX graph takes one float tensor `input` [N, F] with the features in schema order and
gives `probabilities` float [N, 2] and `label` int64 [N], like Keel's own exports, with the
feature names in its metadata.

Features must be numeric (`number`) or `boolean` columns; a `category` or `timestamp` feature
stops the script with a message (encode it upstream, or extend `read_features`).

params (all optional): C (1.0), max_iter (1000), tol (1e-4), class_weight (null or "balanced").

Needs numpy, scikit-learn and onnx (Debian: python3-sklearn python3-onnx).
"""
import csv
import json
import math
import os
import sys
import time

PARAM_DEFAULTS = {"C": 1.0, "max_iter": 1000, "tol": 1e-4, "class_weight": None}
SUPPORTED_TYPES = ("number", "boolean")
OPSET = 17


def fail(message, code=2):
    print(f"train.py: error: {message}", file=sys.stderr)
    sys.exit(code)


def log(message):
    print(f"train.py: {message}", file=sys.stderr, flush=True)


def env_path(name):
    value = os.environ.get(name)
    if not value:
        fail(f"{name} is not set: this script is meant to be run by Keel's command trainer")
    return value


def read_params(path):
    with open(path, encoding="utf-8") as f:
        given = json.load(f)
    if not isinstance(given, dict):
        fail(f"params.json must hold an object, got {type(given).__name__}")
    unknown = sorted(set(given) - set(PARAM_DEFAULTS))
    if unknown:
        fail(f"unknown params {', '.join(unknown)} (known: {', '.join(PARAM_DEFAULTS)})")
    params = {**PARAM_DEFAULTS, **given}
    if not isinstance(params["C"], (int, float)) or isinstance(params["C"], bool) or not params["C"] > 0:
        fail(f"params.C must be a positive number, got {params['C']!r}")
    if not isinstance(params["max_iter"], int) or isinstance(params["max_iter"], bool) or params["max_iter"] < 1:
        fail(f"params.max_iter must be a positive integer, got {params['max_iter']!r}")
    if not isinstance(params["tol"], (int, float)) or isinstance(params["tol"], bool) or not params["tol"] > 0:
        fail(f"params.tol must be a positive number, got {params['tol']!r}")
    if params["class_weight"] not in (None, "balanced"):
        fail(f"params.class_weight must be null or \"balanced\", got {params['class_weight']!r}")
    return params


def parse_cell(text, kind, column, row):
    """One CSV cell as a float; NaN for an empty cell."""
    text = text.strip()
    if text == "":
        return math.nan
    if kind == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1"):
            return 1.0
        if lowered in ("false", "0"):
            return 0.0
    else:
        try:
            return float(text)
        except ValueError:
            pass
    fail(f"column {column} row {row}: {text!r} is not a {kind}")


def read_features(csv_path, schema):
    import numpy as np

    features = schema["features"]
    label = schema["label"]["name"]
    unsupported = [f"{f['name']} ({f['type']})" for f in features if f["type"] not in SUPPORTED_TYPES]
    if unsupported:
        fail(
            "this example trains on numeric and boolean features only; not supported: "
            + ", ".join(unsupported)
            + ". Encode them upstream or leave them out of the feature list."
        )
    names = [f["name"] for f in features]
    kinds = [f["type"] for f in features]
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            fail(f"{csv_path} is empty")
        index = {name: i for i, name in enumerate(header)}
        missing = [name for name in names + [label] if name not in index]
        if missing:
            fail(f"{csv_path} lacks columns {', '.join(missing)} (it has {', '.join(header)})")
        feature_at = [index[name] for name in names]
        label_at = index[label]
        rows, labels = [], []
        for row_number, record in enumerate(reader, start=1):
            if not record:
                continue
            rows.append([parse_cell(record[i], kinds[j], names[j], row_number) for j, i in enumerate(feature_at)])
            value = record[label_at].strip()
            if value not in ("0", "1"):
                fail(f"label {label} row {row_number}: {value!r} is not 0 or 1")
            labels.append(int(value))
    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    y = np.asarray(labels, dtype=np.int64)
    return names, x, y


def fit(x, y, params):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline(
        [
            # keep_empty_features: an all-missing column stays (imputed as 0) so the input keeps F columns.
            ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("scale", StandardScaler()),
            (
                "logreg",
                LogisticRegression(
                    C=float(params["C"]),
                    max_iter=params["max_iter"],
                    tol=float(params["tol"]),
                    class_weight=params["class_weight"],
                ),
            ),
        ]
    )
    pipeline.fit(x, y)
    return pipeline


def to_onnx(pipeline, names):
    """The pipeline as an ONNX graph of standard ops, the interface Keel's own exports have."""
    import numpy as np
    from onnx import TensorProto, checker, helper, numpy_helper

    impute, scale, logreg = (step for _, step in pipeline.steps)
    f = len(names)
    consts = {
        "means": impute.statistics_.reshape(1, f),
        "centres": scale.mean_.reshape(1, f),
        "scales": scale.scale_.reshape(1, f),
        "coef": logreg.coef_.reshape(f, 1),
        "intercept": logreg.intercept_.reshape(1),
        "one": np.ones(1),
        "half": np.full(1, 0.5),
    }
    initializers = [numpy_helper.from_array(value.astype(np.float32), name) for name, value in consts.items()]
    initializers.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"))
    nodes = [
        helper.make_node("IsNaN", ["input"], ["is_missing"]),
        helper.make_node("Where", ["is_missing", "means", "input"], ["imputed"]),
        helper.make_node("Sub", ["imputed", "centres"], ["centred"]),
        helper.make_node("Div", ["centred", "scales"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "coef"], ["dot"]),
        helper.make_node("Add", ["dot", "intercept"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p1"]),
        helper.make_node("Sub", ["one", "p1"], ["p0"]),
        helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
        helper.make_node("Greater", ["p1", "half"], ["positive_2d"]),
        helper.make_node("Reshape", ["positive_2d", "flat"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["label"], to=TensorProto.INT64),
    ]
    graph = helper.make_graph(
        nodes,
        "python-logreg",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, f])],
        outputs=[
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="keel-example-python-trainer",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = 8
    # The same format as Keel's exports: a JSON array, in input order.
    helper.set_model_props(model, {"feature_names": json.dumps(names), "kind": "sklearn-logreg"})
    checker.check_model(model)
    return model, consts


def graph_in_numpy(x, consts):
    """What the ONNX graph computes (in float64), to check it against scikit-learn before writing it."""
    import numpy as np

    imputed = np.where(np.isnan(x), consts["means"], x)
    logit = ((imputed - consts["centres"]) / consts["scales"]) @ consts["coef"] + consts["intercept"]
    return 1 / (1 + np.exp(-logit.ravel()))


def main():
    started = time.monotonic()
    try:
        import numpy as np
        import onnx  # noqa: F401 (checked here for a clear message)
        from sklearn.metrics import roc_auc_score
    except ImportError as error:
        fail(f"{error}; this script needs numpy, scikit-learn and onnx (Debian: apt-get install python3-sklearn python3-onnx)")

    with open(env_path("KEEL_SCHEMA"), encoding="utf-8") as f:
        schema = json.load(f)
    params = read_params(env_path("KEEL_PARAMS"))
    names, x, y = read_features(env_path("KEEL_TRAIN"), schema)
    if len(set(y.tolist())) < 2:
        fail(f"the label {schema['label']['name']} has a single class in {len(y)} rows")
    log(f"{x.shape[0]} rows, {x.shape[1]} features ({', '.join(names)}), {int(y.sum())} positives, "
        f"{int(np.isnan(x).sum())} missing values; params {json.dumps(params)}")

    pipeline = fit(x, y, params)
    logreg = pipeline.named_steps["logreg"]
    p = pipeline.predict_proba(x)[:, 1]
    log(f"fitted in {logreg.n_iter_[0]} iterations; training AUC {roc_auc_score(y, p):.4f}")

    model, consts = to_onnx(pipeline, names)
    difference = float(np.max(np.abs(graph_in_numpy(x, consts) - p)))
    if difference > 1e-4:
        fail(f"the ONNX graph's formula differs from scikit-learn's predict_proba by {difference}", code=1)

    output = os.path.join(env_path("KEEL_OUTPUT"), "model.onnx")
    with open(output, "wb") as f:
        f.write(model.SerializeToString())
    log(f"wrote {output} ({os.path.getsize(output)} bytes) in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
