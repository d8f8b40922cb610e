"""Help: every command's summary is a whole sentence, never cut short with "..."."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main

# click's default short-help width, narrower than the width `--help` gives the list.
SHORT_HELP_LIMIT = 45


def _commands(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, (*path, name))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_commands(main, ()))


def test_every_command_is_walked() -> None:
    assert {("simulate",), ("keys", "create"), ("config", "check")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("paysieve", *path)))
def test_summary_is_a_whole_sentence(path: tuple[str, ...]) -> None:
    summary = _command(path).get_short_help_str(limit=SHORT_HELP_LIMIT)
    assert not summary.endswith("..."), summary
    assert summary.endswith("."), summary
    assert summary[0].isupper(), summary


@pytest.mark.parametrize(
    "path",
    [path for path in COMMANDS if isinstance(_command(path), click.Group)],
    ids=lambda path: " ".join(("paysieve", *path)),
)
def test_group_help_lists_no_truncated_summary(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1].splitlines()
    assert listed and not [line for line in listed if line.rstrip().endswith("...")]
