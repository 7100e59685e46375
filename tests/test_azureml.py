"""Azure ML publish/submit: entities checked by the SDK's loaders, HTTP against a fake Azure."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import yaml

from olive_workflows.integrations.azureml import (
    DEFAULT_CACHE_PATH,
    DEFAULT_PIP_PACKAGES,
    AzureMLError,
    RunInfo,
    Workspace,
    build_command_job,
    build_model_asset,
    job_yaml,
    model_asset_yaml,
    plan_publish,
    publish_model,
    read_run_info,
    resolve_workspace,
    submit_job,
)

azure_ml = pytest.importorskip("azure.ai.ml", reason="needs the azure extra")
requests = pytest.importorskip("requests")

from azure.ai.ml import load_job, load_model  # noqa: E402
from azure.core.pipeline.transport import RequestsTransport  # noqa: E402
from azure.identity import ClientSecretCredential, EnvironmentCredential  # noqa: E402
from requests.structures import CaseInsensitiveDict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "tenant-1"
CLIENT_SECRET = "client-secret-never-shown"
ACCOUNT_KEY = base64.b64encode(b"account-key-never-shown").decode()
SAS_TOKEN = "sv=2023-11-03&ss=b&srt=co&sp=rwl&se=2030-01-01&sig=SasSignatureNeverShown"
WS = Workspace(SUB, "rg", "ws", "flags")
ARM = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws"
)
BLOB_HOST = "fakestore.blob.core.windows.net"
CONTAINER = "azureml-blobstore-0000"
INFO = RunInfo(
    recipe_name="ft-for-travel",
    description="Phi-3.5 fine-tuned for travel questions",
    olive_version="0.13.0",
    steps=["awq", "lora", "model_builder"],
    target="gpu/CUDAExecutionProvider",
)


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


# Entra ID's answer carries a tenant id, which the SDK puts into studio URLs.
ACCESS_TOKEN = _jwt({"tid": TENANT, "aud": "https://management.azure.com", "oid": "user-1"})


# --------------------------------------------------------------------------- fake Azure

Reply = tuple[int, dict[str, str], Any]


@dataclass
class Call:
    """One request as it reached Azure."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    def json(self) -> Any:
        return json.loads(self.body)


def _storage_error(status: int, code: str, message: str) -> Reply:
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return status, {"x-ms-error-code": code}, body.encode()


def _arm_error(status: int, code: str, message: str) -> Reply:
    return status, {"x-ms-failure-cause": "service"}, {"error": {"code": code, "message": message}}


class _Wire:
    """Stands in for the network under azure-core's own RequestsTransport."""

    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def request(self, method: str, url: str, headers: Any = None, data: Any = None, **_: Any):
        if data is None:
            body = b""
        elif isinstance(data, dict):  # Entra ID token requests are form posts
            body = urlencode(data).encode()
        elif isinstance(data, str):
            body = data.encode()
        elif isinstance(data, bytes | bytearray):
            body = bytes(data)
        elif hasattr(data, "read"):
            body = data.read()
        else:
            body = b"".join(data)
        call = Call(method, url, dict(headers or {}), body)
        self.azure.calls.append(call)
        status, reply_headers, payload = self.azure.answer(call)
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 201: "Created", 202: "Accepted"}.get(status, "Error")
        response.url = url
        response.headers = CaseInsensitiveDict(reply_headers)
        if isinstance(payload, bytes):
            content = payload
            if content.startswith(b"<"):  # storage errors are XML
                response.headers.setdefault("Content-Type", "application/xml")
        elif payload is None:
            content = b""
        else:
            content = json.dumps(payload).encode()
            response.headers.setdefault("Content-Type", "application/json; charset=utf-8")
        response.headers["Content-Length"] = str(len(content))
        response._content = content
        response.raw = io.BytesIO(content)
        return response

    def close(self) -> None:
        pass


