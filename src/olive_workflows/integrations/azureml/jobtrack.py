"""MLflow tracking inside a submitted job: track_run.py and what it logs (track.json).

Azure ML runs a command job with MLflow pointed at the workspace (MLFLOW_TRACKING_URI and
MLFLOW_RUN_ID are set), so the job's own run receives what `run --track` logs locally:
the parameters and tags worked out at submit time (track.json), the pass seconds and sizes
read from the output after `olive run`, and the config and run records as artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

TRACK_SCRIPT = "track_run.py"
TRACK_FILE = "track.json"
# MLflow's client and the plugin that understands the workspace's azureml:// tracking URI.
TRACK_PIP_PACKAGES = ("mlflow-skinny>=3,<4", "azureml-mlflow")


def track_files(plan: Mapping[str, Any]) -> dict[str, str]:
    """The files a tracked job carries in its workflow folder."""
    return {
        TRACK_FILE: json.dumps(dict(plan), indent=2, sort_keys=True) + "\n",
        TRACK_SCRIPT: _SOURCE,
    }


def track_command(workflow: str, output: str) -> str:
    return f"python {workflow}/{TRACK_SCRIPT} {output} {workflow}"


_SOURCE = '''\
"""Log an olive-workflows job to MLflow: track_run.py OUTPUT_DIR WORKFLOW_DIR.

Tracking never fails the job: the model is in the output either way.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

WEIGHTS = (".onnx", ".data", ".onnx_data", ".safetensors", ".bin", ".pt", ".pth", ".npz")
ADAPTERS = (".onnx_adapter",)


def figures(output):
    """(key, value, step): pass seconds from footprint.json, search metrics, sizes."""
    out = []
    footprint = output / "footprint.json"
    if footprint.is_file():
        nodes = json.loads(footprint.read_text(encoding="utf-8"))
        nodes = nodes.get("nodes", nodes)
        timed = [n for n in nodes.values() if isinstance(n, dict) and n.get("from_pass")]
        timed.sort(key=lambda n: n.get("start_time") or 0)
        seen = {}
        for node in timed:
            if node.get("end_time"):
                key = "pass_seconds." + str(node["from_pass"])
                seconds = float(node["end_time"]) - float(node.get("start_time") or 0)
                out.append((key, seconds, seen.get(key, 0)))
                seen[key] = seen.get(key, 0) + 1
        index = 0
        for node in timed:
            values = (node.get("metrics") or {}).get("value") or {}
            for name, item in values.items():
                value = item.get("value") if isinstance(item, dict) else None
                if isinstance(value, (int, float)):
                    out.append(("candidate." + name, float(value), index))
            index += 1 if values else 0
    files = [p for p in output.rglob("*") if p.is_file()]
    out.append(("size.output_bytes", float(sum(p.stat().st_size for p in files)), 0))
    model = sum(p.stat().st_size for p in files if p.name.endswith(WEIGHTS))
    adapter = sum(p.stat().st_size for p in files if p.name.endswith(ADAPTERS))
    out.append(("size.model_bytes", float(model), 0))
    out.append(("size.adapter_bytes", float(adapter), 0))
    return out


def log(output, workflow):
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    plan = json.loads((workflow / "track.json").read_text(encoding="utf-8"))
    inside_job = bool(os.environ.get("MLFLOW_RUN_ID"))
    if not inside_job:  # a run of its own (tests, a machine outside Azure ML)
        mlflow.set_experiment(plan.get("experiment") or "olive-workflows")
    with mlflow.start_run(run_name=None if inside_job else plan.get("run_name")) as run:
        client = MlflowClient()
        run_id = run.info.run_id
        mlflow.set_tags(plan.get("tags") or {})
        params = [Param(k, v) for k, v in (plan.get("params") or {}).items()]
        stamp = int(run.info.start_time or 0)
        metrics = [Metric(k, v, stamp, s) for k, v, s in figures(output)]
        for start in range(0, max(len(params), len(metrics)), 100):
            client.log_batch(
                run_id, params=params[start : start + 100], metrics=metrics[start : start + 100]
            )
        mlflow.log_artifact(str(workflow / "workflow.json"), artifact_path="config")
        with tempfile.TemporaryDirectory() as tmp:
            if plan.get("recipe_text") is not None:
                recipe = Path(tmp) / (plan.get("recipe_file") or "recipe.yaml")
                recipe.write_text(plan["recipe_text"], encoding="utf-8")
                mlflow.log_artifact(str(recipe), artifact_path="recipe")
        for name in ("olive-workflows.json", "footprint.json", "report.html"):
            if (output / name).is_file():
                mlflow.log_artifact(str(output / name), artifact_path="run")
        return run_id


def main(argv):
    output, workflow = Path(argv[0]), Path(argv[1])
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("track_run.py: MLflow is not installed in this environment, nothing was "
              "logged (add mlflow-skinny and azureml-mlflow to it)", file=sys.stderr)
        return 0
    try:
        run_id = log(output, workflow)
    except Exception as exc:
        print(f"track_run.py: logging to MLflow failed, the output is complete: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 0
    print(f"track_run.py: logged to MLflow run {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''
