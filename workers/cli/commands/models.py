"""`dmr models`: register, list and show models; permissions, UI schema and form export."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group
from rich.text import Text

from ..common import (
    EXIT_REFUSED,
    EXIT_USAGE,
    CliContext,
    CliError,
    json_option,
    key_value_table,
    pass_cli,
    read_json,
    rows_table,
    show_value,
)

MODES = ["crud", "cqrs", "hybrid"]


@click.group("models", invoke_without_command=True)
@json_option
@click.pass_context
def models(ctx: click.Context) -> None:
    """Registered models (`dmr models` alone lists them).

    \b
    Example:
      dmr models
      dmr models register product.schema.json --name Product
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


@models.command("list")
@json_option
@pass_cli
def list_models(cli: CliContext) -> None:
    """List the registered models: name, version, mode and fields.

    \b
    Example:
      dmr models list --json
    """
    found = cli.call("registry", lambda client: client.list_models())
    cli.emit(found, _models_table)


@models.command("show")
@click.argument("name")
@json_option
@pass_cli
def show(cli: CliContext, name: str) -> None:
    """Show one model: fields, permissions and its JSON Schema.

    \b
    Example:
      dmr models show Product
    """
    cli.emit(_find(cli, name), _describe)


#: Registration and permission changes need a role with the management permission
#: (`models.manager_roles`); the command line makes them as this user.
CLI_USER = "dmr-cli"
ROLE_OPTION = click.option(
    "--role", default="admin", show_default=True,
    help="The role to act as; it needs the management permission (models.manager_roles).",
)


@models.command("register")
@click.argument("schema", metavar="SCHEMA")
@click.option("--name", help="Model name (default: the schema's title).")
@click.option("--permissions", "permissions_source", metavar="PERMISSIONS",
              help="Permissions: a JSON file, `-` for stdin, or the JSON itself.")
@click.option("--mode", type=click.Choice(MODES), default="crud", show_default=True)
@click.option("--force", is_flag=True, help="Apply incompatible changes (drops data).")
@ROLE_OPTION
@json_option
@pass_cli
def register_model(
    cli: CliContext, schema: str, name: str | None, permissions_source: str | None,
    mode: str, force: bool, role: str,
) -> None:
    """Register a model from a JSON Schema (a file, `-` for stdin, or the JSON itself).

    Registering again with added fields changes the table; an incompatible change is
    refused (exit 1, the differences shown) unless --force.

    \b
    Example:
      dmr models register product.schema.json --name Product \\
          --permissions '{"fields": {"price": {"read_roles": ["admin"]}}}'
      cat product.schema.json | dmr models register - --name Product
    """
    document = read_json(schema, "the JSON Schema")
    model_name = name or document.get("title")
    if not isinstance(model_name, str) or not model_name:
        raise CliError("Give --name, or a schema with a \"title\".", EXIT_USAGE)
    permissions = read_json(permissions_source, "the permissions") if permissions_source else None
    entry = cli.call("registry", lambda client: client.register_model(
        model_name, document, mode, permissions=permissions, force=force,
        user_id=CLI_USER, user_role=role))
    cli.emit(entry, _registered)


@models.command("permissions")
@click.argument("name")
@click.argument("permissions_source", metavar="[PERMISSIONS]", required=False)
@ROLE_OPTION
@json_option
@pass_cli
def permissions(cli: CliContext, name: str, permissions_source: str | None, role: str) -> None:
    """Show a model's permissions, or replace them (a JSON file, `-`, or the JSON itself).

    \b
    Example:
      dmr models permissions Product
      dmr models permissions Product perms.json
    """
    if permissions_source is None:
        cli.emit(_find(cli, name)["permissions"], _permissions_view)
        return
    wanted = read_json(permissions_source, "the permissions")
    entry = cli.call("registry", lambda client: client.set_permissions(
        name, wanted, user_id=CLI_USER, user_role=role))
    cli.emit(entry["permissions"], _permissions_view)


