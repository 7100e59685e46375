"""Reading a recipe: YAML -> models; pydantic errors become `file:line: key` problems."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

from olive_workflows.core.credentials import REDACTED, SECRET_KEYS, find_credentials
from olive_workflows.core.errors import KeyPath, Problem, RecipeError
from olive_workflows.recipe.schema import RECIPE_VERSION, LoadedRecipe, Recipe
from olive_workflows.recipe.source import SourceMap, load_yaml
from olive_workflows.recipe.steps import STEP_TYPES

# Olive's names for our keys: a user who types Olive's name gets pointed at ours.
OLIVE_ALIASES: dict[str, str] = {
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "q_group_size": "group_size",
    "sym": "symmetric",
    "num_train_epochs": "epochs",
    "per_device_train_batch_size": "batch_size",
    "use_dynamo_exporter": "exporter",
    "target_opset": "opset",
    "save_format": "format",
    "opt_level": "level",
    "train_data_config": "data",
    "eval_data_config": "eval_data",
    "data_config": "calibration",
    "execution_providers": "provider",
    "model_path": "path",
    "data_files": "files",
    "text_template": "template",
    "sampler_config": "sampler",
    "max_iter": "max_iterations",
}


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str | None:
    """`did you mean `x`?` for a misspelled key or step name, or None."""
    choices = list(choices)
    if word in OLIVE_ALIASES and OLIVE_ALIASES[word] in choices:
        return f"did you mean `{OLIVE_ALIASES[word]}`? (Olive's `{word}` is called that here)"
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`?" if match else None


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _is_model(value: Any) -> bool:
    """A pydantic model class or a TypedDict: a mapping with named keys."""
    return (isinstance(value, type) and issubclass(value, BaseModel)) or is_typeddict(value)


def _keys_of(owner: Any) -> list[str]:
    if isinstance(owner, type) and issubclass(owner, BaseModel):
        return sorted(owner.model_fields)
    return sorted(typing.get_type_hints(owner)) if is_typeddict(owner) else []


def _model_at(path: KeyPath) -> Any:
    """The pydantic model (or TypedDict) that owns the mapping at `path` (for listing
    allowed keys)."""
    model: Any = Recipe
    i = 0
    while i < len(path):
        part = path[i]
        if model is Recipe and part == "steps":
            # steps[i].<type>.<key>: the step model is chosen by the type key.
            if i + 2 >= len(path):
                return None
            model = STEP_TYPES.get(str(path[i + 2]))
            i += 3
            continue
        if not _is_model(model):
            return None
        if is_typeddict(model):
            annotation = typing.get_type_hints(model).get(str(part))
        else:
            field = model.model_fields.get(str(part))
            annotation = field.annotation if field is not None else None
        if annotation is None:
            return None
        candidates = _unwrap(annotation)
        i += 1
        # Step into containers: list[X] takes an index, dict[str, X] takes a key.
        nxt: Any = None
        for cand in candidates:
            origin = get_origin(cand)
            if origin in (list, dict) and i < len(path):
                nxt = _unwrap(get_args(cand)[-1])
                i += 1
                break
            if _is_model(cand):
                nxt = [cand]
                break
        if not nxt:
            return None
        models = [c for c in nxt if _is_model(c)]
        if not models:
            return None
        model = models[0]
    return model if _is_model(model) else None


def _user_path(data: Any, loc: tuple[Any, ...], keep_last: bool) -> KeyPath:
    """The part of a pydantic `loc` that names real keys in the user's YAML."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if isinstance(cur, dict) and not in_dict and cur.get("type") == part:
            continue  # pydantic names the variant of a discriminated union (metrics)
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
        else:
            if keep_last and isinstance(part, str):
                out.append(part)
            break
    return tuple(out)


