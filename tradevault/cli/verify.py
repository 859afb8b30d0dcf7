"""``tradevault verify``: check every manifest and object on every location."""

from __future__ import annotations

from typing import Annotated

import typer

from tradevault.cli.support import ConfigOption, JsonOption, print_json, progress_display, settings_for, stderr, stdout


def verify(
    ctx: typer.Context,
    deep: Annotated[bool, typer.Option("--deep", help="Also decode every record.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every manifest and object on every location."""
    from restore.verify import verify_store
    from trade_stream.errors import IntegrityError
    from tradevault import wiring

    settings = settings_for(ctx, config)
    source = wiring.source(settings)
    store = wiring.store(settings, source)
    with progress_display(not as_json) as progress:
        report = verify_store(store, deep=deep, progress=progress, evidence=wiring.evidence(settings, store, source))
    if as_json:
        print_json(report.to_json())
    elif report.ok:
        stdout.print(f"ok: {report.objects_checked} objects, {report.bytes_checked:,} bytes checked"
                     f"{' (deep)' if deep else ''}")
    else:
        for p in report.problems:
            stderr.print(f"{p['location']}: {p['object']}: {p['problem']}", markup=False)
    if not report.ok:
        first = report.problems[0]
        if not as_json:
            raise IntegrityError(f"{len(report.problems)} problem(s), first: {first['object']}: {first['problem']}")
        raise typer.Exit(3)
