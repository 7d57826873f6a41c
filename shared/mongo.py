"""MongoDB access through PyMongo's async API (AsyncMongoClient), the successor of Motor.

Only features FerretDB v1 also has: single-document atomic writes, unique indexes, simple
aggregation. Timeouts are short so that with the database down an API answers 503 within
about two seconds instead of hanging, and the client reconnects by itself when it is back.
"""

from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError

from shared.settings import Settings

# Errors that mean "the database is not reachable right now", never "your request is wrong".
UNAVAILABLE = (ConnectionFailure, ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout)


def connect(settings: Settings) -> AsyncMongoClient:
    return AsyncMongoClient(
        settings.mongo_url,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=10000,
        tz_aware=True,
    )


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE)