def _describe(value: Any, path: KeyPath = ()) -> str:
    if path and str(path[-1]).lower() in SECRET_KEYS:
        return REDACTED
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# pydantic error type -> how to fix it (ctx values fill the braces).
_FIXES: dict[str, str] = {
    "string_type": 'write text (quote it: "...")',
    "int_type": "write a whole number, e.g. `8`",
    "int_from_float": "write a whole number, e.g. `8`",
    "float_type": "write a number, e.g. `0.5`",
    "bool_type": "write `true` or `false`",
    "list_type": "write a list, e.g. `[a, b]`",
    "dict_type": "write a mapping of `key: value` entries",
    "model_type": "write a mapping of `key: value` entries",
    "model_attributes_type": "write a mapping of `key: value` entries",
    "literal_error": "use one of: {expected}",
    "greater_than": "use a value greater than {gt}",
    "greater_than_equal": "use a value of at least {ge}",
    "less_than": "use a value less than {lt}",
    "less_than_equal": "use a value of at most {le}",
    "too_short": "give at least {min_length} item(s)",
    "too_long": "give at most {max_length} item(s)",
    "string_too_short": "give a non-empty value",
    "string_too_long": "use at most {max_length} characters",
    "union_tag_invalid": "use one of: {expected_tags}",
    "invalid-json-value": "write text, a number, `true`/`false`, a list or a mapping "
    '(quote dates: "2024-01-01")',
}
_TYPE_ONLY = {"string_type", "int_type", "float_type", "bool_type", "list_type", "dict_type"}
_TYPE_NOUNS = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "`true`/`false`",
    "list_type": "a list",
    "dict_type": "a mapping",
}
# Name patterns (from the models) -> what a valid name looks like.
_NAME_RULES = {
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$": "start with a letter or digit, then use letters, "
    "digits, `_`, `.` or `-` (64 characters at most)",
    r"^[A-Za-z][A-Za-z0-9_]*$": "start with a letter, then use letters, digits and `_` only",
}


# YAML 1.1 reads `2e-4` (no dot) as text, a classic for learning rates.
_EXPONENT_WITHOUT_DOT = re.compile(r"^[-+]?\d+[eE][-+]?\d+$")


# Number-like text that YAML 1.1 leaves as a string (YAML 1.2 or Python would read a number).
_EXPONENT_UNSIGNED = re.compile(r"^([-+]?\d*\.\d*)[eE](\d+)$")
_PADDED_INT = re.compile(r"^[-+]?0\d+$")
_OCTAL_12 = re.compile(r"^[-+]?0o[0-7]+$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+$")
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d{1,3}$")
_ARITHMETIC = re.compile(r"^[\d.\s]+(\^|\*\*|[*/+-])[\d.\s^*/+-]+$")


def _number_text_fix(value: str, whole: bool) -> str | None:
    """How to write number-like text (`1.0e5`, `0o17`, `10^21`) as a YAML number, or None;
    `whole`: the key takes whole numbers."""
    text = value.strip()
    if whole and _SCIENTIFIC.match(text) and float(text).is_integer():
        return f"YAML reads `{value}` as text; write the whole number {int(float(text))}"
    if _EXPONENT_WITHOUT_DOT.match(text):
        mantissa, _, exponent = text.lower().partition("e")
        exponent = exponent if exponent[0] in "+-" else f"+{exponent}"
        return f"YAML reads `{value}` as text; write `{mantissa}.0e{exponent}` (with a dot)"
    match = _EXPONENT_UNSIGNED.match(text)
    if match and any(c.isdigit() for c in match[1]):
        return f"YAML reads `{value}` as text; write `{match[1]}e+{match[2]}` (a signed exponent)"
    if _PADDED_INT.match(text):
        return f"write {int(text, 10)} (without leading zeros)"
    if _OCTAL_12.match(text):
        number = int(text.lower().replace("0o", ""), 8)
        return f"YAML reads `{value}` as text; write {number}"
    if _THOUSANDS.match(text):
        return f"write {text.replace(',', '')} (without thousands separators)"
    if _ARITHMETIC.match(text):
        return "YAML does no arithmetic: write the number itself, e.g. `1000`"
    return None


def _fix_for(errs: list[dict[str, Any]]) -> str:
    """How to fix the most specific of a value's errors (a range beats a type mismatch)."""
    for err in errs:
        value = err.get("input")
        if isinstance(value, str) and err["type"] in ("int_type", "float_type"):
            whole = not any(e["type"] == "float_type" for e in errs)
            fix = _number_text_fix(value, whole)
            if fix is not None:
                return fix
    if len(errs) > 1 and all(e["type"] in _TYPE_NOUNS for e in errs):
        nouns = list(dict.fromkeys(_TYPE_NOUNS[e["type"]] for e in errs))
        return "write " + ", ".join(nouns[:-1]) + " or " + nouns[-1]
    specific = [e for e in errs if e["type"] not in _TYPE_ONLY] or errs
    for err in specific:
        template = _FIXES.get(err["type"])
        if template is not None:
            ctx = {k: str(v).replace("'", "`") for k, v in (err.get("ctx") or {}).items()}
            try:
                return template.format(**ctx)
            except KeyError:
                continue
    return "see `olive-workflows schema` for what this key accepts"


