"""The API's representation layer: JSON or XML in, JSON or XML out, faults.

Handlers read bodies with ``parse_body`` (a plain dict whichever format the
client sent), return a ``View`` from an ``@represented`` handler or raise a
``ComputeError``, and register with ``route`` so the ``.json``/``.xml`` suffix
works. ``fault_middleware`` turns every error into the fault body of section
3.11. No handler needs to know the format.

```python
route(app.router, "GET", "/v2/{project_id}/servers/{server_id}", show_server)

@represented
async def show_server(request: web.Request) -> View:
    return View({"server": views.server_detail(...)})
```
"""

from services.api.representation.bodies import body_format, decode_body, parse_body
from services.api.representation.faults import fault_body, fault_middleware, render_fault
from services.api.representation.formats import (
    JSON_MEDIA_TYPES,
    XML_MEDIA_TYPES,
    Fmt,
    format_for_accept,
    negotiate,
    route,
    suffixed_path,
)
from services.api.representation.responses import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    View,
    render,
    represented,
    respond,
)
from services.api.representation.xml_reader import parse_xml
from services.api.representation.xml_rules import BLOCK_STORAGE
from services.api.representation.xml_writer import NETWORK_ADDRESSES, render_xml

__all__ = [
    "BLOCK_STORAGE",
    "JSON_CONTENT_TYPE",
    "JSON_MEDIA_TYPES",
    "NETWORK_ADDRESSES",
    "XML_CONTENT_TYPE",
    "XML_MEDIA_TYPES",
    "Fmt",
    "View",
    "body_format",
    "decode_body",
    "fault_body",
    "fault_middleware",
    "format_for_accept",
    "negotiate",
    "parse_body",
    "parse_xml",
    "render",
    "render_fault",
    "render_xml",
    "represented",
    "respond",
    "route",
    "suffixed_path",
]
