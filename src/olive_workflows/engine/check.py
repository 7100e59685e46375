"""The only module that imports olive: validate a rendered config the way Olive's engine will."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from olive_workflows.core.errors import KeyPath, Problem

if TYPE_CHECKING:
    from olive_workflows.render.environment import RenderedWorkflow

# Olive's telemetry logs a heartbeat and then waits ~10 s at interpreter exit unless it
# believes it runs in CI (OLIVE_DISABLE_TELEMETRY=1 alone does not prevent the heartbeat,
# olive/telemetry/telemetry.py). We set a CI marker only while the singleton is created.
_CI_MARKER = "TF_BUILD"


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def import_olive() -> Any:
    """Import olive with its telemetry switched off for this process; return the module."""
    os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")
    marker = {} if os.environ.get(_CI_MARKER) else {_CI_MARKER: "True"}
    with _env(**marker):
        import olive
        from olive.telemetry.telemetry import Telemetry

        Telemetry()
    return olive


class _Capture(logging.Handler):
    """Collects Olive's warnings ("Keys {...} are not part of ... Ignoring them")."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_olive_warnings() -> Iterator[_Capture]:
    """Olive's log records go to us instead of the console while checking."""
    handler = _Capture()
    logger = logging.getLogger("olive")
    saved = logger.handlers[:], logger.propagate
    logger.handlers = [handler]
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate = saved


# Olive's two "silently ignored" warnings: unknown pass parameters, unknown TrainingArguments.
_IGNORED_KEYS = re.compile(r"Keys \{(?P<keys>[^}]*)\} are not part of")
_IGNORED_ARG = re.compile(r"Extra arg (?P<key>\S+) is not a field of")


def _ignored_keys(message: str) -> list[str] | None:
    match = _IGNORED_KEYS.search(message)
    if match:
        return [k.strip().strip("'\"") for k in match["keys"].split(",") if k.strip()]
    match = _IGNORED_ARG.search(message)
    if match:
        return ["training_args", match["key"]]
    return None


def _is_search_parameter(value: Any) -> bool:
    return isinstance(value, dict) and value.get("olive_parameter_type") == "SearchParameter"


