"""The extensions of section 3.10 / 4.4.1.2, and which of them Nimbus implements.

The list and get operations show only the implemented ones: a client that sees
an alias here can use it. Names, namespaces and dates are the spec's (its XML
listing; the JSON listing in the spec is shifted by one entry, see there).

``OPERATOR`` adds the extensions of Nova's operator and quota resources that
today's clients call, which the spec does not list; their names, namespaces,
dates and descriptions are Nova's (Icehouse/Juno extension descriptors).
"""

from __future__ import annotations

import msgspec


class Extension(msgspec.Struct, frozen=True, kw_only=True):
    alias: str
    name: str
    namespace: str
    updated: str
    description: str
    implemented: bool


_NS = "http://docs.openstack.org/compute/ext"

ALL: tuple[Extension, ...] = (
    Extension(alias="OS-EXT-AZ", name="ExtendedAvailabilityZone", updated="2013-01-30T00:00:00+00:00",
              namespace=f"{_NS}/extended_availability_zone/api/v2",
              description="Extended Server Attributes support.", implemented=True),
    Extension(alias="OS-EXT-IMG-SIZE", name="ImageSize", updated="2013-02-19T00:00:00+00:00",
              namespace=f"{_NS}/image_size/api/v1.1",
              description="Adds image size to image listings.", implemented=True),
    Extension(alias="OS-EXT-IPS", name="ExtendedIps", updated="2013-01-06T00:00:00+00:00",
              namespace=f"{_NS}/extended_ips/api/v1.1",
              description="Adds type parameter to the ip list.", implemented=True),
    Extension(alias="OS-EXT-IPS-MAC", name="ExtendedIpsMac", updated="2013-03-07T00:00:00+00:00",
              namespace=f"{_NS}/extended_ips_mac/api/v1.1",
              description="Adds mac address parameter to the ip list.", implemented=True),
    Extension(alias="OS-EXT-STS", name="ExtendedStatus", updated="2011-11-03T00:00:00+00:00",
              namespace=f"{_NS}/extended_status/api/v1.1",
              description="Extended Status support.", implemented=True),
    Extension(alias="OS-FLV-EXT-DATA", name="FlavorExtraData", updated="2011-09-14T00:00:00+00:00",
              namespace=f"{_NS}/flavor_extra_data/api/v1.1",
              description="Provide additional data for flavors.", implemented=True),
    Extension(alias="OS-SCH-HNT", name="SchedulerHints", updated="2011-07-19T00:00:00+00:00",
              namespace=f"{_NS}/scheduler-hints/api/v2",
              description="Pass arbitrary key/value pairs to the scheduler.", implemented=True),
    Extension(alias="os-availability-zone", name="AvailabilityZone", updated="2012-12-21T00:00:00+00:00",
              namespace=f"{_NS}/availabilityzone/api/v1.1",
              description="1. Add availability_zone to the Create Server v1.1 API. "
                          "2. Add availability zones describing.", implemented=True),
    Extension(alias="os-config-drive", name="ConfigDrive", updated="2012-07-16T00:00:00+00:00",
              namespace=f"{_NS}/config_drive/api/v1.1",
              description="Config Drive Extension.", implemented=True),
    Extension(alias="os-console-output", name="ConsoleOutput", updated="2011-12-08T00:00:00+00:00",
              namespace=f"{_NS}/os-console-output/api/v2",
              description="Console log output support, with tailing ability.", implemented=True),
    Extension(alias="os-consoles", name="Consoles", updated="2011-12-23T00:00:00+00:00",
              namespace=f"{_NS}/os-consoles/api/v2",
              description="Interactive Console support.", implemented=True),
    Extension(alias="os-create-server-ext", name="Createserverext", updated="2011-07-19T00:00:00+00:00",
              namespace=f"{_NS}/createserverext/api/v1.1",
              description="Extended support to the Create Server v1.1 API.", implemented=True),
    Extension(alias="os-extended-floating-ips", name="ExtendedFloatingIps",
              updated="2013-04-19T00:00:00+00:00", namespace=f"{_NS}/extended_floating_ips/api/v2",
              description="Adds optional fixed_address to the add floating IP command.",
              implemented=True),
    Extension(alias="os-flavor-rxtx", name="FlavorRxtx", updated="2012-08-29T00:00:00+00:00",
              namespace=f"{_NS}/flavor_rxtx/api/v1.1",
              description="Support to show the rxtx status of a flavor.", implemented=True),
    Extension(alias="os-flavor-swap", name="FlavorSwap", updated="2012-08-29T00:00:00+00:00",
              namespace=f"{_NS}/flavor_swap/api/v1.1",
              description="Support to show the swap status of a flavor.", implemented=True),
    Extension(alias="os-floating-ips", name="FloatingIps", updated="2011-06-16T00:00:00+00:00",
              namespace=f"{_NS}/floating_ips/api/v1.1",
              description="Floating IPs support.", implemented=True),
    Extension(alias="os-hide-server-addresses", name="HideServerAddresses",
              updated="2012-12-11T00:00:00+00:00", namespace=f"{_NS}/hide_server_addresses/api/v1.1",
              description="Support hiding server addresses in certain states.", implemented=True),
    Extension(alias="os-instance-actions", name="InstanceActions", updated="2013-02-08T00:00:00+00:00",
              namespace=f"{_NS}/instance-actions/api/v1.1",
              description="View a log of actions and events taken on an instance.", implemented=True),
    Extension(alias="os-keypairs", name="Keypairs", updated="2011-08-08T00:00:00+00:00",
              namespace=f"{_NS}/keypairs/api/v1.1", description="Keypair Support.", implemented=True),
    Extension(alias="os-multiple-create", name="MultipleCreate", updated="2012-08-07T00:00:00+00:00",
              namespace=f"{_NS}/multiplecreate/api/v1.1",
              description="Allow multiple create in the Create Server v1.1 API.", implemented=True),
    Extension(alias="os-rescue", name="Rescue", updated="2011-08-18T00:00:00+00:00",
              namespace=f"{_NS}/rescue/api/v1.1", description="Instance rescue mode.", implemented=True),
    Extension(alias="os-security-groups", name="SecurityGroups", updated="2013-05-28T00:00:00+00:00",
              namespace=f"{_NS}/securitygroups/api/v1.1", description="Security group support.",
              implemented=True),
    Extension(alias="os-server-start-stop", name="ServerStartStop", updated="2012-01-23T00:00:00+00:00",
              namespace=f"{_NS}/servers/api/v1.1",
              description="Start/Stop instance compute API support.", implemented=True),
    Extension(alias="os-used-limits", name="UsedLimits", updated="2012-07-13T00:00:00+00:00",
              namespace=f"{_NS}/used_limits/api/v1.1",
              description="Provide data on limited resources that are being used.", implemented=True),
    Extension(alias="os-user-data", name="UserData", updated="2012-08-07T00:00:00+00:00",
              namespace=f"{_NS}/userdata/api/v1.1",
              description="Add user_data to the Create Server v1.1 API.", implemented=True),
    Extension(alias="os-volumes", name="Volumes", updated="2011-03-25T00:00:00+00:00",
              namespace=f"{_NS}/volumes/api/v1.1", description="Volumes support.", implemented=True),
)

