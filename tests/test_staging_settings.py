"""The staging settings: CUTOUT_STAGING_URL, its TTL and the AWS_* variables, checked at start-up; the
one origin they trust; the refusal to start without obstore; and secrets kept out of every log line."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from cutout_mcp.cli import main
from cutout_mcp.config import ConfigError, Settings
from cutout_mcp.core.staging import new_upload_key, upload_key, upload_reference

BUCKET_ENV = {
    "CUTOUT_STAGING_URL": "s3://cutout-media/staged/",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
}


def test_the_bucket_url_names_bucket_and_prefix_and_aws_is_the_default_endpoint() -> None:
    settings = Settings.load(BUCKET_ENV)
    assert settings.staging_url == "s3://cutout-media/staged"
    bucket = settings.staging_bucket
    assert bucket is not None
    assert (bucket.bucket, bucket.prefix, bucket.region) == ("cutout-media", "staged", "us-east-1")
    assert bucket.endpoint == "https://s3.us-east-1.amazonaws.com"
    assert settings.staging_ttl == 86400
    assert settings.trusted_image_origins == ("https://s3.us-east-1.amazonaws.com",)
    assert Settings.load({**BUCKET_ENV, "AWS_DEFAULT_REGION": "eu-west-3"}).trusted_image_origins == (
        "https://s3.eu-west-3.amazonaws.com",
    )
    both = {**BUCKET_ENV, "AWS_DEFAULT_REGION": "eu-west-3", "AWS_REGION": "ap-south-1"}
    assert Settings.load(both).aws_region == "ap-south-1", "AWS_REGION wins over AWS_DEFAULT_REGION"
    assert Settings.load({}).staging_bucket is None
    assert Settings.load({}).trusted_image_origins == ()


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://ACCOUNT.r2.cloudflarestorage.com/", "https://account.r2.cloudflarestorage.com"),
        ("https://storage.googleapis.com:443", "https://storage.googleapis.com"),
        ("http://[::1]:8333", "http://[::1]:8333"),
    ],
)
def test_only_the_endpoints_exact_origin_is_trusted(endpoint: str, origin: str) -> None:
    settings = Settings.load({**BUCKET_ENV, "AWS_ENDPOINT_URL": endpoint})
    assert settings.trusted_image_origins == (origin,)
    standalone = Settings.load(
        {**BUCKET_ENV, "AWS_ENDPOINT_URL": endpoint, "CUTOUT_SANDBOX": "1", "CUTOUT_BASE_URL": "http://127.0.0.1:8787"}
    )
    assert standalone.trusted_image_origins == ("http://127.0.0.1:8787", origin), "beside the sandbox's"
    assert Settings.load({"AWS_ENDPOINT_URL": endpoint}).trusted_image_origins == (), "no bucket, nothing trusted"


@pytest.mark.parametrize(
    ("env", "named", "why"),
    [
        ({"CUTOUT_STAGING_URL": "https://bucket.s3.amazonaws.com/x"}, "CUTOUT_STAGING_URL", "s3://bucket/prefix"),
        ({"CUTOUT_STAGING_URL": "s3://Bad_Bucket/x"}, "CUTOUT_STAGING_URL", "not a bucket name"),
        ({"CUTOUT_STAGING_URL": "s3://bucket/a/../b"}, "CUTOUT_STAGING_URL", "'..' is not allowed"),
        ({"CUTOUT_STAGING_URL": "s3://key:secret@bucket/x"}, "CUTOUT_STAGING_URL", "without credentials"),
        ({"CUTOUT_STAGING_TTL": "604801"}, "CUTOUT_STAGING_TTL", "604800"),
        ({"CUTOUT_STAGING_TTL": "0"}, "CUTOUT_STAGING_TTL", "60"),
        ({"CUTOUT_STAGING_TTL": "a day"}, "CUTOUT_STAGING_TTL", "integer"),
        ({"AWS_ENDPOINT_URL": "minio:9000"}, "AWS_ENDPOINT_URL", "http(s) URL"),
        ({"AWS_ENDPOINT_URL": "https://k:s@minio.example"}, "AWS_ENDPOINT_URL", "without credentials"),
        ({"AWS_REGION": "EU West"}, "AWS_REGION", "region name"),
        ({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}, "AWS_SECRET_ACCESS_KEY", "set both"),
        ({"AWS_SECRET_ACCESS_KEY": "sekrit-value"}, "AWS_ACCESS_KEY_ID", "set both"),
        ({"AWS_SESSION_TOKEN": "tok-value"}, "AWS_SESSION_TOKEN", "needs"),
    ],
)
def test_a_bad_staging_setting_stops_the_server_naming_it(
    env: dict[str, str], named: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.load(env)
    assert named in str(refused.value)
    assert why in str(refused.value)
    for secret in ("secret", "sekrit-value", "tok-value"):
        assert secret not in str(refused.value).replace("AWS_SECRET", "")


def test_a_bad_ttl_stops_the_cli_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var, value in {**BUCKET_ENV, "CUTOUT_STAGING_TTL": "2592000"}.items():
        monkeypatch.setenv(var, value)
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "CUTOUT_STAGING_TTL" in error
    assert BUCKET_ENV["AWS_SECRET_ACCESS_KEY"] not in error


def test_a_bucket_without_obstore_stops_the_cli_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "obstore" else real_find_spec(name, *a)
    )
    for var, value in BUCKET_ENV.items():
        monkeypatch.setenv(var, value)
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "pip install 'cutout-mcp[staging]'" in error
    assert "CUTOUT_STAGING_URL" in error
    assert BUCKET_ENV["AWS_SECRET_ACCESS_KEY"] not in error


def test_staging_secrets_never_reach_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    from cutout_mcp.logs import configure_logging

    settings = Settings.load({**BUCKET_ENV, "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLETOKEN"})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(settings)
        logging.getLogger("obstore.test").error(
            "secret %s token %s", BUCKET_ENV["AWS_SECRET_ACCESS_KEY"], "FwoGZXIvYXdzEXAMPLETOKEN"
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "secret [REDACTED] token [REDACTED]" in err
    for secret in (BUCKET_ENV["AWS_SECRET_ACCESS_KEY"], "FwoGZXIvYXdzEXAMPLETOKEN"):
        assert secret not in err


# --- upload references -----------------------------------------------------------------------------


def test_an_upload_key_is_random_labelled_and_typed_by_its_content_type() -> None:
    first = new_upload_key("My Holiday (1).JPEG", "image/png")
    second = new_upload_key("My Holiday (1).JPEG", "image/png")
    assert first != second
    assert first.startswith("uploads/")
    assert first.endswith("/My-Holiday-1.png"), "the name labels it; the content type decides the extension"
    assert upload_key(upload_reference(first)) == first, "the reference holds exactly the store key"
    for name, label in [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cat.jpg", "cat"),
        (".hidden", "hidden"),
        ("猫.jpg", "image"),
        ("", "image"),
        ("x" * 300 + ".jpg", "x" * 64),
    ]:
        key = new_upload_key(name, "image/jpeg")
        assert key.rsplit("/", 1)[1] == f"{label}.jpg", name
        assert upload_key(upload_reference(key)) == key


@pytest.mark.parametrize(
    "reference",
    [
        "upload:staged/abc.jpg",
        "upload:uploads/../staged/x.jpg",
        "upload:uploads/short/cat.jpg",
        "upload:uploads/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/cat.gif",
        "upload:uploads/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/../cat.jpg",
        "uploads/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/cat.jpg",
        "https://example.com/upload:uploads/x.jpg",
    ],
)
def test_a_reference_that_get_upload_url_did_not_make_names_no_key(reference: str) -> None:
    assert upload_key(reference) is None
