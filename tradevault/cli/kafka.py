"""``tradevault kafka ...``: run the Kafka sink once, check the topics, show its lag.

A thin layer: the work is in ``trade_stream.kafka.sink`` / ``trade_stream.kafka.check``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from tradevault.cli.support import ConfigOption, JsonOption, print_json, settings_for, stderr, stdout

if TYPE_CHECKING:
    from trade_stream.kafka.check import CheckReport
    from trade_stream.kafka.sink import KafkaSink, SyncResult

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
                  help="The Kafka sink: compacted topics per table.")

TimeoutOption = Annotated[Optional[float], typer.Option("--timeout", help="Seconds to wait for the broker.")]


def _sync(sink: KafkaSink, timeout: float | None) -> SyncResult:
    result = sink.sync_once(timeout)
    for warning in result.warnings:
        stderr.print(f"warning: {warning}", markup=False)
    return result


@app.command("sync")
def sync(ctx: typer.Context, timeout: TimeoutOption = None, config: ConfigOption = None,
         as_json: JsonOption = False) -> None:
    """Publish every captured event not yet confirmed by the broker, once."""
    from trade_stream.kafka.client import KafkaUnavailable
    from tradevault import wiring

    sink = wiring.kafka_sink(settings_for(ctx, config))
    try:
        result = _sync(sink, timeout)
    finally:
        sink.close()
    if as_json:
        print_json({**result.to_json(), "first_seq": result.from_seq, "last_seq": result.to_seq})
    elif result.ok:
        what = " (topics rebuilt from the latest full backup)" if result.bootstrapped else ""
        stdout.print(f"kafka: {result.published:,} events ({result.records:,} records) confirmed, "
                     f"seq {result.from_seq} -> {result.to_seq}{what}, {result.seconds:.2f} s")
    if not result.ok:
        if as_json:
            raise typer.Exit(1)
        raise KafkaUnavailable(f"{result.error} (checkpoint stays at seq {result.to_seq})")


def _print_check(report: CheckReport) -> None:
    for name, table in report.tables.items():
        state = "ok" if table.ok else (f"{table.missing} missing, {table.extra} extra, "
                                       f"{table.different} different")
        stdout.print(f"{name}: source {table.source_rows:,} rows, kafka {table.kafka_rows:,} rows: {state}",
                     markup=False)
        for example in table.examples:
            stdout.print(f"  {example['problem']}: key {example['key']}", markup=False)
    for problem in report.problems:
        stderr.print(f"problem: {problem}", markup=False)


@app.command("check")
def check(
    ctx: typer.Context,
    no_sync: Annotated[bool, typer.Option("--no-sync", help="Compare as the topics are; do not sync first.")] = False,
    timeout: TimeoutOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare the topics' latest state with the source database (exit 3 when they differ)."""
    from trade_stream.errors import IntegrityError
    from trade_stream.kafka.check import check_topics
    from trade_stream.kafka.client import KafkaUnavailable
    from tradevault import wiring

    settings = settings_for(ctx, config)
    sink = wiring.kafka_sink(settings)
    report: CheckReport | None = None
    try:
        for _attempt in range(3):
            if not no_sync:
                result = _sync(sink, timeout)
                if not result.ok:
                    raise KafkaUnavailable(result.error)
            position = sink.checkpoint().seq
            report = check_topics(sink.config, sink.database, sink.store.source, topics_seq=position, timeout=timeout)
            if no_sync or report.ok or report.source_seq == position:
                break  # a difference with the source still moving is retried after a new sync
    finally:
        sink.close()
    assert report is not None
    if as_json:
        print_json(report.to_json())
    else:
        _print_check(report)
        if report.ok:
            stdout.print(f"ok: topics match the source at seq {report.source_seq}")
    if not report.ok:
        if as_json:
            raise typer.Exit(3)
        moving = "" if report.source_seq == report.topics_seq else \
            f" (source at seq {report.source_seq}, topics at {report.topics_seq})"
        raise IntegrityError(f"Kafka topics differ from the source: {report.differences} row(s){moving}")


@app.command("status")
def status(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """How far the topics are behind the capture."""
    from tradevault import wiring

    info = wiring.kafka_sink(settings_for(ctx, config)).lag()
    if as_json:
        print_json(info)
        return
    stdout.print(f"kafka {info['bootstrap_servers']} ({info['topic_prefix']}): "
                 f"checkpoint seq {info['checkpoint_seq']}, source seq {info['source_seq']}, "
                 f"{info['behind_events']:,} events behind"
                 + (f"; last error: {info['last_error']}" if info["last_error"] else ""), markup=False)
