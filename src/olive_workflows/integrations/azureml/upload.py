"""Content-hashed uploads of local files and folders to the workspace's default datastore."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from olive_workflows.integrations.azureml.errors import AzureMLError

if TYPE_CHECKING:  # azure-ai-ml is an optional extra: only type checkers see it at import time
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import AzureBlobDatastore, Datastore
    from azure.core.credentials import TokenCredential

UPLOAD_PREFIX = "LocalUpload"  # where `az ml` and the SDK put local files; we share the layout
COMPLETE_MARKER = ".olive-workflows-complete"


def _default_datastore(client: MLClient) -> Datastore:
    """The workspace's default datastore, with an upload credential if the service gives one."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    try:
        return client.datastores.get_default(include_secrets=True)
    except ClientAuthenticationError:
        raise
    except HttpResponseError as err:
        if err.status_code != 403:
            raise
        # no permission to list secrets: upload with the user's own token, as the SDK does
        return client.datastores.get_default()


def _upload(source: Path, datastore: Datastore, token: TokenCredential, transport: Any) -> str:
    """Upload a file or folder to `LocalUpload/<content hash>/<name>`; return its azureml:// URI.

    A marker blob written last says the upload is whole, so an unchanged folder is not
    sent again and an interrupted upload is redone.
    """
    from azure.ai.ml.entities import AzureBlobDatastore
    from azure.core.exceptions import ResourceNotFoundError
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobClient

    if not isinstance(datastore, AzureBlobDatastore):
        raise AzureMLError(
            f"default datastore {datastore.name} is not Azure Blob storage; "
            "make workspaceblobstore the default (`az ml datastore update`) and retry"
        )
    files = sorted(p for p in ([source] if source.is_file() else source.rglob("*")) if p.is_file())
    if not files:
        raise AzureMLError(f"{source} is empty; nothing to upload")
    prefix = f"{UPLOAD_PREFIX}/{_content_hash(source, files)}"
    credential = _blob_credential(datastore, token)
    # one transport for every blob, reusing connections; BlobClient rather than
    # ContainerClient.get_blob_client, whose transport wrapper drops the retry `sleep` hook
    shared = transport or RequestsTransport()

    def blob(name: str) -> BlobClient:
        return BlobClient(
            account_url=f"{datastore.protocol}://{datastore.account_name}.blob.{datastore.endpoint}",
            container_name=datastore.container_name,
            blob_name=f"{prefix}/{name}",
            credential=credential,
            transport=shared,
        )

    try:
        blob(COMPLETE_MARKER).get_blob_properties()
    except ResourceNotFoundError:
        for path in files:
            with path.open("rb") as data:
                blob(path.relative_to(source.parent).as_posix()).upload_blob(data, overwrite=True)
        blob(COMPLETE_MARKER).upload_blob(b"", overwrite=True)
    finally:
        if transport is None:
            shared.close()
    return f"azureml://datastores/{datastore.name}/paths/{prefix}/{source.name}"


def _content_hash(source: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(source.parent).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:32]


def _blob_credential(datastore: AzureBlobDatastore, token: TokenCredential) -> Any:
    from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential

    secrets = getattr(datastore, "credentials", None)
    key = getattr(secrets, "account_key", None)
    if key:
        return AzureNamedKeyCredential(datastore.account_name, key)
    sas = getattr(secrets, "sas_token", None)
    if sas:
        return AzureSasCredential(sas)
    return token  # identity-based datastore, or no right to its keys: the user's own token
