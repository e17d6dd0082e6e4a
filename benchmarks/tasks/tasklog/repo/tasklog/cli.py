"""The `tasklog` command: add, list, done and remove tasks in a plain text file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tasklog import store
from tasklog.model import PRIORITIES, Task, find, next_id, parse_due
from tasklog.render import table

DEFAULT_FILE = Path.home() / ".tasklog"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tasklog", description=__doc__)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the task file (default: ~/.tasklog)")
    commands = parser.add_subparsers(dest="command", required=True)

    add = commands.add_parser("add", help="add a task")
    add.add_argument("title")
    add.add_argument("--due", help="due date, YYYY-MM-DD")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    add.add_argument("--priority", choices=PRIORITIES, default="normal")

    ls = commands.add_parser("list", help="list open tasks")
    ls.add_argument("--tag", help="only tasks with this tag")
    ls.add_argument("--sort", choices=("id", "due"), default="id")
    ls.add_argument("--all", action="store_true", help="include done tasks")

    done = commands.add_parser("done", help="mark a task done")
    done.add_argument("id", type=int)

    remove = commands.add_parser("remove", help="delete a task")
    remove.add_argument("id", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tasks = store.load(args.file)
    try:
        return COMMANDS[args.command](args, tasks)
    except ValueError as exc:
        print(f"tasklog: error: {exc}", file=sys.stderr)
        return 1


def cmd_add(args: argparse.Namespace, tasks: list[Task]) -> int:
    due = parse_due(args.due) if args.due else None
    task = Task(next_id(tasks), args.title, due, tuple(args.tag), args.priority)
    store.save(args.file, [*tasks, task])
    print(f"added {task.id}: {task.title}")
    return 0


def cmd_list(args: argparse.Namespace, tasks: list[Task]) -> int:
    shown = [t for t in tasks if args.all or not t.done]
    if args.tag:
        shown = [t for t in shown if t.has_tag(args.tag)]
    if args.sort == "due":
        shown = sorted(shown, key=lambda t: t.due)
    if shown:
        print(table(shown))
    else:
        print("no tasks")
    return 0


def cmd_done(args: argparse.Namespace, tasks: list[Task]) -> int:
    task = find(tasks, args.id)
    tasks[tasks.index(task)] = task.complete()
    store.save(args.file, tasks)
    print(f"done {task.id}: {task.title}")
    return 0


def cmd_remove(args: argparse.Namespace, tasks: list[Task]) -> int:
    task = find(tasks, args.id)
    tasks.remove(task)
    store.save(args.file, tasks)
    print(f"removed {task.id}: {task.title}")
    return 0


COMMANDS = dict(add=cmd_add, list=cmd_list, done=cmd_done, remove=cmd_remove)


if __name__ == "__main__":
    sys.exit(main())