def _variants(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Concrete configs covering every value of every searched parameter."""
    base = {k: (v["support"][0] if _is_search_parameter(v) else v) for k, v in params.items()}
    out = [base]
    for key, value in params.items():
        if _is_search_parameter(value):
            out.extend({**base, key: other} for other in value["support"][1:])
    return out


def check_configs(workflows: list[RenderedWorkflow]) -> list[Problem]:
    """`check_config` for each workflow a run executes (render.environment.run_workflows),
    each problem once: a multi-adapter recipe's workflows share most of their passes."""
    return list(dict.fromkeys(p for workflow in workflows for p in check_config(workflow)))


def check_config(rendered: RenderedWorkflow) -> list[Problem]:
    """Problems Olive would raise, prune silently or ignore silently, pointing at the recipe."""
    import_olive()
    from olive.hardware.accelerator import AcceleratorSpec
    from olive.package_config import OlivePackageConfig
    from olive.workflows.run.config import RunConfig
    from pydantic import ValidationError

    loaded = rendered.loaded
    source = loaded.source
    config = copy.deepcopy(rendered.config)
    problems: list[Problem] = []

    try:
        run_config = RunConfig.model_validate(config)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(
                source.problem(
                    f"Olive rejects the rendered config at {loc}: {err['msg']}",
                    (),
                    "this is an olive-workflows bug (the recipe passed every check): please "
                    "report it with this recipe",
                )
            )
        return problems

    target = loaded.recipe.target
    accelerator = AcceleratorSpec(
        accelerator_type=target.device, execution_provider=target.resolved_provider
    )
    package = OlivePackageConfig.load_default_config()
    search = bool(config.get("engine", {}).get("search_strategy"))

    for pass_name, entries in run_config.passes.items():
        index = rendered.context.pass_steps.get(pass_name)
        path: KeyPath = ()
        if index is not None:
            path = ("steps", index, loaded.recipe.steps[index].type)
        entry = entries[0]
        pass_type = rendered.config["passes"][pass_name].get("type", entry.type)
        try:
            cls = package.import_pass_module(entry.type)
        except (KeyError, ValueError):
            problems.append(
                source.problem(
                    f"Olive has no pass type `{pass_type}`",
                    (*path, "pass_type") if path else path,
                    "check the spelling (pass types are listed in Olive's olive_config.json)",
                )
            )
            continue
        except ImportError as exc:
            problems.append(
                source.problem(
                    f"Olive's {pass_type} pass cannot be imported here: {exc}",
                    path,
                    "install the package it names (see constraints/)",
                )
            )
            continue
        params = dict(entry.config or {})
        if search:
            problems.extend(
                _silently_searched(
                    cls, accelerator, params, pass_type=pass_type, path=path, source=source
                )
            )
        for variant in _variants(params):
            with _captured_olive_warnings() as captured:
                try:
                    pass_config = cls.generate_config(accelerator, variant, {}, True)
                except (ValidationError, ValueError, TypeError) as exc:
                    problems.append(
                        source.problem(
                            f"Olive rejects {pass_type} ({pass_name}): " + _one_line(exc),
                            path,
                            "change this step's parameters as Olive says",
                        )
                    )
                    break
            lora = loaded.recipe.steps[index] if index is not None else None
            if lora is not None and lora.type != "lora":
                lora = None
            if lora is not None:
                problems.extend(
                    _training_args_problems(
                        lora, pass_config, path=path, source=source, device=target.device
                    )
                )
            for message in captured.messages:
                keys = _ignored_keys(message)
                if keys is None or (lora is not None and keys[0] == "training_args"):
                    continue  # _training_args_problems names them, with a did-you-mean
                where = path
                if path and path[-1] == "olive_pass" and keys[0] != "training_args":
                    where = (*path, "params", keys[0])
                elif path and keys[0] == "training_args":
                    where = (*path, *keys)
                problems.append(
                    source.problem(
                        f"Olive {pass_type} would silently ignore `{keys[-1]}`"
                        if len(keys) <= 2
                        else f"Olive {pass_type} would silently ignore {', '.join(keys)}",
                        where,
                        "fix the parameter name",
                    )
                )
            with _captured_olive_warnings() as captured:
                valid = cls.validate_config(pass_config, accelerator)
            if not valid:
                reason = " ".join(captured.messages) or "its settings are invalid"
                problems.append(
                    source.problem(
                        f"Olive would prune {pass_type} ({pass_name}) silently on "
                        f"{target.device}/{target.resolved_provider}: {reason}",
                        path,
                        "change the step's settings or the target",
                    )
                )
                break
    return _dedupe(problems)


def _silently_searched(
    cls: Any,
    accelerator: Any,
    params: dict[str, Any],
    *,
    pass_type: str,
    path: KeyPath,
    source: Any,
) -> list[Problem]:
    """In search mode Olive searches every unset parameter that has search defaults."""
    defaults = cls._default_config(accelerator)
    unset = sorted(
        key
        for key, param in defaults.items()
        if getattr(param, "search_defaults", None) is not None and key not in params
    )
    if not unset:
        return []
    where = (*path, "params") if path and path[-1] == "olive_pass" else path
    return [
        source.problem(
            f"with search on, Olive would also search {pass_type}'s unset "
            f"{', '.join(unset)} (its search defaults)",
            where,
            "set each to a value (or `DEFAULT_VALUE`)",
        )
    ]


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:400]


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def olive_version() -> str:
    """Installed olive-ai version, without importing olive (cheap)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("olive-ai")
    except PackageNotFoundError:
        return "not installed"


# -- training_args ---------------------------------------------------------------------------

# Words of TrainingArguments errors that depend on this machine's hardware, not the recipe
# ("Your setup doesn't support bf16/gpu", "--tf32 requires Ampere or a newer GPU arch").
_HARDWARE_WORDS = re.compile(r"gpu|cuda|bf16|fp16|tf32|ampere|xpu|npu|hpu|mps", re.IGNORECASE)


@contextlib.contextmanager
def _no_side_effects() -> Iterator[None]:
    """Building a TrainingArguments sets environment variables and accelerate's process
    state; the real run must find both as they were."""
    import warnings

    from accelerate.state import PartialState

    environ = dict(os.environ)
    fresh = not PartialState._shared_state
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its advice ("speedups for torchdynamo ...") is noise here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        os.environ.clear()
        os.environ.update(environ)
        if fresh:
            PartialState._reset_state()


def _expected(value: Any, annotation: Any) -> str | None:
    """What `annotation` takes, when the YAML scalar `value` does not fit it; else None."""
    import enum
    import typing

    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            types.UnionType,
        )
        else (annotation,)
    )
    enums = [o for o in options if isinstance(o, type) and issubclass(o, enum.Enum)]
    if enums and isinstance(value, str):
        # `Union[SchedulerType, str]`: the text must be one of the enum's values.
        allowed = [str(member.value) for member in enums[0]]
        return None if value in allowed else "one of: " + ", ".join(allowed)
    for option in options:
        if option is bool and isinstance(value, bool):
            return None
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return None
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return None
        if option is str and isinstance(value, str):
            return None
    nouns = {bool: "`true`/`false`", int: "a whole number", float: "a number", str: "text"}
    wanted = [nouns[o] for o in options if o in nouns]
    return " or ".join(dict.fromkeys(wanted)) or "a list, a mapping or an object"


def _training_args_problems(
    step: Any, pass_config: Any, *, path: KeyPath, source: Any, device: str
) -> list[Problem]:
    """Names and value types of a lora step's training_args against transformers'
    TrainingArguments, then the arguments built the way Olive's LoRA pass builds them at run
    time (olive/passes/pytorch/lora.py:400-447), so its checks run now."""
    import dataclasses
    import tempfile
    import typing

    import torch
    import transformers

    from olive_workflows.recipe.parse import did_you_mean

    hints = typing.get_type_hints(transformers.TrainingArguments)
    names = [f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init]
    problems = []
    for key, value in step.training_args.items():
        where = (*path, "training_args", key)
        if key not in names:
            problems.append(
                source.problem(
                    f"Olive {step.olive_type} would silently ignore `{key}`: transformers' "
                    "TrainingArguments has no such argument",
                    where,
                    did_you_mean(key, names) or "see the TrainingArguments documentation",
                )
            )
            continue
        wanted = _expected(value, hints[key])
        if wanted is None:
            continue
        if wanted.startswith("one of: "):
            choices = wanted.removeprefix("one of: ").split(", ")
            message = f"`{key}` has no value {value!r} (transformers would refuse it)"
            starts = [c for c in choices if c.startswith(str(value))]
            close = f"did you mean `{starts[0]}`? " if starts else ""
            close = close or (did_you_mean(str(value), choices) or "").replace("?", "? ")
            fix = f"{close}use one of: {', '.join(choices)}"
        elif wanted.startswith("a list"):
            message = f"`{key}` takes {wanted}, which a training_args value cannot be"
            fix = "remove it (write the Olive config by hand if you need it)"
        else:
            message, fix = f"`{key}` takes {wanted}, not {value!r}", f"write {wanted}"
        problems.append(source.problem(message, where, fix))
    if problems:
        return problems
    from olive.passes.pytorch.lora import HFTrainingArguments, QLoRATrainingArguments

    kind = QLoRATrainingArguments if step.method == "qlora" else HFTrainingArguments
    args = pass_config.training_args
    try:
        with _no_side_effects(), tempfile.TemporaryDirectory() as tmp:
            # A copy (the run mutates its own); a dict is what Olive's union left unparsed.
            args = kind.model_validate(args if isinstance(args, dict) else args.model_dump())
            # What LoRA._run_for_config does before it creates the Trainer.
            eval_strategy = args.eval_strategy
            args.eval_strategy = "no"
            if step.eval_data is not None:
                args.eval_strategy = "steps" if eval_strategy in (None, "no") else eval_strategy
            if not args.output_dir:
                args.output_dir = tmp
                args.extra_args["save_total_limit"] = 1
            if pass_config.torch_dtype == "float16":
                args.extra_args["fp16"] = True
            args.create_training_args()
    except Exception as exc:  # whatever transformers raises is what the run would raise
        message = _one_line(exc).rstrip(".")
        if device == "gpu" and not torch.cuda.is_available() and _HARDWARE_WORDS.search(message):
            return []  # decided on the GPU machine, not here
        named = [k for k in step.training_args if re.search(rf"\b{re.escape(k)}\b", message)]
        return [
            source.problem(
                f"the training arguments fail as they would in the run: {message}",
                (*path, "training_args", *named[:1]),
                "change training_args as transformers says",
            )
        ]
    return []