@models.command("ui-schema")
@click.argument("name")
@click.option("--role", "-r", envvar="DMR_ROLE", default="admin", show_default=True,
              help="Show the form as this role sees it (env DMR_ROLE).")
@json_option
@pass_cli
def ui_schema(cli: CliContext, name: str, role: str) -> None:
    """Show a model's UI schema as a role sees it: widget, label and flags of each field.

    \b
    Example:
      dmr models ui-schema Product --role user --json
    """
    schema = cli.call("registry", lambda client: client.get_ui_schema(name, role))
    cli.emit(schema, _ui_table)


@models.command("form")
@click.argument("name")
@click.option("--role", "-r", envvar="DMR_ROLE", default="admin", show_default=True,
              help="Export the form as this role sees it (env DMR_ROLE).")
@click.option("--output", "-o", type=click.File("w"), default="-",
              help="File to write (default: stdout).")
@pass_cli
def form(cli: CliContext, name: str, role: str, output: Any) -> None:
    """Export a form for react-jsonschema-form ({"schema", "uiSchema"}) as JSON.

    \b
    Example:
      dmr models form Product --role user -o product.form.json
    """
    import json

    exported = cli.call(
        "registry", lambda client: client.send("registry.export_form", model=name, user_role=role)
    )
    output.write(json.dumps(exported, indent=2, ensure_ascii=False) + "\n")


# -- helpers -------------------------------------------------------------------------------


def _find(cli: CliContext, name: str) -> dict[str, Any]:
    for entry in cli.call("registry", lambda client: client.list_models()):
        if entry["name"] == name:
            return dict(entry)
    raise CliError(f"ModelNotFound: Model {name!r} is not registered.", EXIT_REFUSED)


def _models_table(entries: list[dict[str, Any]]) -> Any:
    if not entries:
        return Text("No models are registered yet (dmr models register --help).")
    rows = [
        {"name": e["name"], "version": e["version"], "mode": e["operation_mode"],
         "fields": ", ".join(e["fields"])}
        for e in entries
    ]
    return rows_table(rows)


def _registered(entry: dict[str, Any]) -> Any:
    return Group(
        Text(f"Registered {entry['name']} v{entry['version']} ({entry['operation_mode']})."),
        _describe(entry),
    )


def _describe(entry: dict[str, Any]) -> Any:
    properties = entry.get("schema", {}).get("properties", {})
    required = set(entry.get("schema", {}).get("required", []))
    fields = [
        {"field": name, "type": _type_of(spec), "required": name in required}
        for name, spec in properties.items()
    ]
    summary: dict[str, Any] = {
        key: entry[key] for key in ("name", "version", "operation_mode") if key in entry
    }
    return Group(
        key_value_table(summary),
        rows_table(fields, title="fields"),
        _permissions_view(entry.get("permissions", {})),
    )


def _type_of(spec: dict[str, Any]) -> str:
    if "type" in spec:
        kind = spec["type"]
        return " | ".join(kind) if isinstance(kind, list) else str(kind)
    if "anyOf" in spec:
        return " | ".join(_type_of(option) for option in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"


def _permissions_view(permissions: dict[str, Any]) -> Any:
    roles = permissions.get("roles", {})
    fields = permissions.get("fields", {})
    parts: list[Any] = [
        rows_table(
            [{"role": role, "operations": ", ".join(ops)} for role, ops in roles.items()],
            title="role permissions",
        )
    ]
    if fields:
        parts.append(rows_table(
            [{"field": name, **{k: show_value(v) for k, v in rule.items()}}
             for name, rule in fields.items()],
            title="field permissions",
        ))
    return Group(*parts)


def _ui_table(schema: dict[str, Any]) -> Any:
    rows = [
        {"field": name, "widget": spec.get("widget"), "label": spec.get("label"),
         "required": spec.get("required"), "readonly": spec.get("readonly"),
         "hidden": spec.get("hidden")}
        for name, spec in schema.get("fields", {}).items()
    ]
    return rows_table(rows, title=f"UI schema of {schema.get('model') or 'the model'}")


def register(root: click.Group) -> None:
    root.add_command(models)
