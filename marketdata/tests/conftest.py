import pytest
from asgiref.sync import sync_to_async
from django.db import connection


@pytest.fixture(autouse=True)
async def _close_thread_connection():
    """Async tests reach the database from asgiref's worker thread; close that connection
    afterwards so the test database can be dropped at the end of the run."""
    yield
    await sync_to_async(lambda: connection.close())()
