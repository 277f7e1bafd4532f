"""schema/velocity.schema.json, examples/ and Tests/fixtures/ agree with `velocity validate` and a running server."""

import json
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from velocity import ROOT, binary, free_port

SCHEMA = json.loads((ROOT / "schema" / "velocity.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
FIXTURES = ROOT / "Tests" / "fixtures"
# The token whose digest examples/admin-auth.json holds (docs/config.md).
EXAMPLE_TOKEN = "change-me-example-token"


def load(path: Path):
    return json.loads(path.read_text())


def fixture_cases(folder: str) -> list:
    expected = load(FIXTURES / folder / "expected.json")
    return [pytest.param(FIXTURES / folder / name, pointer, id=name) for name, pointer in sorted(expected.items())]


def pointer(tokens) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def error_pointer(error) -> str:
    """The JSON Pointer `velocity validate` names for a schema error: the offending member, not its object."""
    tokens = list(error.absolute_path)
    if error.validator == "additionalProperties":
        tokens.append(min(set(error.instance) - set(error.schema.get("properties", {}))))
    elif "propertyNames" in error.absolute_schema_path:
        tokens.append(error.instance)
    return pointer(tokens)


def velocity_validate(path: Path) -> tuple[int, dict]:
    result = subprocess.run([binary(), "validate", "--json", str(path)], capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout)


def test_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("folder", ["invalid", "semantic-invalid"])
def test_every_fixture_has_an_expected_pointer(folder):
    files = {path.name for path in (FIXTURES / folder).glob("*.json")} - {"expected.json"}
    assert files == set(load(FIXTURES / folder / "expected.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_is_valid(path):
    VALIDATOR.validate(load(path))
    assert velocity_validate(path) == (0, {"valid": True})


@pytest.mark.parametrize(("path", "expected"), fixture_cases("invalid"))
def test_invalid_fixture_is_rejected_by_schema_and_velocity(path, expected):
    error = best_match(VALIDATOR.iter_errors(load(path)))
    assert error is not None, "the schema accepts it"
    assert error_pointer(error) == expected, error.message
    code, result = velocity_validate(path)
    assert (code, result["valid"], result["pointer"]) == (1, False, expected), result


@pytest.mark.parametrize(("path", "expected"), fixture_cases("semantic-invalid"))
def test_semantic_fixture_passes_schema_but_not_velocity(path, expected):
    VALIDATOR.validate(load(path))
    code, result = velocity_validate(path)
    assert (code, result["valid"], result["pointer"]) == (1, False, expected), result


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_loads_into_running_server(server, path):
    config = load(path)
    for listener in config.get("listeners", []):
        listener["address"] = f"127.0.0.1:{free_port()}"
    response = server.api("POST", "/load", config)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    stored = server.api("GET", "/config/", headers={"Authorization": f"Bearer {EXAMPLE_TOKEN}"})
    assert stored.json() == config
