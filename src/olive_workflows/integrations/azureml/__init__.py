"""Azure ML: publish an Olive output folder as a model asset, submit a workflow as a command job."""

# Importing this package stays cheap: azure-ai-ml, azure-identity and the other Azure
# packages are an optional extra and are imported only inside the functions that need them.
from olive_workflows.integrations.azureml.errors import AzureMLError
from olive_workflows.integrations.azureml.jobplan import BIND_SCRIPT, WORKFLOW_FILE
from olive_workflows.integrations.azureml.jobtrack import TRACK_FILE, TRACK_SCRIPT
from olive_workflows.integrations.azureml.publish import (
    PublishPlan,
    PublishResult,
    build_model_asset,
    model_asset_yaml,
    plan_publish,
    publish_model,
)
from olive_workflows.integrations.azureml.runinfo import (
    FORMATS,
    RUN_INFO_FILE,
    RunInfo,
    read_run_info,
    run_info_from_recipe,
)
from olive_workflows.integrations.azureml.submit import (
    DEFAULT_CACHE_PATH,
    DEFAULT_EXPERIMENT,
    DEFAULT_IMAGE,
    DEFAULT_PIP_PACKAGES,
    DEFAULT_PYTHON,
    SubmitResult,
    build_command_job,
    job_yaml,
    submit_job,
)
from olive_workflows.integrations.azureml.upload import COMPLETE_MARKER, UPLOAD_PREFIX
from olive_workflows.integrations.azureml.workspace import Workspace, resolve_workspace

__all__ = [
    "BIND_SCRIPT",
    "COMPLETE_MARKER",
    "DEFAULT_CACHE_PATH",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_IMAGE",
    "DEFAULT_PIP_PACKAGES",
    "DEFAULT_PYTHON",
    "FORMATS",
    "RUN_INFO_FILE",
    "TRACK_FILE",
    "TRACK_SCRIPT",
    "UPLOAD_PREFIX",
    "WORKFLOW_FILE",
    "AzureMLError",
    "PublishPlan",
    "PublishResult",
    "RunInfo",
    "SubmitResult",
    "Workspace",
    "build_command_job",
    "build_model_asset",
    "job_yaml",
    "model_asset_yaml",
    "plan_publish",
    "publish_model",
    "read_run_info",
    "resolve_workspace",
    "run_info_from_recipe",
    "submit_job",
]
