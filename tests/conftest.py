import os

import pytest
from hypothesis import HealthCheck, settings

from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from tests.sample_project import project  # noqa: F401  (fixture)

# Property tests hit the real server for every example: "ci" keeps the suite
# quick, "long" (pytest --hypothesis-profile=long) is for hunting bugs;
# PGMIG_LONG_EXAMPLES sets how many examples "long" tries (a run that fits an hour: 300).
_SHARED = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=15, **_SHARED)
settings.register_profile("long", max_examples=int(os.environ.get("PGMIG_LONG_EXAMPLES", "2000")), **_SHARED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _stop_project_servers(tmp_path):  # type: ignore[no-untyped-def]
    """Stop the embedded servers that CLI runs started in a test's project folder (.pgmig/).

    pgmig leaves its zero-config server running for the next command; in a
    test the next command never comes.
    """
    yield
    for data_dir in tmp_path.glob("**/.pgmig"):
        from pgmig.db.embedded import stop_server

        try:
            # Deleted too: as root the data lives outside tmp_path, in pgmig's own folder.
            stop_server(data_dir, delete=True)
        except Exception:  # noqa: BLE001 - clean-up must not fail a test
            pass
