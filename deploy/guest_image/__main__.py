"""``python -m deploy.guest_image build --out DIR [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.guest_image.image import BuildError, ensure_image, read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.guest_image",
                                     description="Build the Nimbus Tiny Linux guest image.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build DIR/nimbus-tiny.qcow2 unless it is up to date")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--force", action="store_true", help="build even if it is up to date")
    args = parser.parse_args(argv)
    try:
        image = ensure_image(args.out, force=args.force)
    except BuildError as exc:
        print(f"nimbus-tiny: build failed: {exc}", file=sys.stderr)
        return 1
    manifest = read_manifest(args.out) or {}
    print(f"{image} ({manifest.get('size')} bytes, {manifest.get('kernel_package')} "
          f"{manifest.get('kernel_version')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
