"""Signed policy bundles: built, verified, refused (another key, one byte changed, hostile members), loaded."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmap_policy import api, bundle, load_policy
from cmap_policy.bundle import archive
from cmap_policy.cli import main
from cmap_policy.errors import BundleError

LINE = ["eval", "--code", "T1016", "--date", "2026-01-05", "--modifier", "93"]


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bundle.KeyPair, bundle.KeyPair]:
    """A bundle of the bundled policy signed with one key, and another key pair."""
    folder = tmp_path_factory.mktemp("bundle")
    key = bundle.generate(folder / "dss")
    other = bundle.generate(folder / "other")
    out = folder / "release.tar.gz"
    bundle.build(None, out, key.private)
    return out, key, other


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def _cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_bundle_verifies_with_its_key_and_loads_the_same_policy(signed: tuple[Path, bundle.KeyPair,
                                                                                 bundle.KeyPair]) -> None:
    path, key, _ = signed
    verified = bundle.verify(path, key.public)
    tree = load_policy()
    assert verified.key_id == key.key_id
    assert verified.manifest.policy_hash == tree.hash
    assert verified.manifest.releases[-1] == tree.latest.id
    assert {"program.json", "releases.json", "codes/T1016.json"} <= set(verified.manifest.files)
    loaded = bundle.load(path, key.public)
    assert loaded.policy.hash == tree.hash and loaded.key_id == key.key_id
    line = {"code": "97153", "date": "2026-01-05", "modifiers": ["95"]}
    got = [r.as_dict() for r in api.eval_lines([line], policy=loaded.policy)]
    assert got == [r.as_dict() for r in api.eval_lines([line], policy=tree)]  # rule references included


def test_a_bundle_is_refused_under_another_key(signed: tuple[Path, bundle.KeyPair, bundle.KeyPair]) -> None:
    path, key, other = signed
    with pytest.raises(BundleError, match="the signature is wrong") as caught:
        bundle.verify(path, other.public)
    assert key.key_id in str(caught.value) and other.key_id in str(caught.value)
    code, out, err = _cli(["bundle", "verify", str(path), "--key", str(other.public)])
    assert code == 1 and out == "" and "not verified: .signatures.json: the signature is wrong" in err
    code, out, err = _cli([*LINE, "--bundle", str(path), "--verify-key", str(other.public)])
    assert code == 1 and out == "" and "the bundle is not used" in err


def _rewrite(src: Path, dst: Path, members: dict[str, bytes]) -> Path:
    archive.write(dst, members)
    return dst


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_byte_changed_in_any_file_is_named(signed: tuple[Path, bundle.KeyPair, bundle.KeyPair],
                                               tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path, key, _ = signed
    members = _members(path)
    name = data.draw(st.sampled_from(sorted(members)))
    content = bytearray(members[name])
    at = data.draw(st.integers(0, len(content) - 1))
    content[at] = data.draw(st.integers(0, 255).filter(lambda b: b != content[at]))
    members[name] = bytes(content)
    changed = _rewrite(path, tmp_path_factory.mktemp("changed") / "changed.tar.gz", members)
    with pytest.raises(BundleError) as caught:
        bundle.verify(changed, key.public)
    if name == ".signatures.json":
        assert caught.value.member == ".signatures.json"
    else:
        assert caught.value.member == name and "altered" in caught.value.message


def test_a_file_missing_or_extra_is_named(signed: tuple[Path, bundle.KeyPair, bundle.KeyPair],
                                          tmp_path: Path) -> None:
    path, key, _ = signed
    members = _members(path)
    del members["codes/T1016.json"]
    with pytest.raises(BundleError, match="missing") as caught:
        bundle.verify(_rewrite(path, tmp_path / "a.tar.gz", members), key.public)
    assert caught.value.member == "codes/T1016.json"
    members = {**_members(path), "codes/G0000.json": b"{}"}
    code, _, err = _cli(["bundle", "verify", str(_rewrite(path, tmp_path / "b.tar.gz", members)),
                         "--key", str(key.public)])
    assert code == 1 and "codes/G0000.json: extra" in err
    members = _members(path)
    del members[".signatures.json"]
    with pytest.raises(BundleError, match="not signed"):
        bundle.verify(_rewrite(path, tmp_path / "c.tar.gz", members), key.public)


def _tar(path: Path, *entries: tarfile.TarInfo, data: bytes = b"{}") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in entries:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 2, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info


@pytest.mark.parametrize(("entry", "why"), [
    (_info("codes/T1016.json", tarfile.SYMTYPE, link="/etc/passwd"), "a symbolic link"),
    (_info("codes/T1016.json", tarfile.LNKTYPE, link="program.json"), "a hard link"),
    (_info("../outside.json"), "not plain and relative"),
    (_info("/etc/cron.d/x"), "not plain and relative"),
    (_info("codes/../../x.json"), "not plain and relative"),
    (_info("codes\\x.json"), "not plain and relative"),
    (_info("dev", tarfile.CHRTYPE), "not a regular file"),
    (_info("fifo", tarfile.FIFOTYPE), "not a regular file"),
])
def test_hostile_members_are_refused_by_name_before_anything_is_read(tmp_path: Path, entry: tarfile.TarInfo,
                                                                     why: str) -> None:
    path = _tar(tmp_path / "hostile.tar.gz", _info("program.json"), entry)
    with pytest.raises(BundleError, match=why) as caught:
        archive.read(path)
    assert caught.value.member == entry.name


def test_oversized_members_bombs_duplicates_and_non_bundles_are_refused(tmp_path: Path) -> None:
    big = 8 << 20 | 1
    huge = tmp_path / "big.tar.gz"
    with tarfile.open(huge, "w:gz") as tar:
        info = _info("codes/T1016.json", size=big)
        tar.addfile(info, io.BytesIO(b" " * big))
    with pytest.raises(BundleError, match="more than the 8,388,608 a member of a bundle may have"):
        archive.read(huge)
    # a gzip bomb: a tar header declaring a small member, then gigabytes of zeros would follow; reading stops
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as gz:
        header = _info("pax", tarfile.XHDTYPE, size=0)
        header.size = 300 << 20
        raw = bytearray(header.tobuf(tarfile.USTAR_FORMAT))
        gz.write(bytes(raw))
        for _ in range(300):
            gz.write(b"0" * (1 << 20))
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(BundleError, match="unpacks to more than 268,435,456 bytes"):
        archive.read(bomb)
    twice = _tar(tmp_path / "twice.tar.gz", _info("program.json"), _info("program.json"))
    with pytest.raises(BundleError, match="twice"):
        archive.read(twice)
    (tmp_path / "plain.json").write_text("{}")
    for not_a_bundle in (tmp_path / "plain.json", tmp_path):
        with pytest.raises(BundleError):
            archive.read(not_a_bundle)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BundleError, match="FIFO"):
        archive.read(tmp_path / "fifo")


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    code, out, _ = _cli(["bundle", "keygen", "-o", str(tmp_path / "dss")])
    assert code == 0 and "key id" in out
    assert stat.S_IMODE((tmp_path / "dss.pem").stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "dss.pub.pem").read_bytes()
    before = (tmp_path / "dss.pem").read_bytes()
    code, _, err = _cli(["bundle", "keygen", "-o", str(tmp_path / "dss")])
    assert code == 1 and "exists already" in err and (tmp_path / "dss.pem").read_bytes() == before
    code, _, err = _cli(["bundle", "verify", str(tmp_path / "dss.pem"), "--key", str(tmp_path / "dss.pem")])
    assert code == 1 and "not a PEM public key" in err


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_keys_made_by_openssl_work(tmp_path: Path) -> None:
    private, public = tmp_path / "o.pem", tmp_path / "o.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    out = tmp_path / "r.tar.gz"
    code, _, err = _cli(["bundle", "build", "-o", str(out), "--key", str(private)])
    assert code == 0, err
    assert bundle.verify(out, public).key_id == bundle.key_id(bundle.read_public(public))
    # and a key openssl made from a keygen key's private half is the same public key
    ours = bundle.generate(tmp_path / "ours")
    derived = tmp_path / "derived.pub.pem"
    subprocess.run(["openssl", "pkey", "-in", str(ours.private), "-pubout", "-out", str(derived)], check=True)
    assert bundle.key_id(bundle.read_public(derived)) == ours.key_id


def test_eval_with_a_verified_bundle_decides_as_the_tree_and_says_who_signed(
        signed: tuple[Path, bundle.KeyPair, bundle.KeyPair]) -> None:
    path, key, _ = signed
    code, out, err = _cli([*LINE, "--bundle", str(path), "--verify-key", str(key.public)])
    _, tree_out, _ = _cli(LINE)
    assert code == 0 and json.loads(out) == json.loads(tree_out)
    assert f"signed by key {key.key_id}" in err
    code, _, err = _cli([*LINE, "--bundle", str(path)])
    assert code == 2 and "--bundle needs --verify-key" in err


def test_a_tree_that_does_not_load_is_never_signed(tmp_path: Path) -> None:
    key = bundle.generate(tmp_path / "k")
    root = tmp_path / "policy"
    shutil.copytree(Path(load_policy().root), root)
    (root / "codes" / "T1016.json").write_text("{")
    code, _, err = _cli(["bundle", "build", str(root), "-o", str(tmp_path / "x.tar.gz"), "--key", str(key.private)])
    assert code == 1 and "nothing was signed" in err and not (tmp_path / "x.tar.gz").exists()


def test_the_same_tree_and_key_give_the_same_bytes(signed: tuple[Path, bundle.KeyPair, bundle.KeyPair],
                                                   tmp_path: Path) -> None:
    path, key, _ = signed
    bundle.build(None, tmp_path / "again.tar.gz", key.private)
    assert (tmp_path / "again.tar.gz").read_bytes() == path.read_bytes()