def _translate(exc: ValidationError, data: Any, source: SourceMap) -> list[Problem]:
    grouped: dict[KeyPath, list[Any]] = {}
    for err in exc.errors(include_url=False):
        kind = err["type"]
        path = _user_path(data, err["loc"], keep_last=kind in ("missing", "extra_forbidden"))
        grouped.setdefault(path, []).append(err)

    problems: list[Problem] = []
    for path, errs in grouped.items():
        kinds = {e["type"] for e in errs}
        first = errs[0]
        if "extra_forbidden" in kinds:
            key = str(path[-1])
            allowed = _keys_of(_model_at(path[:-1]))
            fix = did_you_mean(key, allowed) or (
                f"allowed keys: {', '.join(allowed)}" if allowed else "remove it"
            )
            problems.append(source.problem(f"unknown key `{key}`", path, fix))
        elif "missing" in kinds:
            key = str(path[-1]) if path else "?"
            problems.append(
                source.problem(f"required key `{key}` is missing", path, f"add `{key}: ...`")
            )
        elif len(errs) > 1:
            msgs = "; or ".join(dict.fromkeys(e["msg"].removeprefix("Input ") for e in errs))
            problems.append(
                source.problem(
                    f"invalid value {_describe(first.get('input'), path)}: {msgs}",
                    path,
                    _fix_for(errs),
                )
            )
        elif first["type"] == "union_tag_not_found":
            key = str(first["ctx"]["discriminator"]).strip("'")
            problems.append(
                source.problem(
                    f"required key `{key}` is missing", (*path, key), f"add `{key}: ...`"
                )
            )
        elif first["type"] == "union_tag_invalid":
            key = str(first["ctx"]["discriminator"]).strip("'")
            inner = first.get("input")
            has_key = isinstance(inner, dict) and key in inner
            problems.append(
                source.problem(
                    f"invalid {key} {_describe(first['ctx']['tag'])}",
                    (*path, key) if has_key else path,
                    _fix_for(errs),
                )
            )
        elif first["type"] == "string_pattern_mismatch":
            problems.append(
                source.problem(
                    f"invalid name {_describe(first.get('input'), path)}",
                    path,
                    _NAME_RULES.get(
                        str((first.get("ctx") or {}).get("pattern")),
                        "use letters, digits and `_` only",
                    ),
                )
            )
        else:
            msg = first["msg"].removeprefix("Input ").removeprefix("Value error, ")
            msg = re.sub(r" or instance of \w+$", "", msg)  # our class names mean nothing here
            # Our own validators write "what is wrong; how to fix it".
            msg, _, fix = msg.partition("; ")
            where = path
            if isinstance(first.get("input"), dict):
                # A validator of a whole mapping: its message says what; no value to quote.
                missing = re.match(r"required key `(\w+)` is missing", msg)
                where = (*path, missing[1]) if missing else path
            else:
                msg = f"invalid value {_describe(first.get('input'), path)}: {msg}"
            problems.append(source.problem(msg, where, fix or _fix_for(errs)))
    return problems


# Stands in for a malformed step so that later steps keep their index in error messages.
_PLACEHOLDER_STEP = {"type": "merge_adapters"}


def _normalize_steps(data: dict[str, Any], source: SourceMap) -> tuple[Any, list[Problem]]:
    """`- lora: {...}` items -> `{"type": "lora", ...}`; structural problems reported."""
    steps = data.get("steps")
    if not isinstance(steps, list):
        return steps, []
    problems: list[Problem] = []
    out: list[Any] = []
    for i, item in enumerate(steps):
        before = len(problems)
        _normalize_step(i, item, source, problems, out)
        if len(problems) > before:
            out.append(_PLACEHOLDER_STEP)
    return out, problems


