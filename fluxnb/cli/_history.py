"""``fluxnb replay / resume / diff / export / import``: commands on recorded runs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_history_commands(
    sub: Any,
    store_opt: Callable[[argparse.ArgumentParser], None],
    import_opt: Callable[[argparse.ArgumentParser], None],
) -> None:
    rp = sub.add_parser(
        "replay", help="re-execute a recorded run and check it; exit 0 identical, 1 diverged"
    )
    rp.add_argument("run", metavar="RUN_ID_OR_TRACE_FILE")
    store_opt(rp)
    import_opt(rp)
    rp.add_argument("--json", action="store_true", help="print the mismatches as JSON")

    rr = sub.add_parser("resume", help="continue a failed, cancelled or interrupted run")
    rr.add_argument("run", metavar="RUN_ID")
    store_opt(rr)
    import_opt(rr)
    rr.add_argument("--json", action="store_true", help="print the result as JSON")
    rr.add_argument("--force", action="store_true", help="even if it seems to be running")
    rr.add_argument(
        "--trust",
        action="store_true",
        help="unpickle recorded outputs this store did not sign: that runs their code, so "
        "only for a trace whose origin you trust",
    )

    df = sub.add_parser(
        "diff",
        help="compare two runs of a workflow step by step; exit 1 if they differ, "
        "2 if they ran different workflows",
    )
    df.add_argument("a", metavar="A")
    df.add_argument("b", metavar="B")
    store_opt(df)
    df.add_argument("--json", action="store_true", help="print the step table as JSON")

    ex = sub.add_parser("export", help="write a run's trace to a JSON or Parquet file")
    ex.add_argument("run", metavar="RUN_ID")
    ex.add_argument("--format", choices=["json", "parquet"], default="json")
    ex.add_argument("-o", "--output", help="file to write (default: RUN_ID.FORMAT)")
    store_opt(ex)

    im = sub.add_parser("import", help="load an exported trace file into the store")
    im.add_argument("file")
    store_opt(im)
    im.add_argument(
        "--trust",
        action="store_true",
        help="sign the trace's pickled outputs as this store's own, so resume and debug "
        "unpickle them (that runs their code: only for a trace whose origin you trust)",
    )


def _cli() -> Any:
    from .. import cli

    return cli


def _manifest_dir(args: argparse.Namespace) -> str:
    return str(Path.cwd() / "manifest.yaml")


def _cmd_replay(args: argparse.Namespace) -> int:
    cli = _cli()
    from ..engine import replay

    report = replay(args.run, cli._namespace(args.imports, _manifest_dir(args)), store=args.store)
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": report.run_id,
                    "identical": report.identical,
                    "mismatches": json.loads(report.mismatches.to_json(orient="records")),
                },
                indent=2,
            )
        )
    else:
        print(report)
        if not report.identical:
            cli._print_frame(report.mismatches, False)
    return cli.EXIT_OK if report.identical else cli.EXIT_FAILED


def _cmd_resume(args: argparse.Namespace) -> int:
    cli = _cli()
    from ..engine import resume
    from ..store import open_store

    ns = cli._namespace(args.imports, _manifest_dir(args))
    try:
        result = resume(
            args.run, ns, store=open_store(args.store), force=args.force, trust=args.trust
        )
    except KeyboardInterrupt as exc:
        return int(cli._interrupted(exc, args.json))
    cli._print_result(result, args.json)
    cli._load_into_file(open_store(args.store).path, result)
    return int(cli._exit_code(result))  # 6 when its rows could not all be recorded


def _cmd_diff(args: argparse.Namespace) -> int:
    cli = _cli()
    from ..engine import diff

    report = diff(args.a, args.b, store=args.store)
    if not report.same_workflow:
        cli._error(
            f"{report.a} is a run of '{report.workflow_a}', {report.b} of "
            f"'{report.workflow_b}': different workflows; diff compares two runs of one "
            "workflow (fluxnb.diff() in Python compares them by step name anyway)"
        )
        return cli.EXIT_INVALID
    if args.json:
        print(report.steps.to_json(orient="records"))
    else:
        print(report)
        cli._print_frame(report.steps, False)
    return cli.EXIT_OK if report.same else cli.EXIT_FAILED


def _cmd_export(args: argparse.Namespace) -> int:
    cli = _cli()
    from ..engine import export_trace

    out = export_trace(
        args.run, args.output or f"{args.run}.{args.format}", args.format, store=args.store
    )
    print(f"wrote {out}")
    return cli.EXIT_OK


def _cmd_import(args: argparse.Namespace) -> int:
    cli = _cli()
    from ..engine import import_trace
    from ..store import open_store

    run_id = import_trace(args.file, store=args.store, trust=args.trust)
    print(f"imported run {run_id} into {open_store(args.store).path}")
    return cli.EXIT_OK


HISTORY_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "replay": _cmd_replay,
    "resume": _cmd_resume,
    "diff": _cmd_diff,
    "export": _cmd_export,
    "import": _cmd_import,
}
