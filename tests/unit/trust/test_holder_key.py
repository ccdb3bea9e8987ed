"""The holder key: where it comes from, how it is kept, and what its digests bind."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stat
from pathlib import Path

import pytest

from numident.config import load_settings
from numident.errors import ConfigurationError
from numident.trust.holder_key import HolderKey, holder_key, holder_key_path


def test_the_first_use_creates_an_owner_only_key_in_the_home_and_later_uses_read_it(
        tmp_path: Path) -> None:
    settings = load_settings(None, home=str(tmp_path))
    first = holder_key(settings)
    path = holder_key_path(settings)
    assert path == tmp_path / "operator" / "holder-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii") == first.secret.hex() + "\n"
    assert len(first.secret) == 32
    assert holder_key(settings) == first
    assert [p.name for p in path.parent.iterdir()] == ["holder-key"]


def test_a_key_already_in_the_home_is_kept(tmp_path: Path) -> None:
    settings = load_settings(None, home=str(tmp_path))
    secret = secrets.token_bytes(32)
    holder_key_path(settings).parent.mkdir(parents=True)
    holder_key_path(settings).write_text(secret.hex().upper() + "\n", encoding="ascii")
    assert holder_key(settings) == HolderKey(secret)


def test_a_configured_key_wins_and_nothing_is_written(tmp_path: Path) -> None:
    secret = secrets.token_bytes(32)
    settings = load_settings(None, home=str(tmp_path),
                             operator={"camara": {"holder_key": secret.hex()}})
    assert holder_key(settings) == HolderKey(secret)
    assert not holder_key_path(settings).exists()
    assert secret.hex() not in repr(settings)
    assert secret.hex() not in repr(holder_key(settings))


@pytest.mark.parametrize("bad", ["secret", "ab" * 31, "zz" * 32, "ab" * 33])
def test_a_configured_key_must_be_64_hex_digits(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"operator\.camara\.holder_key: .*64 hex"):
        load_settings(None, home=str(tmp_path), operator={"camara": {"holder_key": bad}})


def test_a_file_without_a_key_is_refused(tmp_path: Path) -> None:
    settings = load_settings(None, home=str(tmp_path))
    holder_key_path(settings).parent.mkdir(parents=True)
    holder_key_path(settings).write_text("not a key\n", encoding="ascii")
    with pytest.raises(ConfigurationError, match="holder-key does not hold a holder key"):
        holder_key(settings)


def test_a_digest_binds_key_column_and_line() -> None:
    """Equal values in other columns, on other lines or under other keys do not look equal."""
    key = HolderKey(bytes(range(32)))
    digest = key.digest("country", "+34629255833", "ES")
    assert len(digest) == 64
    assert digest == key.digest("country", "+34629255833", "ES")
    assert len({digest, key.digest("nationality", "+34629255833", "ES"),
                key.digest("country", "+34629255834", "ES"),
                HolderKey(bytes(32)).digest("country", "+34629255833", "ES")}) == 4
    assert key.matches(digest, "country", "+34629255833", "ES")
    assert not key.matches(digest, "country", "+34629255833", "PT")
    assert key.id != HolderKey(bytes(32)).id
    assert len(key.id) == 16


def test_the_digest_is_hmac_sha256_of_column_line_and_normal_form() -> None:
    """The stored form is fixed: digests written by one release are read by the next."""
    secret = bytes(range(32))
    message = b"birthdate\x1f+34629255833\x1f1978-08-22"
    assert HolderKey(secret).digest("birthdate", "+34629255833", "1978-08-22") == \
        hmac.new(secret, message, hashlib.sha256).hexdigest()
