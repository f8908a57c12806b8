"""The volume quota's fault (maxTotalVolumes, maxTotalVolumeGigabytes); the counting
under the project's lock is tested end to end (tests/e2e/test_volumes.py)."""

from __future__ import annotations

from services.api import quotas


def test_volume_quota_fault_is_worded_as_the_instance_ones() -> None:
    limits = {**quotas.DEFAULT_LIMITS, "maxTotalVolumes": 5, "maxTotalVolumeGigabytes": 100}
    assert quotas.volume_overage(limits, (4, 90), 10) is None
    fault = quotas.volume_overage(limits, (5, 10), 1)
    assert fault is not None and fault.http_status == 413
    assert fault.message == ("Quota exceeded for volumes: Requested 1, but already used 5 of 5 "
                             "volumes")
    fault = quotas.volume_overage(limits, (1, 95), 10)
    assert fault is not None
    assert fault.message == ("Quota exceeded for gigabytes: Requested 10, but already used 95 "
                             "of 100 gigabytes")
    assert fault.details == "Only 5 GB of volume quota are left."
    fault = quotas.volume_overage(limits, (5, 100), 1)
    assert fault is not None and fault.message.startswith("Quota exceeded for volumes, gigabytes:")
    unlimited = {**limits, "maxTotalVolumes": -1, "maxTotalVolumeGigabytes": -1}
    assert quotas.volume_overage(unlimited, (10**6, 10**9), 10**6) is None
    zero = {**limits, "maxTotalVolumes": 0}
    assert quotas.volume_overage(zero, (0, 0), 1) is not None
