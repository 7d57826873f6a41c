"""The AsyncAPI document, generated from the event models, is valid for the AsyncAPI project's
own parser (@asyncapi/parser from npm, installed into the cache by `bangkom setup`), and names
every event type on the channel of its stream."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.local.tools import asyncapi_parser_dir, install_command
from shared.asyncapi import document
from shared.events import EVENT_TYPES

VALIDATE = Path(__file__).with_name("validate_asyncapi.cjs")


def parse(doc: dict, tmp_path: Path) -> tuple[int, dict]:
    if not shutil.which("node"):
        pytest.fail(f"node is not installed: {install_command(['nodejs', 'npm'])} (as root)")
    parser = asyncapi_parser_dir()
    assert (parser / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        f"no AsyncAPI parser in {parser}: run `bangkom setup`"
    file = tmp_path / "asyncapi.json"
    file.write_text(json.dumps(doc))
    done = subprocess.run(["node", str(VALIDATE), str(parser), str(file)], capture_output=True,
                          text=True, timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout.splitlines()[-1])


def test_the_generated_document_is_valid_asyncapi_with_every_message(tmp_path):
    code, report = parse(document(), tmp_path)
    errors = [d for d in report["diagnostics"] if d["severity"] == 0]
    assert code == 0 and errors == [], report
    assert report["messages"] == len(EVENT_TYPES) and report["channels"] == 4  # enrollment, sessions, insights, heartbeat


def test_the_parser_refuses_a_broken_document(tmp_path):
    broken = document()
    first = next(iter(broken["components"]["messages"].values()))
    first["payload"] = {"$ref": "#/components/schemas/nothing-here"}
    code, report = parse(broken, tmp_path)
    assert code != 0 and any(d["severity"] == 0 for d in report["diagnostics"])


def test_each_event_type_is_a_message_of_its_streams_channel():
    doc = document()
    for type_, model in EVENT_TYPES.items():
        channel = doc["channels"][model.STREAM]
        assert channel["address"] == f"bangkom.{{city}}.{model.STREAM}"
        names = [doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
                 for ref in channel["messages"].values()]
        assert type_ in names
