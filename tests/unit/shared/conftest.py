"""The three services' real `create_app`, pointed at a database and a broker that do not exist:
for tests of the HTTP edge that must answer before any I/O (a request that got through would
wait two seconds and answer 503)."""

import importlib

import pytest
from fastapi.testclient import TestClient

from shared import logging as json_logging
from shared.http import hash_token
from shared.settings import Settings

SERVICES = ("enrollment", "sessions", "evaluation")
OPERATOR = "bkm.palu.operator.s3cret"


@pytest.fixture(scope="module")
def clients():
    original = json_logging.configure
    json_logging.configure = lambda *a, **k: None  # keep the test process's logging as it is
    try:
        built = {}
        for service in SERVICES:
            node = "national" if service == "evaluation" else "palu"
            settings = Settings(node=node, service=service, mongo_url="mongodb://127.0.0.1:9/",
                                kafka_bootstrap="127.0.0.1:9",
                                token_hashes=f"{hash_token(OPERATOR)}:operator")
            app = importlib.import_module(f"services.{service}.app").create_app(settings)
            if service == "evaluation":
                app.state.ingest.ready.set()  # empty figures, "loaded": the queries validate
            built[service] = TestClient(app, raise_server_exceptions=False,
                                        headers={"Authorization": f"Bearer {OPERATOR}"})
        yield built
    finally:
        json_logging.configure = original


