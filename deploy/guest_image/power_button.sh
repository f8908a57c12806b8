#!/bin/sh
# Run by busybox acpid (as /etc/acpi/PWRF/00000080) when the ACPI power button is
# pressed, which is what libvirt's shutdown() and QEMU's system_powerdown send.
# The disk is unmounted (or at least synced) before the power goes.
mkdir /run/nimbus-shutdown 2>/dev/null || exit 0   # one press is enough
# A leading newline: the shell at the prompt may have left a half line.
printf "\nnimbus-tiny: power button: shutting down\n" > /dev/console
sync
umount /rescue /config 2>/dev/null
umount /disk 2>/dev/null || mount -o remount,ro /disk 2>/dev/null
sync
poweroff -f
