"""Schemathesis against every service's OpenAPI, with a bounded budget: no request it makes
(valid or not) gets a 5xx other than a documented 503, and every status it gets is documented.

The apps are the real routers and error handling over the in-memory fakes of the unit tests
(so it runs in seconds and needs no database). MAX_EXAMPLES bounds the budget per operation.
"""

import sys
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from services.enrollment import web as enrollment_web
from services.enrollment.api import router as enrollment_router
from services.evaluation.app import build_api as evaluation_api
from services.evaluation.figures import Figures
from services.evaluation.ingest import NationalIngest
from services.sessions.app import build_api as sessions_api
from services.sessions.handlers import SessionsService
from shared.http import create_api, hash_token
from shared.settings import Settings

# the in-memory fakes of the enrollment and sessions unit tests
sys.path[:0] = [str(Path(__file__).parents[1] / "enrollment"), str(Path(__file__).parents[1] / "sessions")]
from enrollment_fakes import fake_deps  # noqa: E402
from sessions_builders import FakeSessionStore  # noqa: E402

MAX_EXAMPLES = 15
OPERATOR = "bkm.salatiga.operator.s3cret"
AUTH = {"Authorization": f"Bearer {OPERATOR}"}


def _settings(service: str, node: str = "salatiga") -> Settings:
    return Settings(node=node, service=service, token_hashes=f"{hash_token(OPERATOR)}:operator",
                    city_token_hashes=f"salatiga:{hash_token(OPERATOR)}")


def enrollment_app():
    app = create_api(_settings("enrollment"), title="enrollment", service="enrollment")
    app.state.deps = fake_deps()
    app.include_router(enrollment_router)
    app.include_router(enrollment_web.router)
    return app


def sessions_app():
    settings = _settings("sessions")
    return sessions_api(settings, SessionsService(FakeSessionStore(), settings))


def evaluation_app():
    settings = _settings("evaluation", node="national")
    ingest = NationalIngest(settings, store=None)
    ingest.figures = Figures()
    ingest.ready.set()
    return evaluation_api(settings, ingest)


APPS = {"enrollment": enrollment_app, "sessions": sessions_app, "evaluation": evaluation_app}
schemas = {name: schemathesis.openapi.from_asgi("/openapi.json", make()) for name, make in APPS.items()}


def _run(case) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error, status_code_conformance])


_budget = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                   suppress_health_check=list(HealthCheck))


@schemas["enrollment"].parametrize()
@_budget
def test_enrollment_api(case):
    _run(case)


@schemas["sessions"].parametrize()
@_budget
def test_sessions_api(case):
    _run(case)


@schemas["evaluation"].parametrize()
@_budget
def test_evaluation_api(case):
    _run(case)
