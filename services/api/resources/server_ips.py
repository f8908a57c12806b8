"""Server addresses (sections 4.4.1.20-21): ``GET /servers/{id}/ips`` and
``GET /servers/{id}/ips/{network_label}``.

Both read the server's addresses cache, which the network service keeps (fixed
addresses with the floating ones mapped to them), and show ``version`` and
``addr`` only, as the spec's examples do. The network is named by its label
(its name), never its id, as section 4.4.1.21's parameter list says (its path
spells the variable ``{network_id}``, its example uses a name); a network the
server has no address on is 404, as in Nova ("Instance is not a member of
specified network").
"""

from __future__ import annotations

from aiohttp import web

from services.api.representation import NETWORK_ADDRESSES, View, represented, route
from services.api.resources.common import load_server
from services.api.views import servers as views
from shared.errors import NotFound


async def _addresses(request: web.Request) -> dict[str, list[dict[str, object]]]:
    return views.plain_addresses((await load_server(request))["addresses"])


@represented
async def list_ips(request: web.Request) -> View:
    return View({"addresses": await _addresses(request)})


@represented
async def show_network_ips(request: web.Request) -> View:
    label = request.match_info["network_label"]
    by_network = await _addresses(request)
    if label not in by_network:
        raise NotFound("Instance is not a member of specified network")
    return View({label: by_network[label]}, shape=NETWORK_ADDRESSES)


def setup(router: web.UrlDispatcher) -> None:
    route(router, "GET", "/v2/{project_id}/servers/{server_id}/ips", list_ips)
    route(router, "GET", "/v2/{project_id}/servers/{server_id}/ips/{network_label}",
          show_network_ips)
