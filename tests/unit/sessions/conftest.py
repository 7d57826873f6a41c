import pytest

from services.sessions import domain
from sessions_builders import plan


@pytest.fixture
def session() -> domain.Session:
    scheduled, _ = domain.schedule(plan(), session_id="S1", city="salatiga")
    return scheduled
