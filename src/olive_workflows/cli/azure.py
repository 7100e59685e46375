"""The Azure ML commands: publish an output, submit a recipe as a job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from olive_workflows.cli.common import (
    RecipeArg,
    app,
    echo_err,
    examples_epilog,
    user_errors,
)

WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", help="Workspace name.")]
GroupOpt = Annotated[str | None, typer.Option("--resource-group", "-g", help="Resource group.")]
SubOpt = Annotated[str | None, typer.Option("--subscription", help="Subscription id.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the YAML the SDK would send; contact nothing.")
]


@app.command(
    epilog=examples_epilog(
        "olive-workflows publish models/phi/onnx-ao --name ft-for-travel",
        "olive-workflows publish models/phi/onnx-ao --name ft-for-travel --version 1 "
        "-g rg-ml -w ws-travel --subscription <id>",
        "olive-workflows publish models/tiny-travel-cpu --name tiny --dry-run > model.yml",
    )
)
@user_errors
def publish(
    output_dir: Annotated[Path, typer.Argument(help="Output folder of `olive-workflows run`.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Asset name (default: recipe publish.name).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Asset version (default: the next one).")
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="Recipe whose publish: block gives the defaults (default: the one that "
            "produced OUTPUT_DIR); for a folder without olive-workflows.json it also gives "
            "the tags.",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Register OUTPUT_DIR as a versioned Azure ML model asset (azure-ai-ml).

    ONNX and PyTorch outputs alike (tagged `format`); the folder must hold what its recipe's
    steps produce. Authenticates with DefaultAzureCredential (`az login`, managed identity
    or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET). See docs/azure.md.
    A multi-adapter output (adapters.json) is one asset, its manifest in tags and description.
    """
    from olive_workflows.integrations import azureml

    plan = azureml.plan_publish(output_dir, name=name, version=version, recipe=recipe)
    for note in plan.notes:
        echo_err(f"note: {note}")
    if dry_run:
        model = azureml.build_model_asset(
            output_dir, plan.name, plan.version, plan.info, extra_tags=plan.tags
        )
        sys.stdout.write(azureml.model_asset_yaml(model))
        return
    ws = azureml.resolve_workspace(subscription, resource_group, workspace, plan.block, output_dir)
    result = azureml.publish_model(
        output_dir, plan.name, plan.version, plan.info, ws, extra_tags=plan.tags
    )
    print(f"published {result.uri} ({result.id})")
    echo_err(f"{azureml.FORMATS[plan.format]}, to workspace {ws.workspace_name} (from {ws.source})")


@app.command(
    epilog=examples_epilog(
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster --dry-run",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster "
        "--environment azureml:olive-gpu:3 --experiment travel",
        "olive-workflows submit workflows/phi35-travel.yaml --compute gpu-cluster --track",
    )
)
@user_errors
def submit(
    recipe: RecipeArg,
    compute: Annotated[str, typer.Option("--compute", "-c", help="Azure ML compute cluster.")],
    environment: Annotated[
        str | None,
        typer.Option(
            "--environment",
            "-e",
            help="Environment (default: an inline CUDA image "
            "with the olive extra at constraints/gpu.txt's pins).",
        ),
    ] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="Experiment.")] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Datastore folder for Olive's cache "
            "(azureml://datastores/<store>/paths/<folder>/).",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    resource_group: GroupOpt = None,
    subscription: SubOpt = None,
    dry_run: DryRunOpt = False,
    track: Annotated[
        bool | None,
        typer.Option(
            "--track/--no-track",
            help="Log the job to its Azure ML run through MLflow, as `run --track` does "
            "locally (default: when the recipe has a track: block).",
        ),
    ] = None,
) -> None:
    """Run RECIPE's rendered workflow as an Azure ML command job (`olive run --config`).

    Local model folders and data files become job inputs, the output folder a job output,
    and Olive's cache a datastore folder shared by repeated jobs. See docs/azure.md.
    """
    from olive_workflows.integrations import azureml
    from olive_workflows.render.environment import render_workflow, write_materialized

    rendered = render_workflow(recipe)
    write_materialized(rendered)
    recipe_model = rendered.loaded.recipe
    info = azureml.RunInfo(
        recipe_name=recipe_model.name,
        description=recipe_model.description,
        olive_version="0.13.0",
        steps=[s.type for s in recipe_model.steps],
        target=f"{recipe_model.target.device}/{recipe_model.target.resolved_provider}",
    )
    import dataclasses

    from olive_workflows.report.tracking import job_plan

    job = azureml.build_command_job(
        rendered.config,
        compute,
        environment,
        experiment,
        cache,
        run_info=info,
        track=job_plan(rendered, track, dataclasses.asdict(info)),
    )
    if dry_run:
        sys.stdout.write(azureml.job_yaml(job))
        return
    block = recipe_model.publish.model_dump() if recipe_model.publish else None
    ws = azureml.resolve_workspace(subscription, resource_group, workspace, block, recipe.parent)
    echo_err(f"workspace {ws.workspace_name} (from {ws.source})")
    result = azureml.submit_job(job, ws)
    print(f"submitted {result.name}")
    if result.studio_url:
        print(result.studio_url)
