#!/bin/sh
# /init of Nimbus Tiny Linux: the whole guest OS is this script, busybox and a few
# kernel modules, running from the initramfs. Every line it prints to the console
# starts with "nimbus-tiny: " so tests (and people) can find them; their forms are
# listed in deploy/guest_image/__init__.py and must not change casually.
#
# It reads the OpenStack config drive written by
# services/compute_agent/drivers/configdrive.py (JSON with sorted keys and one key
# per line, which is why sed/awk are enough), counts its boots on its own FAT disk
# (/dev/vda), reports a second nimbus-tiny disk (rescue), and powers off cleanly
# on an ACPI power-button press.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /var/log /disk /config /rescue
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
exec </dev/console >/dev/console 2>&1

say() { echo "nimbus-tiny: $*"; }

say "booting (kernel $(uname -r))"

# Modules in dependency order (the build resolved it; the kernel ships no modules.dep).
while read -r mod; do
    [ -n "$mod" ] && insmod "/lib/modules/$mod.ko" 2>/dev/null
done < /etc/nimbus/modules

# Devices appear as their drivers probe; give them a moment (a guest-side wait).
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

# --- the config drive: found by label, never by position ---
# Debian's busybox has no blkid: read the ISO 9660 volume id (primary volume
# descriptor at 32 KiB, id at byte 40) and ask findfs for a FAT one.
isolabel() { dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' '; }
drive=
for dev in /dev/vd? /dev/sr?; do
    [ -b "$dev" ] || continue
    [ "$(isolabel "$dev")" = config-2 ] && { drive=$dev; break; }
done
[ -n "$drive" ] || drive=$(findfs LABEL=config-2 2>/dev/null)

# The value of a top-level key of meta_data.json (a string or a number).
meta() {
    sed -n "s/^ \"$1\": \"\{0,1\}\([^\"]*\)\"\{0,1\},\{0,1\}\$/\1/p" \
        /config/openstack/latest/meta_data.json
}

uuid=
if [ -n "$drive" ] && { mount -t iso9660 -o ro "$drive" /config 2>/dev/null ||
                       mount -t vfat -o ro "$drive" /config 2>/dev/null; }; then
    name=$(meta hostname)
    uuid=$(meta uuid)
    [ -n "$name" ] && hostname "$name"
    say "hostname=$name"
    say "uuid=$uuid"
    if [ -f /config/openstack/latest/user_data ]; then
        say "user-data: $(head -n 1 /config/openstack/latest/user_data | tr -d '\r')"
    fi
else
    say "no config drive"
fi

# --- the network, from network_data.json: one "link" line per link, one "net" per network ---
netlines() {
    awk '
    function val(s) { sub(/^[^:]*: /, "", s); sub(/,$/, "", s); gsub(/"/, "", s); return s }
    /^ "links": /    { sec = "link" }
    /^ "networks": / { sec = "net" }
    /^ "services": / { sec = "" }
    sec != "" && /^   "id": /                   { id = val($0) }
    sec != "" && /^   "ethernet_mac_address": / { mac = val($0) }
    sec != "" && /^   "mtu": /                  { mtu = val($0) }
    sec != "" && /^   "link": /                 { link = val($0) }
    sec != "" && /^   "ip_address": /           { ip = val($0) }
    sec != "" && /^   "netmask": /              { mask = val($0) }
    sec != "" && /^   "type": /                 { type = val($0) }
    sec != "" && /^     "gateway": /            { gw = val($0) }
    sec == "link" && /^  }/ { print "link", id, mac, mtu; id = mac = mtu = "" }
    sec == "net" && /^  }/  { print "net", type, link, ip, mask, (gw == "" ? "-" : gw);
                              type = link = ip = mask = gw = "" }
    ' /config/openstack/latest/network_data.json
}

prefix() {  # 255.255.255.0 -> 24
    echo "$1" | awk -F. '{ n = 0; for (i = 1; i <= 4; i++) { b = $i;
        while (b > 0) { n += b % 2; b = int(b / 2) } } print n }'
}

ifname_of() {  # the interface with this MAC, waiting a little for it to appear
    i=0
    while [ $i -lt 50 ]; do
        for a in /sys/class/net/*/address; do
            [ "$(cat "$a")" = "$1" ] && { basename "$(dirname "$a")"; return; }
        done
        sleep 0.1; i=$((i + 1))
    done
}

ip link set lo up
if [ -f /config/openstack/latest/network_data.json ]; then
    netlines > /tmp/net
    grep '^net ' /tmp/net | while read -r _ type link addr mask gw; do
        [ "$type" = ipv4 ] || { say "network on $link: $type not configured"; continue; }
        set -- $(grep "^link $link " /tmp/net)
        mac=$3 mtu=$4
        dev=$(ifname_of "$mac")
        if [ -z "$dev" ]; then say "no NIC with mac=$mac"; continue; fi
        len=$(prefix "$mask")
        ip link set "$dev" mtu "$mtu" 2>/dev/null
        ip link set "$dev" up
        ip addr add "$addr/$len" dev "$dev"
        [ "$gw" != - ] && ip route add default via "$gw" dev "$dev" 2>/dev/null
        say "ip=$addr/$len dev $dev mac=$mac"
    done
fi

# --- its own disk: count the boots, remember who booted it first ---
if mount -t vfat -o rw /dev/vda /disk 2>/dev/null; then
    mkdir -p /disk/nimbus
    boots=$(cat /disk/nimbus/boots 2>/dev/null)
    boots=$(( ${boots:-0} + 1 ))
    echo "$boots" > /disk/nimbus/boots
    [ -s /disk/nimbus/first ] || { [ -n "$uuid" ] && echo "$uuid" > /disk/nimbus/first; }
    sync
    say "disk boot $boots, first booted by $(cat /disk/nimbus/first 2>/dev/null || echo unknown)"
else
    say "no disk on vda"
fi

# --- rescue: the server's own disk attached second ---
if [ -b /dev/vdb ] && mount -t vfat -o ro /dev/vdb /rescue 2>/dev/null; then
    if [ -f /rescue/nimbus/boots ]; then
        say "rescue: found the server's disk on vdb (boot $(cat /rescue/nimbus/boots)," \
            "first booted by $(cat /rescue/nimbus/first 2>/dev/null || echo unknown))"
    else
        umount /rescue
    fi
fi

# --- clean shutdown on the ACPI power button (libvirt's shutdown) ---
# "ready" promises a press is heard: wait until acpid has the input devices open.
acpid -f -c /etc/acpi -l /var/log/acpid.log &
acpid_pid=$!
i=0
while [ $i -lt 100 ] && ! ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q /dev/input/event; do
    sleep 0.05; i=$((i + 1))
done

say ready
while :; do
    setsid cttyhack sh -l
    sleep 1
done
