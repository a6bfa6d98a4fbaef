"""Settings for the test suite: the real settings, with a test environment set first.

Values already in the environment win (CI's second run sets DATABASE_URL and
CELERY_BROKER_URL to PostgreSQL and Redis).
"""

import os
import tempfile

TEST_INBOUND_API_KEY = "test-inbound-key-4c1f9b7e2a6d8f0b3e5a7c9d1f2b4a6c"
TEST_FIELD_ENCRYPTION_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="

_scratch = tempfile.mkdtemp(prefix="convoke-tests-")
for _name, _value in {
    "DEBUG": "true",
    "SECRET_KEY": "test-secret-key-not-for-production-7d1e0c4b9a2f",
    "CALDAV_INBOUND_API_KEY": TEST_INBOUND_API_KEY,
    "FIELD_ENCRYPTION_KEY": TEST_FIELD_ENCRYPTION_KEY,
    "APP_URL": "http://testserver",
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    "EMAIL_FILE_PATH": os.path.join(_scratch, "mail"),
    "CELERY_FILESYSTEM_DIR": os.path.join(_scratch, "celery"),
    "CELERY_TASK_ALWAYS_EAGER": "true",
}.items():
    os.environ.setdefault(_name, _value)

# Each test process (xdist worker) counts in a folder of its own, so that one process's
# counters never move while another asserts on its deltas.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(_scratch, "prometheus")

from calendars.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# WhiteNoise scans STATIC_ROOT when the middleware starts (DEBUG is off in tests).
STATIC_ROOT = os.path.join(_scratch, "static")  # type: ignore[assignment]
os.makedirs(STATIC_ROOT, exist_ok=True)
