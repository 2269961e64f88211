"""The ``airflow mlprod`` command group (kept light: Airflow imports it whenever its CLI starts)."""

from __future__ import annotations

from airflow.cli.cli_config import ARG_OUTPUT, ActionCommand, Arg, GroupCommand, lazy_load_command

_COMMANDS = "airflow_provider_mlprod.cli.commands"

ARG_DIR = Arg(
    ("directory",), help="Folder to copy the example DAGs and expectation suites into (a DAG folder)"
)
ARG_FORCE = Arg(("--force",), help="Overwrite files that exist already", action="store_true")
ARG_MODEL = Arg(("name",), help="Model name")
ARG_ALIAS = Arg(("--alias",), help="Alias to roll back (default: champion)", default="champion")


def get_cli_commands() -> list[GroupCommand]:
    """The commands Airflow adds under ``airflow mlprod``."""
    return [
        GroupCommand(
            name="mlprod",
            help="ML production guardrails (airflow-provider-mlprod): examples, models, metrics store",
            subcommands=(
                GroupCommand(
                    name="examples",
                    help="The example DAGs shipped with the provider",
                    subcommands=(
                        ActionCommand(
                            name="copy",
                            help="Copy the example DAGs and their expectation suites into a folder",
                            func=lazy_load_command(f"{_COMMANDS}.examples_copy"),
                            args=(ARG_DIR, ARG_FORCE, ARG_OUTPUT),
                        ),
                    ),
                ),
                GroupCommand(
                    name="models",
                    help="Models in the registry of the metrics store",
                    subcommands=(
                        ActionCommand(
                            name="list",
                            help="List models with their versions and aliases",
                            func=lazy_load_command(f"{_COMMANDS}.models_list"),
                            args=(ARG_OUTPUT,),
                        ),
                        ActionCommand(
                            name="show",
                            help="Show a model: aliases, versions and its latest events",
                            func=lazy_load_command(f"{_COMMANDS}.models_show"),
                            args=(ARG_MODEL, ARG_OUTPUT),
                        ),
                    ),
                ),
                ActionCommand(
                    name="rollback",
                    help="Point an alias back at the version it held before (compare-and-swap; "
                    "recorded as a manual action)",
                    func=lazy_load_command(f"{_COMMANDS}.rollback"),
                    args=(ARG_MODEL, ARG_ALIAS, ARG_OUTPUT),
                ),
                GroupCommand(
                    name="store",
                    help="The metrics store",
                    subcommands=(
                        ActionCommand(
                            name="check",
                            help="Check that the metrics store is reachable and show its schema version",
                            func=lazy_load_command(f"{_COMMANDS}.store_check"),
                            args=(ARG_OUTPUT,),
                        ),
                        ActionCommand(
                            name="migrate",
                            help="Create or upgrade the metrics store's schema",
                            func=lazy_load_command(f"{_COMMANDS}.store_migrate"),
                            args=(ARG_OUTPUT,),
                        ),
                    ),
                ),
            ),
        )
    ]
