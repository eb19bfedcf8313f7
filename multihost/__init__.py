"""The multi-host test harness (issue 22): hosts as network namespaces, the scenario."""
