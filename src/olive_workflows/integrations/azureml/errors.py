"""Azure ML errors: AzureMLError, and Azure SDK exceptions turned into one without secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from olive_workflows.core.errors import OliveWorkflowsError

if TYPE_CHECKING:
    from olive_workflows.integrations.azureml.workspace import Workspace

_SECRET_QUERY = re.compile(r"\b(sig|se|sv|sp|skoid|sktid|skt|ske|sks|skv)=[^&\s'\"]+", re.I)
_BEARER = re.compile(r"(Bearer|SharedKey)\s+[^\s'\"]+", re.I)
_LOGIN_HINT = (
    "run `az login` (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, "
    "or use a managed identity), then retry"
)


class AzureMLError(OliveWorkflowsError):
    """An Azure ML command cannot go on: one line saying what is wrong and how to fix it."""


@contextmanager
def _translated(workspace: Workspace, not_found_hint: str) -> Iterator[None]:
    """Turn Azure SDK exceptions into one-line AzureMLErrors without secrets in them."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    where = (
        f"workspace {workspace.workspace_name} (resource group {workspace.resource_group}, "
        f"subscription {workspace.subscription_id}, from {workspace.source})"
    )
    try:
        yield
    except AzureMLError:
        raise
    except ClientAuthenticationError as err:  # includes CredentialUnavailableError and HTTP 401
        raise AzureMLError(f"not logged in to Azure ({_brief(err)}); {_LOGIN_HINT}") from err
    except ResourceExistsError as err:
        raise AzureMLError(f"conflict in {where}: {_brief(err)}") from err
    except ResourceNotFoundError as err:
        raise AzureMLError(f"not found: {where} ({_brief(err)}); {not_found_hint}") from err
    except HttpResponseError as err:
        status = err.status_code
        if status == 403:
            raise AzureMLError(
                f"access denied to {where} ({_brief(err)}); ask for the AzureML Data Scientist "
                "role on the workspace"
            ) from err
        if status is not None and status >= 500:
            raise AzureMLError(
                f"Azure ML answered {status} and kept failing after retries ({_brief(err)}); "
                "nothing was registered, try again later"
            ) from err
        raise AzureMLError(f"Azure ML refused the request: {_brief(err)}") from err
    except ServiceRequestError as err:
        raise AzureMLError(
            f"cannot reach Azure ({_brief(err)}); check the network or proxy and retry"
        ) from err


def _brief(err: BaseException) -> str:
    """The first line of an SDK message, with anything that looks like a credential removed."""
    text = str(getattr(err, "message", None) or err).strip()
    line = next((s.strip() for s in text.splitlines() if s.strip()), type(err).__name__)
    line = _SECRET_QUERY.sub(r"\1=REDACTED", line)
    line = _BEARER.sub(r"\1 REDACTED", line)
    return line[:300]
