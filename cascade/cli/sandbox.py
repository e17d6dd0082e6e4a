"""`cascade sandbox build | run | gc | cache-key | save`: build the sandbox image with no registry
(and the repo's environment when `[sandbox] setup` is set), run one command in a fresh sandbox
exactly as the gate would, remove what crashed runs left behind, and keep the images in a CI
cache (a key known before any build, and one `docker save` tarball of them).
Commands are sync and call `anyio.run` inside (typer skips `async def` commands)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio
import typer

from cascade.cli.failures import reported

if TYPE_CHECKING:  # `cascade --help` does not import the config schema
    from cascade.config import SandboxConfig

sandbox_app = typer.Typer(
    rich_markup_mode=None,
    name="sandbox",
    help="Build, try out, cache and clean up the Docker sandbox.",
    no_args_is_help=True,
    add_completion=False,
)

T = TypeVar("T")


def _guard(action: Callable[[], T]) -> T:
    """Run one command's work: a CascadeError becomes a message and its exit code (3 for the
    sandbox), never a traceback."""
    with reported():
        return action()


def _sandbox_config(repo: Path) -> SandboxConfig:
    from cascade.wiring.settings import load_config

    return load_config(repo).config.sandbox


@sandbox_app.command()
def build(
    base: Annotated[
        str | None, typer.Option(help="Base image (default: sandbox.options.base).")
    ] = None,
    base_rootfs: Annotated[
        Path | None,
        typer.Option(help="A root filesystem tar to import as the base (no registry needed)."),
    ] = None,
    repo: Annotated[
        Path, typer.Option(help="Where to read the configuration; its HEAD's environment.")
    ] = Path(),
) -> None:
    """Build the sandbox image (tools from host-fetched wheels; debootstrap base if needed) with
    the Python the repository at HEAD needs ([sandbox] python, or its requires-python), then its
    environment when `[sandbox] setup` is set (each reused if up to date)."""
    from sandboxes.image import build_image
    from sandboxes.image_cache import head
    from sandboxes.setup_layer import environment_image

    started = time.monotonic()

    def progress(line: str) -> None:
        typer.echo(f"[{time.monotonic() - started:5.1f}s] {line}")

    def work() -> list[str]:
        config = _sandbox_config(repo)
        root = repo.resolve()
        commit = head(root, config)
        if commit is None:
            progress(f"{root} is not a git checkout: no requires-python to read there")
            return [build_image(config, base=base, base_rootfs=base_rootfs, progress=progress)]
        built = [
            build_image(
                config, base=base, base_rootfs=base_rootfs, progress=progress,
                repo=root, commit=commit,
            )
        ]  # fmt: skip
        if config.setup:
            env = environment_image(config, root, commit, progress=progress)
            built.append(env.tag)
        return built

    for line in _guard(work):
        typer.echo(line)


@sandbox_app.command("cache-key")
def cache_key(
    repo: Annotated[
        Path, typer.Option(help="Where to read the configuration; its HEAD's requirements.")
    ] = Path(),
) -> None:
    """Print a key for a CI cache of the images `cascade sandbox build` makes for the repository
    at HEAD (e.g. actions/cache), known before anything is built: it changes with cascade's
    version and image-building code, [sandbox], the Python the repository asks for and, with
    `[sandbox] setup`, its commands and dependency files."""
    from sandboxes.image_cache import cache_key as key_of

    typer.echo(_guard(lambda: key_of(_sandbox_config(repo), repo.resolve())))


@sandbox_app.command()
def save(
    output: Annotated[Path, typer.Option(help="The tarball to write (`docker load -i` it).")],
    repo: Annotated[
        Path, typer.Option(help="Where to read the configuration; its HEAD's environment.")
    ] = Path(),
) -> None:
    """`docker save` every image the repository's sandboxes need (the base, the sandbox image or
    its Python variant, the environment of HEAD) into one tarball: after `docker load -i` on
    another engine, `cascade sandbox build` finds them up to date and builds nothing."""
    from sandboxes.docker_api import connect
    from sandboxes.image_cache import needed_images, save_images

    started = time.monotonic()

    def work() -> tuple[list[str], int]:
        config = _sandbox_config(repo)
        client = connect(timeout=900)  # one long streamed answer
        try:
            images = needed_images(client, config, repo.resolve())
            size = save_images(client, images, output)
        finally:
            client.close()
        return [f"{image.ref} ({image.image_id[:19]})" for image in images], size

    saved, size = _guard(work)
    for line in saved:
        typer.echo(f"saved {line}")
    took = time.monotonic() - started
    typer.echo(f"{output}: {size / 1e6:.0f} MB, {len(saved)} images, in {took:.1f}s")


@sandbox_app.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str], typer.Argument(help="The command, after `--`.")],
    repo: Annotated[Path, typer.Option(help="The repository (its HEAD is used).")] = Path(),
    timeout: Annotated[
        float | None, typer.Option(help="Seconds (default: sandbox.command_timeout).")
    ] = None,
) -> None:
    """Run CMD in a fresh Docker sandbox of the repository at HEAD, as the gate would."""
    from cascade.workspace.checkout import resolve_commit
    from sandboxes.docker_sandbox import DockerSandbox

    async def go(config: SandboxConfig, commit: str) -> int:
        box = await DockerSandbox.open(repo.resolve(), commit, config)
        try:
            result = await box.exec(command, timeout=timeout or config.command_timeout)
        finally:
            with anyio.CancelScope(shield=True):
                await box.close()
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        sys.stdout.flush()
        typer.echo(f"[exit {result.exit_code} in {result.duration_s:.2f}s]", err=True)
        return result.exit_code

    def work() -> int:
        config = _sandbox_config(repo)
        return anyio.run(go, config, resolve_commit(repo.resolve()))

    raise typer.Exit(_guard(work))


@sandbox_app.command()
def gc(
    images: Annotated[
        bool,
        typer.Option(
            "--images", help="Also remove environment images (cascade-env:*) no container uses."
        ),
    ] = False,
) -> None:
    """Remove sandbox containers and volumes whose run is gone or whose ttl has passed."""
    from sandboxes.cleanup import collect_env_images, collect_garbage
    from sandboxes.docker_api import connect

    def work() -> list[str]:
        client = connect()
        try:  # containers first: an image is unused once its stopped containers are gone
            removed = collect_garbage(client)
            return removed + collect_env_images(client) if images else removed
        finally:
            client.close()

    removed = _guard(work)
    for line in removed:
        typer.echo(f"removed {line}")
    typer.echo(f"{len(removed)} removed" if removed else "nothing to remove")
