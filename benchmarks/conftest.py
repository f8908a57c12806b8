"""Benchmarks run against the same real stack as the e2e tests."""

from tests.e2e.conftest import E2E_ENV, alt, cloud, demo  # noqa: F401
from tests.infra_fixtures import *  # noqa: F401,F403
