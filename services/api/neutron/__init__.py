"""The network endpoint: a Neutron v2.0 subset over the compute API's networks,
ports, security groups and floating IPs (port 9696).

``create_app`` builds it; ``routes`` holds its handlers. See ``services.api.side_apps``
for why it lives in the API process.
"""

from services.api.neutron.app import create_app

__all__ = ["create_app"]
