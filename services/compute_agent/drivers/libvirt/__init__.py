"""The libvirt driver: guests are QEMU virtual machines (``driver``), described by
domain XML built with lxml (``domain``), reached through one connection whose
blocking calls run in threads (``connection``). Importing this package does not
import libvirt-python; ``driver`` does."""
