"""The national reader of the city topics reads committed records only: the link from a city
writes them in transactions, and a record of an aborted one must never be counted."""

from services.evaluation.ingest import national_consumer
from shared.settings import Settings


async def test_the_national_consumer_reads_committed_records_and_commits_nothing_itself():
    consumer = national_consumer(Settings(node="national", service="evaluation"), "a-group")
    assert consumer._isolation_level == "read_committed"
    assert consumer._enable_auto_commit is False  # the stored marks say what is counted
    assert consumer._group_id == "a-group"
    assert national_consumer(Settings(), None)._group_id is None  # a rebuild worker's
