"""The Claude Desktop bundle: its manifest tells the truth about the server, and the .mcpb installs and runs.

The manifest tests read every `user_config` option and every `mcp_config.env` entry generically:
adding an option means adding its `user_config` entry and its one `env` line, nothing here.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from PIL import Image
from pydantic import SecretStr

import cutout_mcp
from cutout_mcp import catalog
from cutout_mcp.bundle import BundleError, build_bundle, bundle_name, load_manifest
from cutout_mcp.bundle.__main__ import main as build_main
from cutout_mcp.bundle.icon import draw_icon
from cutout_mcp.config import ENVIRONMENT, SETTING_OF, ConfigError, Settings
from cutout_mcp.server import build_server

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = load_manifest()
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)

SIZE_CAP = 280 * 1024
"""Source only, the bundle is about 205 KB (staging and image inputs included); past 280 KB something that is
not source got in."""

USER_CONFIG = re.compile(r"\$\{user_config\.([A-Za-z0-9_]+)\}")
REGISTRY_FORMAT = {"string": "string", "number": "number", "boolean": "boolean", "directory": "filepath"}
"""The server.json `format` each user_config `type` corresponds to."""
PATH_LISTS = {"CUTOUT_INPUT_DIRS"}
"""Variables holding a list of folders: server.json says `string` (a list is not one filepath), while the
form offers one folder through a `directory` picker. MCPB cannot give a `multiple` option to a variable
(the host substitutes an array only as separate `args`, never into an `env` string), so one folder it is."""
README = (ROOT / "README.md").read_text()


def env_mapping() -> dict[str, str]:
    """Each variable the manifest sets -> the user_config option that fills it."""
    mapping = {}
    for var, value in MANIFEST["server"]["mcp_config"]["env"].items():
        found = USER_CONFIG.fullmatch(value)
        assert found, f"{var} must be exactly one ${{user_config.…}}, not {value!r}"
        mapping[var] = found.group(1)
    return mapping


def as_env(value: Any) -> str:
    """How the host writes a user_config value into the environment."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def substitute(value: str, dirname: Path, config: dict[str, Any]) -> str:
    value = value.replace("${__dirname}", str(dirname))
    return USER_CONFIG.sub(lambda m: as_env(config.get(m.group(1), "")), value)


OPTIONAL = sorted(var for var, key in env_mapping().items() if not MANIFEST["user_config"][key].get("required"))
NUMBERS = sorted(var for var, key in env_mapping().items() if MANIFEST["user_config"][key]["type"] == "number")


def test_versions_agree_everywhere() -> None:
    assert VERSION is not None
    assert MANIFEST["version"] == VERSION.group(1) == cutout_mcp.__version__ == SERVER_JSON["version"]


def test_manifest_is_a_uv_bundle_that_runs_the_package() -> None:
    server = MANIFEST["server"]
    assert MANIFEST["manifest_version"] == "0.4", "0.4 is the first manifest version with server.type 'uv'"
    assert server["type"] == "uv"
    assert (ROOT / server["entry_point"]).is_file()
    assert server["entry_point"] == "cutout_mcp/__main__.py"
    assert server["mcp_config"]["command"] == "uv"
    # with the staging extra, so that a bucket set in the form works without installing anything more
    assert server["mcp_config"]["args"] == [
        "run",
        "--directory",
        "${__dirname}",
        "--extra",
        "staging",
        "python",
        "-m",
        "cutout_mcp",
    ]
    assert (ROOT / MANIFEST["icon"]).name == "icon.png"
    assert MANIFEST["compatibility"]["runtimes"]["python"] == ">=3.10"


@pytest.mark.anyio
async def test_manifest_lists_the_tools_the_server_lists(tmp_path: Path) -> None:
    server = build_server(Settings(api_key="k", state_dir=tmp_path / "state"))
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    listed = {tool["name"]: tool["description"] for tool in MANIFEST["tools"]}
    assert set(listed) == set(tools)
    for name, description in listed.items():
        assert description.strip()
        if "COSTS" in (tools[name].description or ""):
            assert "credits" in description, f"{name} costs credits; its manifest description must say so"


def test_prices_and_limits_in_the_manifest_are_the_catalogs() -> None:
    """The manifest is static text, so a test holds it to catalog.py, the one source of prices."""
    tools = {tool["name"]: tool["description"] for tool in MANIFEST["tools"]}
    edit_prices = sorted({m.credits for m in catalog.EDIT_MODELS})
    edit_text = " or ".join(str(p) for p in edit_prices) + " credits"
    assert f"{catalog.VIDEO_CREDITS} credits" in tools["generate_video"]
    assert edit_text in tools["edit_image"]
    assert f"{catalog.MIN_EDIT_IMAGES} to {catalog.MAX_EDIT_IMAGES} images" in tools["edit_image"]
    assert f"{len(catalog.EDIT_MODELS)} models" in tools["edit_image"].replace("five", "5")
    long = MANIFEST["long_description"]
    assert f"video costs {catalog.VIDEO_CREDITS} credits" in long
    assert f"edit {edit_text}" in long
    prices = {catalog.VIDEO_CREDITS, *edit_prices}
    every_figure = re.findall(r"(\d+) credits", json.dumps(MANIFEST))
    assert {int(n) for n in every_figure} <= prices


