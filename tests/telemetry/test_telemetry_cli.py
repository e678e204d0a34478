"""--console-traces and --otlp-endpoint on the example supervisor and ``agentkit run``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from otlp_receiver import OtlpReceiver

from agentkit.cli import run_cmd
from agentkit.telemetry import Telemetry, add_telemetry_options, telemetry_from_args

ROOT = Path(__file__).resolve().parents[2]


def _example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    name = "agentkit_example_supervisor"
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "supervisor.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_example_sends_runs_to_otlp_endpoint(
    tmp_path: Path, otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(var, raising=False)
    example = _example(monkeypatch)
    rc = example.main(
        [
            "--users",
            "2",
            "--store",
            f"sqlite:///{tmp_path / 'ex.db'}",
            "--key-file",
            str(tmp_path / "ex.key"),
            "--otlp-endpoint",
            otlp_receiver.endpoint,
        ]
    )
    assert rc == 0
    spans = list(otlp_receiver.spans())
    workflows = [s for _, _, s in spans if s.name.startswith("invoke_workflow ")]
    assert len(workflows) == 2
    assert {res["service.name"] for res, _, _ in spans} == {"agentkit-example"}
    names = {m.name for _, _, m in otlp_receiver.metrics()}
    assert "gen_ai.invoke_agent.duration" in names and "agentkit.runs" in names


def test_cli_run_console_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "run",
            "triage",
            "--user",
            "demo-user",
            "--store",
            f"sqlite:///{tmp_path / 'cli.db'}",
            "--agents-path",
            str(ROOT / "agents"),
            "--console-traces",
        ]
    )
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert '"name": "invoke_workflow triage"' in err
    assert '"name": "invoke_agent triage"' in err
    assert "demo-user" not in err  # spans carry the user hash only


def test_no_flags_means_noop() -> None:
    parser = argparse.ArgumentParser()
    add_telemetry_options(parser)
    args = parser.parse_args([])
    with telemetry_from_args(args, service_name="x", environ={}) as tel:
        assert tel is Telemetry.noop()
    args = parser.parse_args(["--console-traces"])
    with telemetry_from_args(args, service_name="x", environ={}) as tel:
        assert tel.enabled


def test_endpoint_variable_turns_export_on(otlp_receiver: OtlpReceiver) -> None:
    parser = argparse.ArgumentParser()
    add_telemetry_options(parser)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint, "OTEL_SERVICE_NAME": "svc-env"}
    args = parser.parse_args([])
    with (
        telemetry_from_args(args, service_name="x", environ=env) as tel,
        tel.workflow_span("p", run_id="r", user_hash="h"),
    ):
        pass
    resources = [json.dumps(res) for res, _, _ in otlp_receiver.spans()]
    assert resources and all('"service.name": "svc-env"' in r for r in resources)
