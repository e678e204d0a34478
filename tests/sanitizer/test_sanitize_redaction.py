"""Acceptance 6: secret keys, pydantic secrets and URL credentials are redacted and reported."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from pydantic import BaseModel, SecretBytes, SecretStr

from agentkit.report import ReportKind
from agentkit.sanitizer import REDACTED, ObjectSanitizer

# the compiled pass, the pure-Python fast path, the walk alone
MODES = {"native": {}, "python-fast": {"native": False}, "walk": {"fast_path": False}}


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "client_secret",
        "token",
        "access-token",
        "api_key",
        "API-Key",
        "apikey",
        "X-Api-Key",
        "Authorization",
        "cookie",
        "Set-Cookie",
        "credentials",
        "private_key",
        "privateKey",
        "pass_word",
        "tök_token",
    ],
)
@pytest.mark.parametrize("mode", list(MODES))
def test_secret_keys_are_redacted_on_both_paths(key: str, mode: str) -> None:
    obj = {"outer": [{key: "s3cr3t", "keep": "visible"}]}
    clean, report = ObjectSanitizer(**MODES[mode]).sanitize(obj)
    assert clean == {"outer": [{key: REDACTED, "keep": "visible"}]}
    assert len(report.entries) == 1
    entry = report.entries[0]
    assert entry.kind is ReportKind.REDACTED and entry.type == "str"
    assert "s3cr3t" not in repr(clean)


def test_report_path_quotes_keys_that_are_not_identifiers() -> None:
    _, report = ObjectSanitizer().sanitize({"a": [{"X-Api-Key": "k"}]})
    assert report.paths == ['$.a[0]["X-Api-Key"]']


def test_numbers_and_none_under_secret_keys_are_kept() -> None:
    obj = {"input_tokens": 120, "token_cost": 0.5, "password": None, "has_secret": True}
    clean, report = ObjectSanitizer().sanitize(obj)
    assert clean == obj and report.total == 0


def test_whole_subtree_under_a_secret_key_is_redacted() -> None:
    clean, report = ObjectSanitizer().sanitize({"credentials": {"user": "u", "pw": "p"}})
    assert clean == {"credentials": REDACTED}
    assert report.entries[0].type == "dict"


def test_configurable_secret_keys() -> None:
    s = ObjectSanitizer(secret_keys=["ssn"])
    clean, report = s.sanitize({"SSN": "123", "password": "kept"})
    assert clean == {"SSN": REDACTED, "password": "kept"}
    assert report.paths == ["$.SSN"]


def test_pydantic_secrets() -> None:
    class Login(BaseModel):
        user: str
        password: SecretStr
        blob: SecretBytes

    obj = {
        "login": Login(user="u", password=SecretStr("pw"), blob=SecretBytes(b"b")),
        "raw": SecretStr("x"),
    }
    clean, report = ObjectSanitizer().sanitize(obj)
    assert clean == {
        "login": {"user": "u", "password": REDACTED, "blob": REDACTED},
        "raw": REDACTED,
    }
    assert sorted(report.paths) == ["$.login.blob", "$.login.password", "$.raw"]
    assert set(report.counts) == {"redacted"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:pass@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pass@host", "redis://:***@host"),
        ("https://alice:s3cr3t@example.com/x?y=1", "https://alice:***@example.com/x?y=1"),
        (
            "postgresql://postgres:pw@127.0.0.1:5432/test",
            "postgresql://postgres:***@127.0.0.1:5432/test",
        ),
        ("see redis://u:p@h and amqp://v:q@i", "see redis://u:***@h and amqp://v:***@i"),
    ],
)
@pytest.mark.parametrize("mode", list(MODES))
def test_url_credentials(url: str, expected: str, mode: str) -> None:
    clean, report = ObjectSanitizer(**MODES[mode]).sanitize({"dsn": [url]})
    assert clean == {"dsn": [expected]}
    assert report.paths == ["$.dsn[0]"] and report.entries[0].kind is ReportKind.REDACTED


@pytest.mark.parametrize(
    "text", ["https://example.com/a", "ssh://git@github.com/x", "not a url: a:b@c", "a://b"]
)
def test_urls_without_passwords_are_untouched(text: str) -> None:
    clean, report = ObjectSanitizer().sanitize([text])
    assert clean == [text] and report.total == 0


def test_redaction_reaches_object_attributes_and_dataclass_fields() -> None:
    @dataclasses.dataclass
    class Conf:
        api_key: str
        url: str

    class Client:
        def __init__(self) -> None:
            self.token = "t"
            self.name = "c"

    clean, report = ObjectSanitizer().sanitize(
        {"conf": Conf("k", "redis://a:b@h"), "client": Client()}
    )
    assert clean["conf"] == {"api_key": REDACTED, "url": "redis://a:***@h"}
    assert clean["client"]["attributes"] == {"token": REDACTED, "name": "c"}
    assert "$.client.token" in report.paths


def test_redacted_values_never_reach_the_pickle() -> None:
    obj: dict[str, Any] = {"password": "hunter2", "dsn": "redis://u:hunter3@h"}
    _, _, blob = ObjectSanitizer().sanitize_pickled(obj)
    assert b"hunter2" not in blob and b"hunter3" not in blob
    assert pickle.loads(blob) == {"password": REDACTED, "dsn": "redis://u:***@h"}


def test_secrets_inside_subtrees_the_walk_accepts_natively_are_still_redacted() -> None:
    import os

    obj = {
        "module": os,
        "clean_child": {"rows": [1, 2, 3], "password": "pw"},
        "urls": ["redis://u:p@h", "x"],
        "plain": {"a": [1, 2], "b": "c"},
    }
    clean, report = ObjectSanitizer().sanitize(obj)
    assert clean["clean_child"] == {"rows": [1, 2, 3], "password": REDACTED}
    assert clean["urls"] == ["redis://u:***@h", "x"]
    assert clean["plain"] == obj["plain"]
    assert sorted(report.paths) == ["$.clean_child.password", "$.module", "$.urls[0]"]
    # without secrets, subtrees proven clean natively are kept as they are (not copied)
    clean, report = ObjectSanitizer().sanitize({"module": os, "plain": obj["plain"]})
    assert clean["plain"] is obj["plain"] and report.paths == ["$.module"]


def test_url_credentials_in_exception_messages_are_redacted() -> None:
    try:
        raise ConnectionError("cannot reach redis://app:hunter2@cache:6379")
    except ConnectionError as exc:
        err = exc
    clean, report = ObjectSanitizer().sanitize({"error": err})
    assert clean["error"]["message"] == "cannot reach redis://app:***@cache:6379"
    assert "hunter2" not in repr(clean)
    assert report.counts == {"replaced": 1, "redacted": 2}


@pytest.mark.parametrize("mode", list(MODES))
def test_bytes_keys_and_the_environment(mode: str) -> None:
    import os

    obj = {b"AWS_SECRET_ACCESS_KEY": b"abc", b"HOME": b"/root"}
    clean, report = ObjectSanitizer(**MODES[mode]).sanitize(obj)
    assert clean == {b"AWS_SECRET_ACCESS_KEY": REDACTED, b"HOME": b"/root"}
    assert report.paths == ["$[b'AWS_SECRET_ACCESS_KEY']"]
    clean, report = ObjectSanitizer(**MODES[mode]).sanitize({"env": os.environ})
    assert clean["env"] == {"__agentkit_placeholder__": "environment", "type": "os._Environ"}


@pytest.mark.parametrize("mode", list(MODES))
def test_numeric_only_structures_under_secret_keys_are_kept(mode: str) -> None:
    kept = {
        "token_stats": {"in_mean": 1.5, "in_p50": 12, "by_day": [[1, 2], [3, 4]]},
        "tokens": [10, 20, None, True],
    }
    redacted = {
        "tokens_by_key": {"AKIAIOSFODNN7EXAMPLE": 3},  # keys may be the secrets
        "token_list": [1, "sk-live-abc"],
        "secret_counts": {"f9d3a2b4c5d6e7f8a9b0c1d2e3f4": 1},  # too long to be a field name
    }
    clean, report = ObjectSanitizer(**MODES[mode]).sanitize({**kept, **redacted})
    assert {k: clean[k] for k in kept} == kept
    assert all(clean[k] == REDACTED for k in redacted)
    assert sorted(report.paths) == sorted(f"$.{k}" for k in redacted)


def test_secret_words_in_values_do_not_force_the_walk() -> None:
    value = {"notes": ["reset your password", "token expired"], "n": [1, 2]}
    clean, report = ObjectSanitizer().sanitize(value)
    assert clean is value and report.total == 0


def test_many_distinct_keys_fall_back_to_the_byte_scan() -> None:
    value = {f"k{i}": i for i in range(5000)}
    value["db_password"] = "pw"  # type: ignore[assignment]
    clean, report = ObjectSanitizer().sanitize(value)
    assert clean["db_password"] == REDACTED and report.paths == ["$.db_password"]
    del value["db_password"]
    clean, report = ObjectSanitizer().sanitize(value)
    assert clean is value and report.total == 0