def test_every_option_fills_one_real_setting_listed_in_server_json() -> None:
    mapping = env_mapping()
    registry = {v["name"]: v for v in SERVER_JSON["packages"][0]["environmentVariables"]}
    assert sorted(mapping.values()) == sorted(MANIFEST["user_config"]), "each option fills exactly one variable"
    for var, key in mapping.items():
        assert ENVIRONMENT.get(var) == "all", f"{var} is not a setting of the stdio server"
        assert var in registry, f"{var} is missing from server.json"
        option_type = MANIFEST["user_config"][key]["type"]
        if var in PATH_LISTS:
            assert (option_type, registry[var]["format"]) == ("directory", "string")
            assert not MANIFEST["user_config"][key].get("multiple"), "an array cannot fill an env variable"
        else:
            assert REGISTRY_FORMAT[option_type] == registry[var]["format"]


def test_the_readme_s_bundle_table_lists_every_field_of_the_form() -> None:
    """The README's Claude Desktop section names each field as the form titles it, and what it sets."""
    section = README.split("### Claude Desktop", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| ([^|`]+?) \| `([A-Z_]+)` \|", section, re.MULTILINE)
    assert rows, "the Claude Desktop section has its table of fields"
    in_form = {MANIFEST["user_config"][key]["title"]: var for var, key in env_mapping().items()}
    assert dict(rows) == in_form
    assert len(rows) == len(in_form), "each field once"


def test_the_folder_field_is_the_one_folder_local_images_are_read_from(tmp_path: Path) -> None:
    key = env_mapping()["CUTOUT_INPUT_DIRS"]
    settings = Settings.load({"CUTOUT_INPUT_DIRS": as_env(str(tmp_path / "My Pictures"))})
    assert settings.allowed_input_dirs == (tmp_path / "My Pictures",)
    blank = Settings.load({"CUTOUT_INPUT_DIRS": as_env(MANIFEST["user_config"][key]["default"])})
    assert blank.allowed_input_dirs == (Path.home(),), "left empty, the home folder, as without the bundle"


def test_only_the_api_key_is_required_and_exactly_the_secrets_are_sensitive() -> None:
    options = MANIFEST["user_config"]
    key = options[env_mapping()["CUTOUT_API_KEY"]]
    assert key["type"] == "string"
    assert key["required"] is True
    assert not any(option.get("required") for option in options.values() if option is not key)
    registry = {v["name"]: v for v in SERVER_JSON["packages"][0]["environmentVariables"]}
    for var, name in env_mapping().items():
        secret = Settings.model_fields[SETTING_OF[var]].annotation in (SecretStr, SecretStr | None)
        assert bool(options[name].get("sensitive")) is secret, f"{var}: sensitive must say whether it is a secret"
        assert bool(registry[var].get("isSecret")) is secret, f"{var}: server.json's isSecret must agree"


def test_the_staging_options_fill_the_staging_settings() -> None:
    """The bucket fields of the form are the variables the staging store reads, with their meaning."""
    mapping = env_mapping()
    assert {
        "CUTOUT_STAGING_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
    } <= set(mapping)
    config = {
        "api_key": "k",
        "staging_url": "s3://my-bucket/cutout",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret-example",
        "aws_endpoint_url": "https://acc.r2.cloudflarestorage.com",
        "aws_region": "auto",
    }
    env = {var: as_env(config.get(name, "")) for var, name in mapping.items()}
    settings = Settings.load(env)
    bucket = settings.staging_bucket
    assert bucket is not None
    assert (bucket.bucket, bucket.prefix, bucket.region) == ("my-bucket", "cutout", "auto")
    assert bucket.origin == "https://acc.r2.cloudflarestorage.com"
    assert settings.aws_secret_access_key is not None
    assert settings.aws_secret_access_key.get_secret_value() == "secret-example"
    assert "secret-example" not in repr(settings)


@pytest.mark.parametrize("var", OPTIONAL)
def test_an_option_left_blank_is_harmless(var: str) -> None:
    """Claude Desktop writes "" for a blank option with a default, and the raw placeholder without one."""
    key = env_mapping()[var]
    assert "default" in MANIFEST["user_config"][key], "a default makes the host substitute instead of passing ${…}"
    assert Settings.load({var: ""}) == Settings.load({})
    assert Settings.load({var: f"${{user_config.{key}}}"}) == Settings.load({})


@pytest.mark.parametrize("var", OPTIONAL)
def test_an_option_kept_at_its_default_gives_the_servers_default(var: str) -> None:
    default = MANIFEST["user_config"][env_mapping()[var]]["default"]
    assert Settings.load({var: as_env(default)}) == Settings.load({})


@pytest.mark.parametrize("var", NUMBERS)
def test_number_bounds_in_the_form_are_the_servers(var: str) -> None:
    option = MANIFEST["user_config"][env_mapping()[var]]
    assert "min" in option
    Settings.load({var: as_env(option["min"])})
    with pytest.raises(ConfigError, match=var):
        Settings.load({var: as_env(option["min"] - 1)})
    if "max" in option:
        Settings.load({var: as_env(option["max"])})
        with pytest.raises(ConfigError, match=var):
            Settings.load({var: as_env(option["max"] + 1)})


def test_icon_is_the_checked_in_drawing() -> None:
    with Image.open(ROOT / "cutout_mcp" / "bundle" / MANIFEST["icon"]) as icon:
        assert icon.format == "PNG"
        assert icon.size == (512, 512)
        assert icon.convert("RGB").tobytes() == draw_icon().convert("RGB").tobytes()


def package_sources(root: Path) -> set[str]:
    """The modules, and the MCP Apps views' HTML, CSS and script (package data)."""
    return {
        path.relative_to(root).as_posix()
        for path in (root / "cutout_mcp").rglob("*")
        if path.suffix in (".py", ".html", ".css", ".js")
        and "__pycache__" not in path.parts
        and path.parent.name != "bundle"
    }


def test_build_is_deterministic_small_and_source_only(tmp_path: Path) -> None:
    first = build_bundle(ROOT, tmp_path / "a")
    second = build_bundle(ROOT, tmp_path / "b")
    assert first.name == bundle_name(MANIFEST["version"]) == f"cutout-mcp-{cutout_mcp.__version__}.mcpb"
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size < SIZE_CAP
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert set(names) == {"manifest.json", "icon.png", "pyproject.toml", "README.md"} | package_sources(ROOT)
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
        assert all(info.external_attr >> 16 == 0o100644 for info in infos)
        assert archive.read("manifest.json") == (ROOT / "cutout_mcp" / "bundle" / "manifest.json").read_bytes()
        assert archive.read("pyproject.toml") == (ROOT / "pyproject.toml").read_bytes()


def copy_checkout(target: Path) -> Path:
    shutil.copytree(ROOT / "cutout_mcp", target / "cutout_mcp", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    return target


def test_build_leaves_out_byte_code_environments_tests_and_old_builds(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "checkout")
    for junk in (
        "cutout_mcp/__pycache__/cli.cpython-311.pyc",
        "cutout_mcp/core/stray.pyc",
        "cutout_mcp/.DS_Store",
        ".venv/lib/python3.11/site-packages/mcp/__init__.py",
        "tests/test_x.py",
        "dist/cutout-mcp-0.0.1.mcpb",
        "cutout_mcp.egg-info/PKG-INFO",
    ):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_bytes(b"junk")
    built = build_bundle(root, tmp_path / "out")
    assert built.read_bytes() == build_bundle(ROOT, tmp_path / "clean").read_bytes()


def test_build_refuses_a_manifest_of_another_version(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "checkout")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{cutout_mcp.__version__}"', 'version = "9.9.9"'))
    with pytest.raises(BundleError, match=r"9\.9\.9"):
        build_bundle(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_build_command_prints_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_main(["--out-dir", str(tmp_path)]) == 0
    assert str(tmp_path / bundle_name(cutout_mcp.__version__)) in capsys.readouterr().out


@pytest.mark.e2e
@pytest.mark.anyio
async def test_the_bundle_runs_as_its_manifest_says(tmp_path: Path) -> None:
    """Unzip the bundle and start it with the manifest's own command, as the host would.

    The host runs `uv run --directory <bundle> python -m cutout_mcp` with its own uv, which
    first installs the dependencies from the bundle's pyproject.toml. uv and a network are not
    assumed here: this venv already has the dependencies, so its python stands in for the
    `python` that uv would provide, with PYTHONPATH (and the working directory, as uv's
    --directory sets it) on the extracted bundle so the bundle's own source is what runs.
    """
    bundle = tmp_path / "installed"
    with zipfile.ZipFile(build_bundle(ROOT, tmp_path / "dist")) as archive:
        archive.extractall(bundle)
    config = MANIFEST["server"]["mcp_config"]
    args = [substitute(arg, bundle, {}) for arg in config["args"]]
    assert args[:5] == ["run", "--directory", str(bundle), "--extra", "staging"]
    command, *rest = args[5:]
    assert command == "python"
    user_config = {"api_key": "bundle-test-key", "output_dir": str(tmp_path / "results")}  # the rest left blank
    env = {var: substitute(value, bundle, user_config) for var, value in config["env"].items()}
    env |= {
        "PYTHONPATH": str(bundle),
        "CUTOUT_BASE_URL": "http://127.0.0.1:9",  # nothing listens: no call may leave this machine
        "CUTOUT_STATE_DIR": str(tmp_path / "state"),
    }

    where = await anyio.run_process(
        [sys.executable, "-c", "import cutout_mcp; print(cutout_mcp.__file__)"], env=env, cwd=bundle
    )
    assert Path(where.stdout.decode().strip()).is_relative_to(bundle), "the extracted source must be what runs"

    params = StdioServerParameters(command=sys.executable, args=rest, env=env, cwd=bundle)
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        jobs = await client.call_tool("list_video_jobs", {})
    assert {tool.name for tool in tools} == {tool["name"] for tool in MANIFEST["tools"]}
    assert not jobs.is_error, jobs
