"""Whether a test failed, for fixtures that leave evidence behind in their teardown.

The root conftest's ``pytest_runtest_makereport`` keeps each phase's report on the item.
"""


def outcome_failed(request) -> bool:
    """Whether the test owning ``request`` failed in its setup or body (for teardowns)."""
    reports = getattr(request.node, "reports", {})
    return any(report.failed for report in reports.values())
