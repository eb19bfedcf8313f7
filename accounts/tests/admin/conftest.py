from accounts.tests.admin.fixtures import (  # noqa: F401 (fixtures)
    operator,
    operator_client,
    operators_group,
    outsider,
    outsider_client,
)
