"""Nimbus Tiny Linux: the project's own bootable guest image, built from Debian packages.

A Debian kernel (``linux-image-cloud-amd64``'s, see ``kernel``), busybox-static
and a shell script (``init.sh``) as the whole OS, in an initramfs on a FAT disk
that syslinux boots (``image``). It boots under QEMU's TCG in about 4 s, reads
the OpenStack config drive that ``services/compute_agent/drivers/configdrive.py``
writes, and says what it found on the serial console (and on tty1, which VNC
shows), one line each, in exactly these forms::

    nimbus-tiny: booting (kernel <uname -r>)
    nimbus-tiny: hostname=<hostname>
    nimbus-tiny: uuid=<server uuid>
    nimbus-tiny: user-data: <first line of the user data>       (when there is some)
    nimbus-tiny: ip=<address>/<prefix> dev <ifname> mac=<mac>    (one per IPv4 network)
    nimbus-tiny: no config drive                                 (instead of the above)
    nimbus-tiny: disk boot <n>, first booted by <uuid>
    nimbus-tiny: rescue: found the server's disk on vdb (boot <n>, first booted by <uuid>)
    nimbus-tiny: ready                                           (a power-button press is heard)
    nimbus-tiny: power button: shutting down                     (then it powers off)

and, for each disk ``vdb`` to ``vdz`` found at boot or plugged in while it runs
(volumes; looked for every second)::

    nimbus-disk: vdb added size=<bytes> serial=<serial, a volume id's first 20 characters>
    nimbus-disk: vdb data=<text>              (the disk starts with "nimbus-data: <text>")
    nimbus-disk: vdb wrote=written-by-<hostname>  (it was blank: all zeros; now it has that mark)
    nimbus-disk: vdb removed

Use::

    from deploy.guest_image import ensure_image
    image = ensure_image(Path(".run/images"))   # .../nimbus-tiny.qcow2, built once

    python3 -m deploy.guest_image build --out DIR [--force]

Standard library only (``make`` may run it with the system python3).
"""

from deploy.guest_image.image import BuildError, build, ensure_image, read_manifest

__all__ = ["BuildError", "build", "ensure_image", "read_manifest"]
