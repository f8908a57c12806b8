"""The image endpoint: a Glance v2 subset over the compute API's images (port 9292).

``create_app`` builds it; ``routes`` holds its handlers. See ``services.api.side_apps``
for why it lives in the API process.
"""

from services.api.glance.app import create_app

__all__ = ["create_app"]
