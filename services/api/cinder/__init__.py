"""The block-storage endpoint: a Cinder v3 subset over the compute API's volumes,
snapshots and volume types (port 8776, ``/v3/{project_id}``).

``create_app`` builds it; ``routes`` holds its handlers. See ``services.api.side_apps``
for why it lives in the API process.
"""

from services.api.cinder.app import create_app

__all__ = ["create_app"]
