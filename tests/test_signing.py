"""Loading the root signing key: environment first, then a key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agentkit.errors import ConfigurationError
from agentkit.signing import SIGNING_KEY_ENV, load_signing_key

KEY = bytes(range(32))


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    f = tmp_path / "k.key"
    f.write_text((b"x" * 16).hex())
    assert load_signing_key(f, env={SIGNING_KEY_ENV: KEY.hex()}) == KEY
    assert load_signing_key(None, env={SIGNING_KEY_ENV: f" {KEY.hex()}\n"}) == KEY


def test_a_key_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "k.key"
    f.write_text(KEY.hex() + "\n")
    assert load_signing_key(str(f), env={}) == KEY


def test_create_writes_a_private_key_once(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "k.key"
    key = load_signing_key(f, create=True, env={})
    assert len(key) == 32 and f.read_text().strip() == key.hex()
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert load_signing_key(f, create=True, env={}) == key  # read back, never replaced


@pytest.mark.parametrize(
    ("env", "text", "message"),
    [
        ({SIGNING_KEY_ENV: "not-hex"}, None, "must be a hex string"),
        ({SIGNING_KEY_ENV: "abcd"}, None, "at least 16 bytes"),
        ({}, "zz", "must be a hex string"),
        ({}, "00" * 15, "at least 16 bytes"),
    ],
)
def test_bad_keys_are_refused(
    tmp_path: Path, env: dict[str, str], text: str | None, message: str
) -> None:
    f = tmp_path / "k.key"
    if text is not None:
        f.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_signing_key(f, env=env)


def test_no_key_says_where_to_put_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=SIGNING_KEY_ENV):
        load_signing_key(None, env={})
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_signing_key(tmp_path / "missing.key", env={})
    assert not (tmp_path / "missing.key").exists()
