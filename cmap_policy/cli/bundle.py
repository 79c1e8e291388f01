"""``cmap-policy bundle``: build, sign and verify policy bundles, and make their keys.

The work is ``cmap_policy.bundle``'s; this module reads the options and prints. ``cryptography`` comes with
the ``bundle`` extra and is imported only when one of these commands runs (or ``--bundle`` is given).
"""

from __future__ import annotations

import json
import sys

import click

from ..errors import BundleError, PolicyError
from .options import EXIT_OK, bundle_module, fail, report_policy_error


@click.group("bundle")
def bundle_group() -> None:
    """Signed policy bundles: one file holding the policy tree, a manifest of every file's SHA-256, the
    policy hash and the releases, signed with Ed25519 (a JWS, as Open Policy Agent's .signatures.json)."""


@bundle_group.command("keygen")
@click.option("-o", "--output", "name", required=True, metavar="NAME",
              help="Write NAME.pem (the private key, mode 600) and NAME.pub.pem (the public key).")
def keygen_command(name: str) -> None:
    """Make an Ed25519 key pair as PEM files (openssl genpkey -algorithm ed25519 keys work as well)."""
    bundle = bundle_module()
    try:
        pair = bundle.generate(name)
    except BundleError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write the key: {err.strerror} ({err.filename})")
    click.echo(f"wrote {pair.private} (private: keep it secret) and {pair.public} (public); key id {pair.key_id}")


@bundle_group.command("build")
@click.argument("policy_dir", required=False, type=click.Path(file_okay=False), metavar="[POLICY_DIR]")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The bundle to write (a .tar.gz).")
@click.option("--key", required=True, type=click.Path(dir_okay=False), metavar="PRIVATE_KEY",
              help="The Ed25519 private key (PEM) to sign with.")
def build_command(policy_dir: str | None, output: str, key: str) -> None:
    """Check the policy tree (default: the bundled policy), sign its manifest and write the bundle."""
    bundle = bundle_module()
    try:
        manifest = bundle.build(policy_dir, output, key)
    except PolicyError as err:
        report_policy_error(err)
        fail("nothing was signed")
    except BundleError as err:
        fail(str(err))
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror}")
    click.echo(f"wrote {output}: {len(manifest.files)} files, policy hash {manifest.policy_hash}, releases "
               f"{manifest.releases[0]} to {manifest.releases[-1]}, signed by key "
               f"{bundle.key_id(bundle.read_private(key).public_key())}")


@bundle_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--key", required=True, type=click.Path(dir_okay=False), metavar="PUBLIC_KEY",
              help="The Ed25519 public key (PEM) the bundle must be signed with.")
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the manifest's summary and the key id, as one object.")
def verify_command(file: str, key: str, out_format: str) -> None:
    """Check a bundle's signature and every file. Exits 1 naming the first file missing, extra or altered,
    or saying the signature is wrong."""
    bundle = bundle_module()
    try:
        verified = bundle.verify(file, key)
    except BundleError as err:
        fail(f"not verified: {err}")
    m = verified.manifest
    if out_format == "json":
        click.echo(json.dumps({"file": file, "key_id": verified.key_id, **m.as_dict()}))
    else:
        click.echo(f"{file}: verified, signed by key {verified.key_id}; {len(m.files)} files, policy hash "
                   f"{m.policy_hash}, latest release {m.releases[-1]}")
    sys.exit(EXIT_OK)

