"""Fixtures for the whole test tree.

The real-infrastructure fixtures live in `tests/infra_fixtures.py`:
`infra` (session), `migrated_template` (session), `db_url` and `amqp_url`
(a fresh database and vhost per test).
"""

from tests.infra_fixtures import *  # noqa: F401,F403  (registers the fixtures)