class FakeAzure(RequestsTransport):
    """Entra ID, Azure ML (ARM) and Blob storage in memory; records every request.

    It is azure-core's real RequestsTransport over a fake wire, so the SDK's serialization,
    retry and auth policies all run. Retry back-off goes through `sleep`, recorded here
    instead of waited.
    """

    def __init__(self) -> None:
        super().__init__(session=_Wire(self), session_owner=False)
        self.calls: list[Call] = []
        self.sleeps: list[float] = []
        self.models: dict[tuple[str, str], dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, str] = {"secretsType": "AccountKey", "key": ACCOUNT_KEY}
        self._scripts: list[tuple[str, re.Pattern[str], list[Reply], bool]] = []

    def script(self, method: str, path: str, *replies: Reply, always: bool = False) -> None:
        """Answer requests matching `method` and the `path` regex with `replies`, in order."""
        self._scripts.append((method, re.compile(path), list(replies), always))

    def register(self, name: str, version: str) -> None:
        """A model version that already exists in the workspace."""
        self.models[(name, version)] = {
            "id": f"{ARM}/models/{name}/versions/{version}",
            "name": version,
            "properties": {
                "modelType": "custom_model",
                "modelUri": f"azureml://datastores/workspaceblobstore/paths/old/{version}",
                "flavors": {},
                "tags": {},
                "properties": {},
            },
        }

    def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)

    def to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.url)]

    def answer(self, call: Call) -> Reply:
        for method, pattern, replies, always in self._scripts:
            if call.method == method and pattern.search(call.url) and replies:
                return replies[0] if always else replies.pop(0)
        if call.host == "login.microsoftonline.com":
            return self._entra(call)
        if call.host == BLOB_HOST:
            return self._blob(call)
        if call.host == "management.azure.com":
            return self._arm(call)
        raise requests.ConnectionError(f"no route to {call.host}")

    def _entra(self, call: Call) -> Reply:
        if call.path == "/common/discovery/instance":  # MSAL asks after a failed login
            return (
                200,
                {},
                {
                    "tenant_discovery_endpoint": f"https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration",
                    "metadata": [
                        {
                            "preferred_network": "login.microsoftonline.com",
                            "preferred_cache": "login.windows.net",
                            "aliases": ["login.microsoftonline.com", "login.windows.net"],
                        }
                    ],
                },
            )
        if call.path.endswith("/.well-known/openid-configuration"):
            base = f"https://login.microsoftonline.com/{TENANT}"
            return (
                200,
                {},
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                },
            )
        if call.path.endswith("/oauth2/v2.0/token"):
            if parse_qs(call.body.decode()).get("client_secret") != [CLIENT_SECRET]:
                return (
                    401,
                    {},
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
            return (
                200,
                {},
                {"token_type": "Bearer", "expires_in": 3600, "access_token": ACCESS_TOKEN},
            )
        return 404, {}, None

    def _blob(self, call: Call) -> Reply:
        name = call.path.removeprefix(f"/{CONTAINER}/")
        if call.method == "HEAD":
            if name in self.blobs:
                return (
                    200,
                    {"Content-Length": str(len(self.blobs[name])), "x-ms-blob-type": "BlockBlob"},
                    b"",
                )
            return 404, {"x-ms-error-code": "BlobNotFound"}, b""
        if call.method == "PUT":
            self.blobs[name] = call.body
            return 201, {"ETag": '"0x1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, b""
        return 405, {}, b""

    def _arm(self, call: Call) -> Reply:
        path = call.path
        if not path.startswith(ARM):
            return _arm_error(404, "ResourceNotFound", f"no resource at {path}")
        rest = path.removeprefix(ARM)
        if rest == "/datastores" and call.method == "GET":
            return 200, {}, {"value": [self._datastore()]}
        if rest == "/datastores/workspaceblobstore/listSecrets" and call.method == "POST":
            return 200, {}, self.secrets
        if match := re.fullmatch(r"/models/([^/]+)/versions", rest):
            listed = [v for (n, _), v in self.models.items() if n == match.group(1)]
            return 200, {}, {"value": listed}
        if match := re.fullmatch(r"/models/([^/]+)/versions/([^/]+)", rest):
            return self._model_version(call, match.group(1), match.group(2))
        if match := re.fullmatch(r"/environments/([^/]+)/versions/([^/]+)", rest):
            body = call.json()
            return 201, {}, {**body, "id": path, "name": match.group(2)}
        if (match := re.fullmatch(r"/jobs/([^/]+)", rest)) and call.method == "PUT":
            body = call.json()
            studio = f"https://ml.azure.com/runs/{match.group(1)}?wsid={ARM}"
            body["properties"].update(
                status="NotStarted",
                services={"Studio": {"jobServiceType": "Studio", "endpoint": studio}},
            )
            self.jobs[match.group(1)] = body
            return 201, {}, {**body, "id": path, "name": match.group(1)}
        return _arm_error(404, "NotFound", f"no route for {call.method} {rest}")

    def _model_version(self, call: Call, name: str, version: str) -> Reply:
        if call.method == "GET":
            if (name, version) in self.models:
                return 200, {}, self.models[(name, version)]
            return _arm_error(404, "UserError", f"Could not find asset with ID {name}:{version}")
        if call.method == "PUT":
            body = call.json()
            body["properties"].setdefault("flavors", {})
            stored = {**body, "id": call.path, "name": version}
            self.models[(name, version)] = stored
            return 201, {}, stored
        return 405, {}, None

    def _datastore(self) -> dict[str, Any]:
        return {
            "id": f"{ARM}/datastores/workspaceblobstore",
            "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": "fakestore",
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "isDefault": True,
                "credentials": {"credentialsType": "AccountKey"},
            },
        }


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """What a finished `olive-workflows run` leaves behind."""
    return model_files(tmp_path / "models" / "phi" / "onnx-ao")


def model_files(out: Path) -> Path:
    """The model files of a finished ONNX genai output (publish only checks they exist)."""
    out.mkdir(parents=True)
    (out / "model.onnx").write_bytes(b"onnx-graph")
    (out / "model.onnx.data").write_bytes(b"\0" * 64)
    (out / "genai_config.json").write_text('{"model": {"type": "phi3"}}', encoding="utf-8")
    (out / "tokenizer.json").write_text("{}", encoding="utf-8")
    return out


@pytest.fixture
def rendered(tmp_path: Path) -> dict[str, Any]:
    """An Olive 0.13 workflow config as the renderer writes it: absolute local paths."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "Paris"}\n', encoding="utf-8")
    (data / "eval.jsonl").write_text('{"text": "Rome"}\n', encoding="utf-8")
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "part-0.jsonl").write_text('{"text": "Oslo"}\n', encoding="utf-8")
    model = tmp_path / "phi"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "phi3"}', encoding="utf-8")
    return {
        "workflow_id": "ft-for-travel",
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "systems": {
            "local_system": {
                "type": "LocalSystem",
                "accelerators": [
                    {"device": "gpu", "execution_providers": ["CUDAExecutionProvider"]}
                ],
            }
        },
        "data_configs": [
            {
                "name": "travel",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {
                    "data_name": "json",
                    "data_files": [str(data / "train.jsonl"), str(data / "eval.jsonl")],
                    "split": "train",
                },
            },
            {
                "name": "calib",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {"data_name": str(calib), "split": "train"},
            },
        ],
        "passes": {"awq": {"type": "AutoAWQQuantizer", "data_config": "calib"}},
        "engine": {
            "target": "local_system",
            "output_dir": str(tmp_path / "models" / "phi" / "onnx-ao"),
            "cache_dir": str(tmp_path / ".olive-cache"),
        },
    }


def _secrets_absent(*texts: str) -> None:
    for text in texts:
        for secret in (CLIENT_SECRET, ACCESS_TOKEN, ACCOUNT_KEY, "SasSignatureNeverShown"):
            assert secret not in text


# --------------------------------------------------------------------------- import cost


def test_importing_the_module_does_not_import_azure() -> None:
    code = (
        "import sys, olive_workflows.integrations.azureml; "
        "print(sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_missing_azure_extra_says_what_to_install(output_dir: Path) -> None:
    code = (
        "import sys; sys.modules['azure.ai.ml'] = None\n"
        "from pathlib import Path\n"
        "from olive_workflows.integrations.azureml import AzureMLError, RunInfo, build_model_asset\n"
        "try:\n"
        f"    folder = Path({str(output_dir)!r})\n"
        "    build_model_asset(folder, 'm', '1', RunInfo('r', None, '0.13.0', [], 'cpu'))\n"
        "except AzureMLError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'olive-workflows[azure]'" in out


# --------------------------------------------------------------------------- workspace


def test_workspace_from_flags() -> None:
    ws = resolve_workspace(SUB, "rg", "ws", {"workspace": "other"}, Path("/nonexistent"))
    assert ws == Workspace(SUB, "rg", "ws", "flags")


def test_workspace_from_recipe_publish_block(tmp_path: Path) -> None:
    block = {"subscription_id": SUB, "resource_group": "rg", "workspace": "ws", "name": "m"}
    assert resolve_workspace(None, None, None, block, tmp_path) == Workspace(
        SUB, "rg", "ws", "recipe publish: block"
    )


def test_workspace_from_config_json_in_a_parent_folder(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"subscription_id": SUB, "resource_group": "rg", "workspace_name": "ws"}),
        encoding="utf-8",
    )
    (tmp_path / "recipes" / "deep").mkdir(parents=True)
    ws = resolve_workspace(None, None, None, None, tmp_path / "recipes" / "deep")
    assert ws == Workspace(SUB, "rg", "ws", str(config))


def test_workspace_dot_azureml_config_wins_like_the_sdk(tmp_path: Path) -> None:
    (tmp_path / ".azureml").mkdir()
    hidden = tmp_path / ".azureml" / "config.json"
    scope = (
        f"/subscriptions/{SUB}/resourceGroups/rg2/providers/{ARM.split('/providers/')[1][:-3]}/ws2"
    )
    hidden.write_text(json.dumps({"Scope": scope}), encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text(
        json.dumps({"subscription_id": "x", "resource_group": "y", "workspace_name": "z"}),
        encoding="utf-8",
    )
    ws = resolve_workspace(None, None, None, None, tmp_path / "sub")
    assert (ws.resource_group, ws.workspace_name, ws.source) == ("rg2", "ws2", str(hidden))


def test_workspace_skips_a_hugging_face_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "phi3"}', encoding="utf-8")
    with pytest.raises(AzureMLError, match="no Azure ML workspace"):
        resolve_workspace(None, None, None, None, tmp_path)


def test_workspace_sources_combine_per_coordinate(tmp_path: Path) -> None:
    block = {"subscription_id": SUB, "resource_group": "rg"}
    ws = resolve_workspace(None, None, "ws-from-flag", block, tmp_path)
    assert ws == Workspace(SUB, "rg", "ws-from-flag", "flags + recipe publish: block")


def test_workspace_missing_names_all_three_sources(tmp_path: Path) -> None:
    with pytest.raises(
        AzureMLError,
        match=r"resource group, workspace name not given.*--workspace.*`publish:`.*config\.json",
    ):
        resolve_workspace(SUB, None, None, None, tmp_path)


# --------------------------------------------------------------------------- run info


def test_run_info_read_from_the_output_folder(output_dir: Path) -> None:
    (output_dir / "olive-workflows.json").write_text(
        json.dumps(
            {
                "recipe_name": "ft-for-travel",
                "description": "Phi-3.5 fine-tuned for travel questions",
                "olive_version": "0.13.0",
                "steps": ["awq", "lora", "model_builder"],
                "target": "gpu/CUDAExecutionProvider",
            }
        ),
        encoding="utf-8",
    )
    assert read_run_info(output_dir) == INFO


def test_run_info_falls_back_to_arguments(output_dir: Path) -> None:
    assert read_run_info(output_dir, INFO) is INFO


def test_run_info_missing_everywhere_is_an_error(output_dir: Path) -> None:
    with pytest.raises(AzureMLError, match=r"has no olive-workflows\.json"):
        read_run_info(output_dir)


def test_run_info_broken_file_is_an_error(output_dir: Path) -> None:
    (output_dir / "olive-workflows.json").write_text('{"recipe_name": "x"}', encoding="utf-8")
    with pytest.raises(AzureMLError, match="not a valid run record"):
        read_run_info(output_dir)


# --------------------------------------------------------------------------- model asset


def test_model_asset_yaml_loads_back_into_an_equal_entity(output_dir: Path) -> None:
    model = build_model_asset(output_dir, "ft-for-travel", "1", INFO)
    text = model_asset_yaml(model)
    loaded = load_model(io.StringIO(text))
    assert loaded == model
    assert model_asset_yaml(loaded) == text
    assert (loaded.path, loaded.type) == (str(output_dir), "custom_model")


def test_model_asset_tags_and_description(output_dir: Path) -> None:
    model = build_model_asset(output_dir, "ft-for-travel", "1", INFO, extra_tags={"team": "lab"})
    assert model.description == INFO.description
    assert {k: v for k, v in model.tags.items() if k != "created_by"} == {
        "recipe": "ft-for-travel",
        "olive_version": "0.13.0",
        "steps": "awq,lora,model_builder",
        "target": "gpu/CUDAExecutionProvider",
        "format": "onnx-genai",
        "team": "lab",
    }
    assert model.tags["created_by"].startswith("olive-workflows ")


def test_model_asset_without_version_is_auto_increment(output_dir: Path) -> None:
    text = model_asset_yaml(build_model_asset(output_dir, "ft-for-travel", None, INFO))
    assert "version" not in load_model(io.StringIO(text))._to_dict()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("model.onnx", r"no \*\.onnx model file"),
        ("genai_config.json", "no genai_config.json"),
    ],
)
def test_model_asset_refuses_an_unfinished_run(output_dir: Path, remove: str, message: str) -> None:
    (output_dir / remove).unlink()
    with pytest.raises(AzureMLError, match=f"not a finished run \\({message}\\)"):
        build_model_asset(output_dir, "ft-for-travel", "1", INFO)


@pytest.mark.parametrize(("name", "version"), [("ft for travel", "1"), ("ft", "1 2")])
def test_model_asset_refuses_invalid_names(output_dir: Path, name: str, version: str) -> None:
    with pytest.raises(AzureMLError, match="is not valid in Azure ML"):
        build_model_asset(output_dir, name, version, INFO)


# --------------------------------------------------------------------------- publish (HTTP)


def test_publish_uploads_then_creates_the_model(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    result = publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )

    assert (result.name, result.version, result.uri) == (
        "ft-for-travel",
        "1",
        "azureml:ft-for-travel:1",
    )
    assert result.id == f"{ARM}/models/ft-for-travel/versions/1"
    puts = [c for c in azure.calls if c.method == "PUT"]
    # every file reaches blob storage before the one request that registers the model
    assert [c.host for c in puts] == [BLOB_HOST] * 5 + ["management.azure.com"]
    uploaded = sorted(c.path.rsplit("/", 1)[1] for c in puts[:-1])
    assert uploaded == sorted(
        [
            ".olive-workflows-complete",
            "genai_config.json",
            "model.onnx",
            "model.onnx.data",
            "tokenizer.json",
        ]
    )
    create = puts[-1]
    assert create.path == f"{ARM}/models/ft-for-travel/versions/1"
    assert create.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    props = create.json()["properties"]
    assert props["modelType"] == "custom_model"
    assert re.fullmatch(
        rf"azureml://subscriptions/{SUB}/resourcegroups/rg/workspaces/ws/datastores/workspaceblobstore"
        r"/paths/LocalUpload/[0-9a-f]{32}/onnx-ao",
        props["modelUri"],
    )
    assert props["description"] == INFO.description
    assert props["tags"]["steps"] == "awq,lora,model_builder"
    assert azure.blobs[result.path.split("/paths/")[1] + "/model.onnx"] == b"onnx-graph"


def test_publish_checks_the_version_is_free_first(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    gets = azure.to("GET", r"/models/ft-for-travel/versions/1\?")
    assert len(gets) == 1
    assert azure.calls.index(gets[0]) < azure.calls.index(azure.to("PUT", BLOB_HOST)[0])


def test_publish_without_version_takes_the_next_one(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    for version in ("1", "2", "beta"):
        azure.register("ft-for-travel", version)
    result = publish_model(
        output_dir, "ft-for-travel", None, INFO, WS, credential=credential, transport=azure
    )
    assert result.version == "3"
    assert azure.to("PUT", r"/models/ft-for-travel/versions/3\?")


def test_publish_first_version_is_1(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    result = publish_model(
        output_dir, "ft-for-travel", None, INFO, WS, credential=credential, transport=azure
    )
    assert result.version == "1"


def test_publish_refuses_an_existing_version_and_sends_nothing(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.register("ft-for-travel", "1")
    with pytest.raises(
        AzureMLError, match="version 1 already exists in workspace ws; pass another --version"
    ):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert not [c for c in azure.calls if c.method == "PUT"]


def test_publish_reuses_a_complete_upload(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    first = publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    blob_puts = len(azure.to("PUT", BLOB_HOST))
    second = publish_model(
        output_dir, "ft-for-travel", "2", INFO, WS, credential=credential, transport=azure
    )
    assert second.path == first.path
    assert len(azure.to("PUT", BLOB_HOST)) == blob_puts


def test_publish_with_a_sas_datastore_secret(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.secrets = {"secretsType": "Sas", "sasToken": SAS_TOKEN}
    publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    assert all("sig=SasSignatureNeverShown" in c.url for c in azure.to("PUT", BLOB_HOST))


def test_publish_with_environment_credentials(
    azure: FakeAzure, output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import DefaultAzureCredential

    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", "client-1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", CLIENT_SECRET)
    credential = DefaultAzureCredential(transport=azure)
    result = publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    assert result.version == "1"


def test_publish_retries_a_503_like_the_sdk(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    busy = _arm_error(503, "ServiceUnavailable", "try later")
    azure.script("GET", r"/models/ft-for-travel/versions/1\?", (503, {"Retry-After": "2"}, busy[2]))
    result = publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    assert result.version == "1"
    assert len(azure.to("GET", r"/models/ft-for-travel/versions/1\?")) == 2
    assert azure.sleeps == [2]


def test_publish_gives_up_on_persistent_5xx_and_registers_nothing(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.script(
        "PUT", BLOB_HOST, _storage_error(500, "InternalError", "Server busy."), always=True
    )
    with pytest.raises(
        AzureMLError, match=r"answered 500 and kept failing after retries.*nothing was registered"
    ):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert len(azure.to("PUT", BLOB_HOST)) == 4  # the first try and storage's 3 retries
    assert len(azure.sleeps) == 3 and min(azure.sleeps) >= 12  # its exponential back-off
    assert not azure.to("PUT", r"/models/")
    assert not azure.to("PUT", r"\.olive-workflows-complete")
    assert azure.models == {}


def test_publish_gives_up_on_a_persistent_5xx_model_put(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.script("PUT", r"/models/", _arm_error(500, "InternalServerError", "boom"), always=True)
    with pytest.raises(AzureMLError, match=r"answered 500 .*\(\(InternalServerError\) boom\)"):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert len(azure.to("PUT", r"/models/")) == 4  # azure-core's 3 status retries
    assert azure.models == {}


def test_publish_uploads_with_the_users_token_without_datastore_keys(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.script("POST", r"/listSecrets", _arm_error(403, "AuthorizationFailed", "no"), always=True)
    publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    blob_puts = azure.to("PUT", BLOB_HOST)
    assert blob_puts
    assert all(c.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" for c in blob_puts)


def test_publish_failing_blob_midway_leaves_the_upload_unmarked(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    denied = _storage_error(403, "AuthorizationFailure", "This request is not authorized.")
    azure.script("PUT", r"/model\.onnx\.data$", denied, always=True)
    with pytest.raises(AzureMLError, match="access denied to workspace ws"):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert azure.to("PUT", r"/genai_config\.json$")  # some files went up...
    assert not azure.to("PUT", r"\.olive-workflows-complete|/models/")  # ...none registered


def test_publish_model_put_conflict_is_reported(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.script(
        "PUT", r"/models/ft-for-travel/versions/1\?", _arm_error(409, "Conflict", "exists")
    )
    with pytest.raises(AzureMLError, match="model ft-for-travel version 1 already exists"):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert azure.models == {}


def test_publish_401_says_how_to_log_in(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    azure.script(
        "GET",
        r"/datastores\?",
        _arm_error(401, "InvalidAuthenticationToken", "expired"),
        always=True,
    )
    with pytest.raises(AzureMLError, match=r"not logged in to Azure .*run `az login`"):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert not [c for c in azure.calls if c.method == "PUT"]


def test_publish_wrong_client_secret_says_how_to_log_in(azure: FakeAzure, output_dir: Path) -> None:
    credential = ClientSecretCredential(TENANT, "client-1", "wrong-secret", transport=azure)
    with pytest.raises(AzureMLError, match=r"not logged in to Azure .*AADSTS7000215.*az login"):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
        )
    assert all(c.host == "login.microsoftonline.com" for c in azure.calls)


def test_publish_without_any_credential_says_how_to_log_in(
    azure: FakeAzure, output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AzureMLError, match="not logged in to Azure"):
        publish_model(
            output_dir,
            "ft-for-travel",
            "1",
            INFO,
            WS,
            credential=EnvironmentCredential(),
            transport=azure,
        )
    assert azure.calls == []


def test_publish_unknown_workspace_names_the_source(
    azure: FakeAzure, credential: ClientSecretCredential, output_dir: Path
) -> None:
    ws = Workspace(SUB, "rg", "nope", "/home/me/.azureml/config.json")
    with pytest.raises(
        AzureMLError, match=r"not found: workspace nope .*from /home/me/\.azureml/config\.json"
    ):
        publish_model(
            output_dir, "ft-for-travel", "1", INFO, ws, credential=credential, transport=azure
        )


def test_publish_never_shows_secrets(
    azure: FakeAzure,
    credential: ClientSecretCredential,
    output_dir: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    azure.secrets = {"secretsType": "Sas", "sasToken": SAS_TOKEN}
    publish_model(
        output_dir, "ft-for-travel", "1", INFO, WS, credential=credential, transport=azure
    )
    azure.script(
        "PUT",
        BLOB_HOST,
        (403, {}, f"<Error><Url>https://{BLOB_HOST}/x?{SAS_TOKEN}</Url></Error>".encode()),
        always=True,
    )
    (output_dir / "tokenizer.json").write_text('{"changed": true}', encoding="utf-8")
    with pytest.raises(AzureMLError) as failure:
        publish_model(
            output_dir, "ft-for-travel", "2", INFO, WS, credential=credential, transport=azure
        )
    assert "access denied" in str(failure.value)
    root = output_dir.parents[2]  # the test's tmp_path
    written = [p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file()]
    captured = capsys.readouterr()
    _secrets_absent(str(failure.value), captured.out, captured.err, caplog.text, *written)


# --------------------------------------------------------------------------- what is published


PYTORCH_INFO = RunInfo("tiny-lora", None, "0.13.0", ["lora"], "cpu/CPUExecutionProvider")


@pytest.fixture
def pytorch_output(tmp_path: Path) -> Path:
    """A finished run whose recipe has no ONNX step: the model and its LoRA adapter."""
    out = tmp_path / "models" / "tiny-lora"
    (out / "model").mkdir(parents=True)
    (out / "adapter").mkdir()
    (out / "model" / "config.json").write_text('{"model_type": "phi3"}', encoding="utf-8")
    (out / "model" / "model.safetensors").write_bytes(b"\0" * 64)
    (out / "adapter" / "adapter_config.json").write_text('{"r": 8}', encoding="utf-8")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 32)
    return out


def _record(folder: Path, **fields: Any) -> None:
    record = {
        "recipe_name": "tiny-lora",
        "description": None,
        "olive_version": "0.13.0",
        "steps": ["lora"],
        "target": "cpu/CPUExecutionProvider",
        **fields,
    }
    (folder / "olive-workflows.json").write_text(json.dumps(record), encoding="utf-8")


def test_a_pytorch_output_is_published_as_pytorch(pytorch_output: Path) -> None:
    model = build_model_asset(pytorch_output, "tiny-lora", "1", PYTORCH_INFO)
    assert model.tags["format"] == "pytorch"
    assert model.tags["steps"] == "lora"


def test_a_pytorch_output_is_uploaded_and_registered(
    azure: FakeAzure, credential: ClientSecretCredential, pytorch_output: Path
) -> None:
    result = publish_model(
        pytorch_output, "tiny-lora", None, PYTORCH_INFO, WS, credential=credential, transport=azure
    )
    assert result.uri == "azureml:tiny-lora:1"
    uploaded = {name.split("/", 2)[2] for name in azure.blobs}
    assert {"tiny-lora/model/model.safetensors", "tiny-lora/adapter/adapter_config.json"} <= (
        uploaded
    )
    (put,) = azure.to("PUT", r"/models/tiny-lora/versions/1\?")
    assert put.json()["properties"]["tags"]["format"] == "pytorch"


@pytest.mark.parametrize(
    ("steps", "remove", "message"),
    [
        (["lora"], "model/model.safetensors", "no PyTorch weights"),
        (
            ["lora", "onnx"],
            None,
            r"no \*\.onnx model file\): its steps \(lora, onnx\) end in an ONNX",
        ),
        (["lora", "onnx", "genai_metadata"], None, "for onnxruntime-genai"),
    ],
)
def test_an_output_must_hold_what_its_steps_make(
    pytorch_output: Path, steps: list[str], remove: str | None, message: str
) -> None:
    if remove:
        for path in pytorch_output.rglob("*.safetensors"):
            path.unlink()
    info = RunInfo("tiny-lora", None, "0.13.0", steps, "cpu/CPUExecutionProvider")
    with pytest.raises(AzureMLError, match=f"is not a finished run .*{message}"):
        build_model_asset(pytorch_output, "tiny-lora", "1", info)


def test_an_onnx_output_without_genai_metadata_is_onnx(output_dir: Path) -> None:
    (output_dir / "genai_config.json").unlink()
    info = RunInfo("r", None, "0.13.0", ["onnx", "optimize"], "cpu/CPUExecutionProvider")
    assert build_model_asset(output_dir, "m", "1", info).tags["format"] == "onnx"


def test_an_olive_pass_recipe_needs_some_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here", encoding="utf-8")
    info = RunInfo("r", None, "0.13.0", ["olive_pass"], "cpu/CPUExecutionProvider")
    with pytest.raises(AzureMLError, match="no \\*\\.onnx model file and no PyTorch weights"):
        build_model_asset(tmp_path, "m", "1", info)


def test_files_the_run_wrote_must_still_be_there(pytorch_output: Path) -> None:
    written = ["model/model.safetensors", "model/tokenizer.json", "report.html"]
    _record(pytorch_output, written_files=written)
    with pytest.raises(
        AzureMLError, match=r"files the run wrote are gone: model/tokenizer\.json\)"
    ):
        build_model_asset(pytorch_output, "tiny-lora", "1", PYTORCH_INFO)


@pytest.mark.parametrize(
    ("make", "message"), [("missing", "does not exist"), ("file", "is a file")]
)
def test_a_missing_folder_is_said_so(tmp_path: Path, make: str, message: str) -> None:
    target = tmp_path / "out"
    if make == "file":
        target.write_text("x", encoding="utf-8")
    for call in (
        lambda: read_run_info(target),
        lambda: build_model_asset(target, "m", "1", INFO),
        lambda: plan_publish(target, name="m"),
    ):
        with pytest.raises(AzureMLError, match=f"{target} {message}"):
            call()


# --------------------------------------------------------------------------- plan_publish


def _recipe_file(folder: Path, name: str = "tiny-lora", publish: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"version: 1\nname: {name}\ndescription: d\nmodel: {{path: gone-model}}\n"
        f"steps:\n  - lora: {{data: travel, max_steps: 2}}\n  - onnx: {{}}\n"
        f"output: {{dir: out}}\n{publish}",
        encoding="utf-8",
    )
    return path


def test_plan_uses_the_recorded_recipes_publish_block(pytorch_output: Path, tmp_path: Path) -> None:
    recipe = _recipe_file(
        tmp_path, publish="publish: {name: from-recipe, version: '3', tags: {team: lab}}\n"
    )
    _record(pytorch_output, recipe=str(recipe))
    plan = plan_publish(pytorch_output)
    assert (plan.name, plan.version, plan.tags) == ("from-recipe", "3", {"team": "lab"})
    assert plan.info.steps == ["lora"]  # the run record, not the (since edited) recipe
    assert plan.format == "pytorch"
    assert plan.notes == []


def test_plan_takes_tags_from_recipe_when_the_folder_has_no_record(
    output_dir: Path, tmp_path: Path
) -> None:
    recipe = _recipe_file(tmp_path, name="from-file")
    plan = plan_publish(output_dir, name="m", recipe=recipe)
    assert plan.info.recipe_name == "from-file"
    assert plan.info.steps == ["lora", "onnx"]
    assert plan.notes == [
        f"{output_dir} has no olive-workflows.json: its tags come from --recipe {recipe}"
    ]


def test_plan_without_record_or_recipe_says_what_to_pass(output_dir: Path) -> None:
    with pytest.raises(AzureMLError, match=r"has no olive-workflows\.json.*pass --recipe"):
        plan_publish(output_dir, name="m")


def test_plan_says_when_recipe_is_not_the_one_that_made_the_folder(
    pytorch_output: Path, tmp_path: Path
) -> None:
    made_by = _recipe_file(tmp_path, name="made-by")
    other = _recipe_file(tmp_path, name="other", publish="publish: {name: from-other}\n")
    _record(pytorch_output, recipe=str(made_by))
    plan = plan_publish(pytorch_output, recipe=other)
    assert plan.name == "from-other"
    assert plan.info.recipe_name == "tiny-lora"  # tags stay those of the run
    assert plan.notes == [
        f"{pytorch_output} was made by {made_by}; its publish: defaults come from --recipe {other}"
    ]


def test_plan_says_when_the_recorded_recipe_is_gone(pytorch_output: Path, tmp_path: Path) -> None:
    _record(pytorch_output, recipe=str(tmp_path / "moved.yaml"))
    with pytest.raises(AzureMLError, match=r"moved\.yaml, no longer exists: pass --recipe"):
        plan_publish(pytorch_output)


def test_plan_reports_a_broken_recipe_with_its_line(pytorch_output: Path, tmp_path: Path) -> None:
    from olive_workflows.core.errors import RecipeError

    recipe = _recipe_file(tmp_path, publish="publish: {nmae: x}\n")
    with pytest.raises(RecipeError, match=r"tiny-lora\.yaml:9: publish\.nmae"):
        plan_publish(pytorch_output, recipe=recipe)


# --------------------------------------------------------------------------- the command


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from olive_workflows.cli.app import app

    return CliRunner().invoke(app, ["publish", *args])


def test_cli_dry_run_of_a_pytorch_output(pytorch_output: Path) -> None:
    _record(pytorch_output)
    result = _cli(str(pytorch_output), "--name", "tiny-lora", "--dry-run")
    assert result.exit_code == 0, result.output
    asset = yaml.safe_load(result.stdout)
    assert asset["tags"]["format"] == "pytorch"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "m"], "does not exist; pass the output folder"),
        (["--name", "m", "--recipe", "nope.yaml"], "does not exist; pass the output folder"),
    ],
)
def test_cli_missing_folder_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _cli(str(tmp_path / "gone"), *args, "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_cli_missing_recipe_file_is_named(output_dir: Path, tmp_path: Path) -> None:
    result = _cli(str(output_dir), "--name", "m", "--recipe", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: {tmp_path / 'nope.yaml'}: recipe file not found; check the path\n"
    )


def test_cli_without_an_azure_login_is_one_line(output_dir: Path, tmp_path: Path) -> None:
    """The real DefaultAzureCredential with no credential anywhere, its network faked."""
    (output_dir / "olive-workflows.json").write_text(
        json.dumps(dataclasses.asdict(INFO)), encoding="utf-8"
    )
    calls = tmp_path / "calls.txt"
    code = f"""
import atexit, functools, sys
import azure.identity
from tests.test_azureml import FakeAzure
fake = FakeAzure()
atexit.register(lambda: open({str(calls)!r}, "w").write("\\n".join(c.host for c in fake.calls)))
real = azure.identity.DefaultAzureCredential
azure.identity.DefaultAzureCredential = lambda **kw: real(transport=fake, **kw)
from olive_workflows.integrations import azureml
azureml.publish_model = functools.partial(azureml.publish_model, transport=fake)
from olive_workflows.cli.app import main
sys.argv = ["olive-workflows", "publish", {str(output_dir)!r}, "--name", "m",
            "--subscription", {SUB!r}, "--resource-group", "rg", "--workspace", "ws"]
main()
"""
    empty = tmp_path / "bin"  # no az, pwsh or azd to find
    empty.mkdir()
    env = {
        "PATH": str(empty),
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'src'}",
        "OLIVE_WORKFLOWS_STATE": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env, cwd=REPO
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: not logged in to Azure (")
    assert "run `az login`" in line
    assert "management.azure.com" not in calls.read_text()


# --------------------------------------------------------------------------- command job


def _job_files(job: Any) -> Path:
    return Path(job.inputs["workflow"].path)


def test_job_yaml_loads_back_into_an_equal_entity(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(
        rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path / "jobs"
    )
    text = job_yaml(job)
    loaded = load_job(io.StringIO(text))
    assert loaded == job
    assert job_yaml(loaded) == text
    assert loaded.inputs["model"].path == rendered["input_model"]["model_path"]


def test_job_runs_olive_on_the_compute(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(
        rendered, "gpu-cluster", "olive-gpu:3", "travel", None, staging_dir=tmp_path
    )
    assert job.command.endswith("&& olive run --config workflow.json")
    spec = yaml.safe_load(job_yaml(job))
    assert (spec["compute"], spec["environment"], spec["experiment_name"]) == (
        "azureml:gpu-cluster",
        "azureml:olive-gpu:3",
        "travel",
    )


def test_job_inputs_are_the_local_paths(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(
        rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path / "jobs"
    )
    files = rendered["data_configs"][0]["load_dataset_config"]["data_files"]
    inputs = {name: (value.type, value.path) for name, value in job.inputs.items()}
    assert inputs == {
        "workflow": ("uri_folder", str(_job_files(job))),
        "model": ("uri_folder", rendered["input_model"]["model_path"]),
        "travel_0": ("uri_file", files[0]),
        "travel_1": ("uri_file", files[1]),
        "calib_dir": (
            "uri_folder",
            rendered["data_configs"][1]["load_dataset_config"]["data_name"],
        ),
    }


def test_job_output_and_shared_cache(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    output, cache = job.outputs["output"], job.outputs["cache"]
    assert (output.type, output.mode, output.path) == ("uri_folder", "upload", None)
    assert (cache.type, cache.mode, cache.path) == ("uri_folder", "rw_mount", DEFAULT_CACHE_PATH)


def test_job_cache_path_can_be_chosen(rendered: dict[str, Any], tmp_path: Path) -> None:
    path = "azureml://datastores/cachestore/paths/olive/"
    job = build_command_job(rendered, "gpu-cluster", None, None, path, staging_dir=tmp_path)
    assert job.outputs["cache"].path == path


def test_job_config_points_at_placeholders(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    config = json.loads((_job_files(job) / "workflow.json").read_text(encoding="utf-8"))
    assert config["input_model"]["model_path"] == "${{inputs.model}}"
    assert config["data_configs"][0]["load_dataset_config"]["data_files"] == [
        "${{inputs.travel_0}}",
        "${{inputs.travel_1}}",
    ]
    assert config["data_configs"][1]["load_dataset_config"]["data_name"] == "${{inputs.calib_dir}}"
    assert config["engine"]["output_dir"] == "${{outputs.output}}"
    assert config["engine"]["cache_dir"] == "${{outputs.cache}}"
    assert str(tmp_path) not in json.dumps(config)


def test_job_flat_engine_fields_are_rewritten_in_place(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    engine = rendered.pop("engine")
    rendered |= {"output_dir": engine["output_dir"], "cache_dir": engine["cache_dir"]}
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    config = json.loads((_job_files(job) / "workflow.json").read_text(encoding="utf-8"))
    assert (config["output_dir"], config["cache_dir"]) == (
        "${{outputs.output}}",
        "${{outputs.cache}}",
    )
    assert "engine" not in config


def test_job_registry_model_becomes_a_model_input(rendered: dict[str, Any], tmp_path: Path) -> None:
    rendered["input_model"]["model_path"] = {
        "type": "azureml_registry_model",
        "registry_name": "azureml",
        "name": "Phi-3.5-mini-instruct",
        "version": 4,
    }
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    assert (job.inputs["model"].type, job.inputs["model"].path) == (
        "mlflow_model",
        "azureml://registries/azureml/models/Phi-3.5-mini-instruct/versions/4",
    )


def test_job_hugging_face_model_id_stays_as_is(rendered: dict[str, Any], tmp_path: Path) -> None:
    rendered["input_model"]["model_path"] = "microsoft/Phi-3.5-mini-instruct"
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    config = json.loads((_job_files(job) / "workflow.json").read_text(encoding="utf-8"))
    assert config["input_model"]["model_path"] == "microsoft/Phi-3.5-mini-instruct"
    assert "model" not in job.inputs


def test_job_other_local_paths_travel_too(rendered: dict[str, Any], tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text("", encoding="utf-8")
    rendered["passes"]["awq"]["user_script"] = str(script)
    job = build_command_job(
        rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path / "jobs"
    )
    assert (job.inputs["user_script"].type, job.inputs["user_script"].path) == (
        "uri_file",
        str(script),
    )


def test_job_missing_local_file_is_an_error(rendered: dict[str, Any], tmp_path: Path) -> None:
    rendered["data_configs"][0]["load_dataset_config"]["data_files"][0] = str(
        tmp_path / "gone.jsonl"
    )
    with pytest.raises(
        AzureMLError,
        match=r"data_configs\[0\]\.load_dataset_config\.data_files\[0\]: .*gone\.jsonl does not",
    ):
        build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)


def test_job_cache_must_be_a_datastore_uri(rendered: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(AzureMLError, match="not a datastore URI"):
        build_command_job(rendered, "gpu-cluster", None, None, "/tmp/cache", staging_dir=tmp_path)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("azureml:olive-gpu@latest", "azureml:olive-gpu@latest"),
        ("olive-gpu:2", "azureml:olive-gpu:2"),
        (
            "azureml://registries/team/environments/olive/versions/1",
            "azureml://registries/team/environments/olive/versions/1",
        ),
    ],
)
def test_job_environment_references(
    rendered: dict[str, Any], tmp_path: Path, environment: str, expected: str
) -> None:
    job = build_command_job(rendered, "gpu-cluster", environment, None, None, staging_dir=tmp_path)
    assert yaml.safe_load(job_yaml(job))["environment"] == expected


def test_job_environment_image(rendered: dict[str, Any], tmp_path: Path) -> None:
    image = "myregistry.azurecr.io/olive:0.13"
    job = build_command_job(rendered, "gpu-cluster", image, None, None, staging_dir=tmp_path)
    assert job.environment.image == image


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_default_environment_installs_the_olive_extra() -> None:
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = pyproject["project"]["optional-dependencies"]["olive"]
    installed = {_requirement_name(r) for r in DEFAULT_PIP_PACKAGES}
    assert {_requirement_name(r) for r in extra} <= installed


def test_default_environment_uses_the_tested_gpu_pins() -> None:
    constraints = REPO / "constraints" / "gpu.txt"
    if not constraints.is_file():
        pytest.skip("constraints/gpu.txt is not in this checkout")
    pins = {
        _requirement_name(line): line.strip()
        for line in constraints.read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    pinned = [r for r in DEFAULT_PIP_PACKAGES if "==" in r]
    assert pinned == [pins.get(_requirement_name(r)) for r in pinned]


def test_job_command_binds_mount_paths_before_olive(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    job = build_command_job(
        rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path / "jobs"
    )
    mounts = {f"inputs.{n}": str(tmp_path / "mnt" / n) for n in job.inputs}
    mounts["inputs.workflow"] = str(_job_files(job))  # the files must really be there
    mounts |= {f"outputs.{n}": str(tmp_path / "mnt" / n) for n in job.outputs}
    # what Azure ML does to the command line before it runs it
    command = re.sub(
        r"\$\{\{(\w+\.\w+)\}\}", lambda m: shlex.quote(mounts[m.group(1)]), job.command
    )
    bind, olive = command.split(" && ")
    assert olive == "olive run --config workflow.json"
    workdir = tmp_path / "wd"
    workdir.mkdir()
    subprocess.run(
        bind, shell=True, cwd=workdir, check=True, capture_output=True, executable="/bin/bash"
    )
    config = json.loads((workdir / "workflow.json").read_text(encoding="utf-8"))
    assert config["input_model"]["model_path"] == mounts["inputs.model"]
    assert config["data_configs"][0]["load_dataset_config"]["data_files"] == [
        mounts["inputs.travel_0"],
        mounts["inputs.travel_1"],
    ]
    assert config["engine"]["cache_dir"] == mounts["outputs.cache"]


def test_job_leaves_the_run_record_in_its_output(rendered: dict[str, Any], tmp_path: Path) -> None:
    job = build_command_job(
        rendered, "gpu-cluster", None, None, None, run_info=INFO, staging_dir=tmp_path
    )
    assert job.command.endswith(
        "&& olive run --config workflow.json"
        " && cp ${{inputs.workflow}}/olive-workflows.json ${{outputs.output}}/"
    )
    assert read_run_info(_job_files(job)) == INFO


def test_bind_script_refuses_an_unbound_placeholder(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    folder = _job_files(job)
    run = subprocess.run(
        [
            sys.executable,
            str(folder / "bind_paths.py"),
            str(folder / "workflow.json"),
            str(tmp_path / "out.json"),
            "inputs.model=/m",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "no mount path given for ${{inputs.calib_dir}}" in run.stderr


# --------------------------------------------------------------------------- submit (HTTP)


@pytest.fixture
def job(rendered: dict[str, Any], tmp_path: Path) -> Any:
    return build_command_job(
        rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path / "jobs"
    )


def test_submit_uploads_inputs_then_creates_the_job(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    result = submit_job(job, WS, credential=credential, transport=azure)

    assert list(azure.jobs) == [result.name]
    create = azure.to("PUT", rf"{ARM}/jobs/")[-1]
    assert create is [c for c in azure.calls if c.method == "PUT"][-1]
    props = create.json()["properties"]
    assert props["jobType"] == "Command"
    assert props["computeId"] == f"{ARM}/computes/gpu-cluster"
    assert props["command"] == job.command
    for name, value in props["inputs"].items():
        assert value["jobInputType"] == job.inputs[name].type
        assert value["uri"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
        uploaded = value["uri"].split("/paths/")[1]
        assert any(blob.startswith(uploaded) for blob in azure.blobs)
    assert props["outputs"]["cache"] == {
        "jobOutputType": "uri_folder",
        "mode": "ReadWriteMount",
        "uri": DEFAULT_CACHE_PATH,
    }
    assert props["outputs"]["output"] == {"jobOutputType": "uri_folder", "mode": "Upload"}
    assert props["environmentId"].startswith(
        f"{ARM}/environments/CliV2AnonymousEnvironment/versions/"
    )


def test_submit_passes_a_registry_model_through(
    azure: FakeAzure, credential: ClientSecretCredential, rendered: dict[str, Any], tmp_path: Path
) -> None:
    rendered["input_model"]["model_path"] = {
        "type": "azureml_registry_model",
        "config": {"registry_name": "azureml", "name": "Phi-3.5-mini-instruct", "version": "4"},
    }
    job = build_command_job(rendered, "gpu-cluster", None, None, None, staging_dir=tmp_path)
    submit_job(job, WS, credential=credential, transport=azure)
    (body,) = azure.jobs.values()
    assert body["properties"]["inputs"]["model"] == {
        "jobInputType": "mlflow_model",
        "uri": "azureml://registries/azureml/models/Phi-3.5-mini-instruct/versions/4",
    }
    assert not any("Phi-3.5" in name for name in azure.blobs)


def test_submit_returns_the_studio_url(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    result = submit_job(job, WS, credential=credential, transport=azure)
    assert result.studio_url == f"https://ml.azure.com/runs/{result.name}?wsid={ARM}&tid={TENANT}"


def test_submit_ships_the_config_with_placeholders(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    submit_job(job, WS, credential=credential, transport=azure)
    (shipped,) = [body for name, body in azure.blobs.items() if name.endswith("/workflow.json")]
    assert json.loads(shipped)["engine"]["output_dir"] == "${{outputs.output}}"


def test_submit_does_not_change_the_job(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    before = job_yaml(job)
    submit_job(job, WS, credential=credential, transport=azure)
    assert job_yaml(job) == before


def test_submit_unknown_compute_is_reported(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    azure.script("PUT", r"/jobs/", _arm_error(404, "UserError", "Compute gpu-cluster not found"))
    with pytest.raises(AzureMLError, match=r"not found: workspace ws.*--compute"):
        submit_job(job, WS, credential=credential, transport=azure)
    assert azure.jobs == {}


def test_submit_upload_failure_creates_no_job(
    azure: FakeAzure, credential: ClientSecretCredential, job: Any
) -> None:
    azure.script(
        "PUT",
        r"/train\.jsonl$",
        _storage_error(403, "AuthorizationFailure", "This request is not authorized."),
        always=True,
    )
    with pytest.raises(AzureMLError, match="access denied"):
        submit_job(job, WS, credential=credential, transport=azure)
    assert not azure.to("PUT", r"/jobs/|/environments/")
