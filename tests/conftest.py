"""Shared pytest setup."""


def pytest_configure(config):
    # Slow checks (a real browser, a real server) still run by default; `-m "not slow"` skips them.
    config.addinivalue_line("markers", "slow: a check that drives a real browser or server")
