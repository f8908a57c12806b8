#!/bin/sh
# /init of Nimbus Tiny Linux: the whole guest OS is this script, busybox and a few
# kernel modules, running from the initramfs. Every line it prints to the console
# starts with "nimbus-tiny: " so tests (and people) can find them; their forms are
# listed in deploy/guest_image/__init__.py and must not change casually.
#
# It reads the OpenStack config drive written by
# services/compute_agent/drivers/configdrive.py (JSON with sorted keys and one key
# per line, which is why sed/awk are enough), counts its boots on its own FAT disk
# (/dev/vda), reports a second nimbus-tiny disk (rescue), shows the disks plugged in
# while it runs (volumes, "nimbus-disk: " lines), and powers off cleanly on an ACPI
# power-button press.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /var/log /disk /config /rescue
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin
exec </dev/console >/dev/console 2>&1

# The console is ttyS0 (the last console= wins); tty1 is what VNC shows.
say() {
    echo "nimbus-tiny: $*"
    echo "nimbus-tiny: $*" > /dev/tty1 2>/dev/null
}

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
    hostname "${name:-nimbus-tiny}"
    say "hostname=$name"
    say "uuid=$uuid"
    if [ -f /config/openstack/latest/user_data ]; then
        # Control characters (a CR, escapes) are dropped: the line goes to a terminal.
        say "user-data: $(head -n 1 /config/openstack/latest/user_data |
                          tr -d '\000-\010\013-\037\177')"
    fi
else
    hostname nimbus-tiny
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

ifname_of() {  # the interface with this MAC, waiting a little (2 s) for it to appear
    i=0
    while [ $i -lt 20 ]; do
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

# --- volumes: the disks vdb..vdz, plugged in at boot or while it runs ---
# Looked at every second. A new disk is reported with its size and serial (a
# volume's id, cut to 20 characters as /dev/disk/by-id shows it); a marker line
# at its start is shown, and a blank disk gets one, so a volume's data can be seen
# to follow it from server to server. Each line starts on a line of its own: the
# shell's prompt may be waiting on the console.
disk_say() {
    printf '\nnimbus-disk: %s\n' "$*"
    printf '\nnimbus-disk: %s\n' "$*" > /dev/tty1 2>/dev/null
}

disk_added() {  # $1: vdb
    local dev=/dev/$1 size first mark
    size=$(( $(cat "/sys/block/$1/size" 2>/dev/null || echo 0) * 512 ))
    disk_say "$1 added size=$size serial=$(cat "/sys/block/$1/serial" 2>/dev/null)"
    first=$(dd if="$dev" bs=512 count=1 2>/dev/null | tr -d '\000' | head -n 1 |
            tr -d '\001-\037\177')
    case "$first" in
        "nimbus-data: "*) disk_say "$1 data=${first#nimbus-data: }"; return ;;
    esac
    # Blank means 64 KiB of zeros (an ISO 9660 drive starts with 32 KiB of them);
    # anything else (a file system, a read-only drive) is only looked at.
    [ "$(dd if="$dev" bs=65536 count=1 2>/dev/null | tr -d '\000' | wc -c)" -eq 0 ] || return
    [ "$(cat "/sys/block/$1/ro" 2>/dev/null)" = 0 ] || return
    mark="written-by-$(hostname)"
    printf 'nimbus-data: %s\n' "$mark" | dd of="$dev" conv=notrunc 2>/dev/null || return
    sync
    disk_say "$1 wrote=$mark"
}

watch_disks() {
    known=
    while :; do
        now=
        for dev in /dev/vd[b-z]; do
            [ -b "$dev" ] || continue
            # name:serial, so a disk swapped within a second is seen as two.
            disk="${dev#/dev/}:$(cat "/sys/block/${dev#/dev/}/serial" 2>/dev/null)"
            now="$now $disk"
            case " $known " in *" $disk "*) ;; *) disk_added "${dev#/dev/}" ;; esac
        done
        for disk in $known; do
            case " $now " in *" $disk "*) ;; *) disk_say "${disk%%:*} removed" ;; esac
        done
        known=$now
        sleep 1
    done
}
# The kernel's own notices (PCI and virtio probing) would land in the middle of
# these lines on the serial console: from here on it prints only errors there
# (all of it is still in dmesg).
echo 4 > /proc/sys/kernel/printk
watch_disks &

say ready
# A shell on tty1 for the VNC console (opening the tty makes it the session's own),
# and one on the serial console; each comes back when it exits.
(while :; do setsid sh -c 'exec sh -l <>/dev/tty1 >&0 2>&1'; sleep 1; done) &
while :; do
    setsid cttyhack sh -l
    sleep 1
done
