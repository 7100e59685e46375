"""Submit a rendered Olive workflow to Azure ML as a command job."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from olive_workflows.integrations.azureml.errors import AzureMLError, _translated
from olive_workflows.integrations.azureml.jobplan import (
    BIND_SCRIPT,
    WORKFLOW_FILE,
    _JobPlan,
    _write_workflow_folder,
)
from olive_workflows.integrations.azureml.jobtrack import (
    TRACK_PIP_PACKAGES,
    track_command,
    track_files,
)
from olive_workflows.integrations.azureml.runinfo import RUN_INFO_FILE, RunInfo, _tool_version
from olive_workflows.integrations.azureml.upload import _default_datastore, _upload
from olive_workflows.integrations.azureml.workspace import Workspace, _require_azure, _session

if TYPE_CHECKING:  # azure-ai-ml is an optional extra: only type checkers see it at import time
    from azure.ai.ml.entities import Command
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

DEFAULT_EXPERIMENT = "olive-workflows"
# One cache for every job of the workspace: Olive keys its cache entries by model and pass
# hashes, so recipes that share steps (say, the same AWQ base) reuse each other's work.
DEFAULT_CACHE_PATH = "azureml://datastores/workspaceblobstore/paths/olive-workflows/cache/"
# The base image only brings the NVIDIA driver stack: torch's PyPI wheels carry their own
# CUDA libraries.
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-cuda12.4-ubuntu22.04:latest"
DEFAULT_PYTHON = "3.12"  # what constraints/gpu.txt was tested with
# pyproject's `olive` extra at the versions constraints/gpu.txt pins (the known-good AWQ +
# LoRA + ONNX + adapter chain on a GPU), plus autoawq for the AWQ step; the CPU builds of
# onnxruntime and onnxruntime-genai are what that chain ran with (see gpu.txt for why).
# tests/test_azureml.py checks this list against both files.
DEFAULT_PIP_PACKAGES = (
    "olive-ai==0.13.0",
    "transformers==4.57.6",
    "tokenizers==0.22.2",
    "huggingface-hub==0.36.2",
    "datasets==4.8.5",
    "peft==0.17.1",
    "autoawq==0.2.9",
    "onnxruntime-genai==0.14.1",
    "onnxruntime>=1.20",
    "onnx>=1.17",
    "onnxscript>=0.5",
    "onnxoptimizer>=0.3",
    "accelerate>=0.30",
    "scipy",
    "optuna",
    "torchmetrics",
    "requests",
    "gguf>=0.16",
)


@dataclass(frozen=True)
class SubmitResult:
    """A submitted job."""

    name: str
    studio_url: str | None


def build_command_job(
    rendered_config: Mapping[str, Any],
    compute: str,
    environment: str | None,
    experiment: str | None,
    cache_datastore_path: str | None,
    *,
    run_info: RunInfo | None = None,
    staging_dir: Path | None = None,
    track: Mapping[str, Any] | None = None,
) -> Command:
    """The Azure ML command job that runs `rendered_config` with `olive run --config`.

    Every local path in the config becomes a job input (uri_file / uri_folder, uploaded on
    submit), a registry model becomes a model input, `engine.output_dir` the job output
    `output`, and `engine.cache_dir` the output `cache`, a read-write mount of a datastore
    folder that every job shares. The config itself ships in the input `workflow` with
    `${{inputs.x}}` placeholders where those paths were; bind_paths.py (next to it)
    swaps in the mount paths Azure ML passes on the command line before Olive starts.
    With `run_info`, the job also leaves olive-workflows.json in its output, so that
    `publish` can tag the downloaded folder. With `track` (parameters, tags and the recipe,
    see jobtrack.py), the job then logs to the MLflow run Azure ML opened for it. The folder
    is written under `staging_dir` (default: the system temp folder).
    """
    if not compute or not compute.strip():
        raise AzureMLError("no compute given; pass --compute <cluster name>")
    cache = cache_datastore_path or DEFAULT_CACHE_PATH
    if not cache.startswith("azureml://"):
        raise AzureMLError(
            f"cache path {cache!r} is not a datastore URI; use e.g. "
            "azureml://datastores/workspaceblobstore/paths/olive-cache/"
        )
    plan = _JobPlan()
    config = plan.rewrite(dict(rendered_config))
    folder = _write_workflow_folder(
        config, run_info, staging_dir, track_files(track) if track is not None else None
    )
    workflow_id = str(rendered_config.get("workflow_id") or "olive-workflow")
    binds = [f"inputs.{n}=${{{{inputs.{n}}}}}" for n in plan.inputs] + [
        f"outputs.{n}=${{{{outputs.{n}}}}}" for n in ("output", "cache")
    ]
    command = " ".join(
        [
            f"python ${{{{inputs.workflow}}}}/{BIND_SCRIPT}",
            f"${{{{inputs.workflow}}}}/{WORKFLOW_FILE} {WORKFLOW_FILE}",
            *binds,
            f"&& olive run --config {WORKFLOW_FILE}",
        ]
    )
    if run_info is not None:
        command += f" && cp ${{{{inputs.workflow}}}}/{RUN_INFO_FILE} ${{{{outputs.output}}}}/"
    if track is not None:
        command += " && " + track_command("${{inputs.workflow}}", "${{outputs.output}}")
    spec: dict[str, Any] = {
        "type": "command",
        "display_name": workflow_id,
        "experiment_name": experiment or DEFAULT_EXPERIMENT,
        "compute": compute if compute.startswith("azureml:") else f"azureml:{compute}",
        "environment": _environment_spec(environment, track=track is not None),
        "command": command,
        "inputs": {"workflow": {"type": "uri_folder", "path": str(folder)}, **plan.inputs},
        "outputs": {
            # upload, not a mount: Olive writes ONNX files with random access
            "output": {"type": "uri_folder", "mode": "upload"},
            "cache": {"type": "uri_folder", "mode": "rw_mount", "path": cache},
        },
        "environment_variables": {"PYTHONUNBUFFERED": "1"},
        "tags": {"workflow_id": workflow_id, "created_by": f"olive-workflows {_tool_version()}"},
    }
    return _load_job(spec)


def job_yaml(job: Command) -> str:
    """The job as YAML: what `--dry-run` prints and `az ml job create --file` accepts."""
    import yaml

    # the CommandJob form (Command.dump writes a pipeline node that load_job refuses); the
    # JSON round trip turns the SDK's OrderedDicts into plain dicts that safe_dump accepts
    data = json.loads(json.dumps(job._to_job()._to_dict()))
    for name, value in (job.inputs or {}).items():
        path = getattr(value, "path", None)
        # azure-ai-ml 1.35's dump turns a local path into `azureml:<path>`, an asset
        # reference that does not exist; put the path back
        if isinstance(path, str) and _is_local(path):
            data["inputs"][name]["path"] = path
    order = ["type", "display_name", "experiment_name", "compute", "environment", "command"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered and v not in ({}, None)})
    return yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False, width=100)


def submit_job(
    job: Command,
    workspace: Workspace,
    *,
    credential: TokenCredential | None = None,
    transport: HttpTransport | None = None,
) -> SubmitResult:
    """Upload the job's local inputs (content-addressed, reused when unchanged) and submit it."""
    import yaml

    spec = yaml.safe_load(job_yaml(job))
    hint = "check --subscription, --resource-group, --workspace, --compute and --environment"
    with (
        _session(workspace, credential, transport) as (client, token),
        _translated(workspace, hint),
    ):
        datastore = _default_datastore(client)
        for value in spec.get("inputs", {}).values():
            path = value.get("path") if isinstance(value, dict) else None
            if isinstance(path, str) and _is_local(path):
                value["path"] = _upload(Path(path), datastore, token, transport)
        created = client.jobs.create_or_update(_load_job(spec))
    return SubmitResult(name=str(created.name), studio_url=created.studio_url)


def _environment_spec(environment: str | None, *, track: bool = False) -> str | dict[str, Any]:
    if environment is None:
        pip = [*DEFAULT_PIP_PACKAGES, *(TRACK_PIP_PACKAGES if track else ())]
        return {
            "image": DEFAULT_IMAGE,
            "conda_file": {
                "name": "olive-workflows",
                "channels": ["conda-forge"],
                "dependencies": [
                    f"python={DEFAULT_PYTHON}",
                    "pip",
                    {"pip": pip},
                ],
            },
        }
    if environment.startswith("azureml:"):  # azureml:name:1, azureml:name@latest, registries
        return environment
    if "/" in environment:  # a container image that already has Olive in it
        return {"image": environment}
    return f"azureml:{environment}"


def _load_job(spec: dict[str, Any]) -> Command:
    _require_azure()
    import yaml
    from azure.ai.ml import load_job

    try:
        # `type: command` always loads as a Command; load_job is typed as returning any Job
        return cast("Command", load_job(io.StringIO(yaml.safe_dump(spec, sort_keys=False))))
    except Exception as err:  # the SDK raises marshmallow and its own exception types here
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AzureMLError(f"Azure ML rejected the job definition: {first}") from err


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("azureml:")