OPERATOR: tuple[Extension, ...] = (
    Extension(alias="os-extended-quotas", name="ExtendedQuotas", updated="2013-06-09T00:00:00+00:00",
              namespace=f"{_NS}/extended_quotas/api/v1.1",
              description="Adds ability for admins to delete quota and optionally force the "
                          "update Quota command.", implemented=True),
    Extension(alias="os-extended-services", name="ExtendedServices",
              updated="2013-05-17T00:00:00-00:00", namespace=f"{_NS}/extended_services/api/v2",
              description="Extended services support to the Services extension.",
              implemented=True),
    Extension(alias="os-hypervisor-status", name="HypervisorStatus",
              updated="2014-04-17T00:00:00Z", namespace=f"{_NS}/hypervisor_status/api/v1.1",
              description="Show hypervisor status.", implemented=True),
    Extension(alias="os-hypervisors", name="Hypervisors", updated="2012-06-21T00:00:00+00:00",
              namespace=f"{_NS}/hypervisors/api/v1.1",
              description="Admin-only hypervisor administration.", implemented=True),
    Extension(alias="os-networks", name="Networks", updated="2011-12-23T00:00:00+00:00",
              namespace=f"{_NS}/os-networks/api/v1.1",
              description="Admin-only Network Management Extension.", implemented=True),
    Extension(alias="os-quota-sets", name="Quotas", updated="2011-08-08T00:00:00+00:00",
              namespace=f"{_NS}/quotas-sets/api/v1.1", description="Quotas management support.",
              implemented=True),
    Extension(alias="os-services", name="Services", updated="2012-10-28T00:00:00-00:00",
              namespace=f"{_NS}/services/api/v2", description="Services support.",
              implemented=True),
    Extension(alias="os-simple-tenant-usage", name="SimpleTenantUsage",
              updated="2011-08-19T00:00:00+00:00", namespace=f"{_NS}/os-simple-tenant-usage/api/v1.1",
              description="Simple tenant usage extension.", implemented=True),
    Extension(alias="os-tenant-networks", name="OSTenantNetworks",
              updated="2012-03-07T09:46:43-05:00", namespace=f"{_NS}/os-tenant-networks/api/v2",
              description="Tenant-based Network Management Extension.", implemented=True),
)

IMPLEMENTED: dict[str, Extension] = {
    e.alias: e for e in sorted(ALL + OPERATOR, key=lambda e: e.alias) if e.implemented}
