import os

from hypothesis import HealthCheck, settings

from pgmig.testing import database_url, pgmig_server  # noqa: F401  (fixtures)
from tests.sample_project import project  # noqa: F401  (fixture)

# Property tests hit the real server for every example: "ci" keeps the suite
# quick, "long" (pytest --hypothesis-profile=long) is for hunting bugs.
_SHARED = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=15, **_SHARED)
settings.register_profile("long", max_examples=2000, **_SHARED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
