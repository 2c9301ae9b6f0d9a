"""Scenario (d) of `npm run bench:gateway`: the design Keel replaces, as the guides write it.

FastAPI + uvicorn (one worker), a scikit-learn model (one-hot plan + 100-tree gradient boosting,
the same size as Keel's gbdt) trained at start on the CSV the benchmark gives, and a one-row pandas
DataFrame built per request. Run with /usr/bin/python3 (Debian's python3-fastapi, -uvicorn, -sklearn).
"""
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

train_csv, port = sys.argv[1], int(sys.argv[2])
NUMERIC = ["tenure_months", "monthly_spend", "support_tickets"]
frame = pd.read_csv(train_csv)
model = Pipeline([
    ("prep", ColumnTransformer([
        ("num", SimpleImputer(), NUMERIC),
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
    ])),
    ("gbdt", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=1)),
])
model.fit(frame[NUMERIC + ["plan"]], frame["churned"])

app = FastAPI()


class Features(BaseModel):
    tenure_months: float | None = None
    monthly_spend: float
    support_tickets: float
    plan: str


class PredictRequest(BaseModel):
    features: Features
    request_id: str | None = None


@app.post("/v1/models/{name}/predict")
def predict(name: str, body: PredictRequest):
    features = body.features
    row = pd.DataFrame([features.model_dump() if hasattr(features, "model_dump") else features.dict()])
    probability = float(model.predict_proba(row)[0, 1])
    return {"prediction": int(probability > 0.5), "probability": probability, "model_version": 1, "request_id": body.request_id}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
