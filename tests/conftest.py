"""Suite-wide checks.

Every command log a test obtains from a device is replayed by the protocol checker when the test ends:
a test can only pass if the engine obeyed every declared rule while it ran. (Logs beyond
``CHECK_LIMIT`` commands are left to the tests that target them: the checker is plain Python.)
"""

from __future__ import annotations

import pytest

from sieve.dram import device as _device
from sieve.dram.checker import check_log

CHECK_LIMIT = 200_000


@pytest.fixture(autouse=True)
def _every_log_obeys_the_protocol(monkeypatch):
    logs = []
    original = _device.Device.log_of

    def recording(self, eng):
        log = original(self, eng)
        logs.append(log)
        return log

    monkeypatch.setattr(_device.Device, "log_of", recording)
    yield
    for log in logs:
        if len(log) <= CHECK_LIMIT:
            violations = check_log(log.standard, log)
            assert not violations, f"{len(violations)} protocol violation(s), first: {violations[0]}"
