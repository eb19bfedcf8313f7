import pytest

from wallets import liabilities


@pytest.fixture
def snapshot_take():
    """Take a snapshot now; returns the LiabilitySnapshot."""

    def take(**kwargs):
        return liabilities.liability_snapshot_take(**kwargs).snapshot

    return take