def _normalize_step(
    i: int, item: Any, source: SourceMap, problems: list[Problem], out: list[Any]
) -> None:
    path: KeyPath = ("steps", i)
    if isinstance(item, str):
        item = {item: None}  # `- onnx` means `- onnx: {}`
    if not isinstance(item, dict) or len(item) != 1:
        problems.append(
            source.problem(
                "each step is a mapping with one key, the step type",
                path,
                "write `- lora: {data: travel}`",
            )
        )
        return
    ((kind, params),) = item.items()
    if kind not in STEP_TYPES:
        fix = did_you_mean(str(kind), STEP_TYPES) or f"known steps: {', '.join(STEP_TYPES)}"
        problems.append(source.problem(f"unknown step `{kind}`", (*path, kind), fix))
        return
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append(
            source.problem(
                f"parameters of `{kind}` must be a mapping, got {_describe(params)}",
                (*path, kind),
                f"write `- {kind}: {{}}` for the defaults",
            )
        )
        return
    if "type" in params:
        problems.append(
            source.problem(
                "unknown key `type`",
                (*path, kind, "type"),
                "the step type is the key above; remove `type`",
            )
        )
        return
    out.append({"type": kind, **params})


# `<place_holder>`, `<model_name_placeholder>`, `<subscription_id>`: a whole value in angle
# brackets, or a `<...placeholder...>` inside one. Chat-template markers (`<|user|>`) never match.
PLACEHOLDER = re.compile(
    r"^<[A-Za-z][A-Za-z0-9_. -]*>$|<[A-Za-z0-9_]*place_?holder[A-Za-z0-9_]*>", re.IGNORECASE
)


def find_placeholders(value: Any, path: KeyPath = ()) -> typing.Iterator[tuple[KeyPath, str]]:
    """(key path, text) of every string value that is or holds a template placeholder."""
    if isinstance(value, str):
        if PLACEHOLDER.search(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from find_placeholders(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_placeholders(item, (*path, i))


def parse_recipe(data: Any, source: SourceMap) -> Recipe:
    """Validate plain data as a Recipe; every problem is reported at once."""
    if not isinstance(data, dict):
        raise RecipeError(
            [
                source.problem(
                    "a recipe is a mapping of keys (version, name, model, ...)",
                    (),
                    "start from a file in workflows/ (`version: 1`, `name: ...`, `model: ...`)",
                )
            ]
        )
    version = data.get("version")
    # `type(...) is int`: YAML's `true` and `1.0` compare equal to 1 but are not versions.
    if version is not None and (type(version) is not int or version != RECIPE_VERSION):
        raise RecipeError(
            [
                source.problem(
                    f"recipe version {_describe(version)} is not supported",
                    ("version",),
                    f"this olive-workflows reads `version: {RECIPE_VERSION}`",
                )
            ]
        )
    # Reported first and never quoted: a token must not reach the config or the terminal.
    problems = [
        source.problem(
            f"this looks like {what}; a credential does not belong in a recipe (it would be "
            "copied into the Olive config, logs and run summaries)",
            path,
            fix,
        )
        for path, what, fix in find_credentials(data)
    ]
    # Placeholders from Olive templates (`olive-workflows import` keeps them as fields):
    # reported as unfilled, instead of as the type errors they would also cause.
    unfilled = list(find_placeholders(data))
    problems += [
        source.problem(
            f"`{value}` is an unfilled placeholder (from an Olive template)",
            path,
            "replace it with the real value",
        )
        for path, value in unfilled
    ]
    steps, step_problems = _normalize_steps(data, source)
    problems += step_problems
    normalized = {**data, "steps": steps} if "steps" in data else dict(data)
    try:
        recipe = Recipe.model_validate(normalized)
    except ValidationError as exc:
        translated = [
            p
            for p in _translate(exc, data, source)
            if not any(p.path[: len(path)] == path for path, _ in unfilled)
        ]
        raise RecipeError(problems + translated) from None
    if problems:
        raise RecipeError(problems)
    return recipe


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read, parse and validate a recipe file (types and cross-step rules).

    >>> loaded = load_recipe("workflows/tiny-travel-cpu.yaml")  # doctest: +SKIP
    >>> loaded.recipe.steps[0].type
    'lora'
    """
    from olive_workflows.recipe.rules import check_rules

    path = Path(path).expanduser().absolute()
    data, source = load_yaml(path)
    recipe = parse_recipe(data, source)
    loaded = LoadedRecipe(recipe=recipe, path=path, source=source)
    problems = check_rules(loaded)
    if problems:
        raise RecipeError(problems)
    return loaded
