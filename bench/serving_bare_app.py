"""The HTTP floor of the serving benchmark: a bare FastAPI app that only wraps the booster.

    BENCH_SERVING_MODEL=model.txt BENCH_SERVING_FEATURES=x00,x01,... \\
        python -m uvicorn bench.serving_bare_app:app --host 127.0.0.1 --port 8000

``POST /predict`` takes retrainer's body, ``{"rows": [{feature: value, ...}, ...]}``, and answers
``{"predictions": [...]}``. No validation, no routing, no logging, no thread pool: the body is
parsed with ``json`` (or with ``orjson`` when ``BENCH_SERVING_JSON=orjson``, the parser
retrainer's server uses), turned into a float matrix in feature order and scored on the event
loop with ``num_threads=1`` (as retrainer's LightGBM family scores). What any server that
speaks JSON over HTTP must pay at least.
"""

from __future__ import annotations

import json
import os

import lightgbm as lgb
import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

FEATURES = os.environ["BENCH_SERVING_FEATURES"].split(",")
BOOSTER = lgb.Booster(model_file=os.environ["BENCH_SERVING_MODEL"])
FAST = os.environ.get("BENCH_SERVING_JSON") == "orjson"
loads = orjson.loads if FAST else json.loads

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(request: Request) -> Response:
    rows = loads(await request.body())["rows"]
    X = np.array([[row[f] for f in FEATURES] for row in rows], dtype=np.float64)
    y = np.asarray(BOOSTER.predict(X, num_threads=1))
    out = {"predictions": y.tolist()}
    body = orjson.dumps(out) if FAST else json.dumps(out)
    return Response(body, media_type="application/json")
