"""chatops.catalogue: action specs, tools, argument validation, approver policy (no network)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chatops.access import Principal
from chatops.catalogue import ActionSpec, ApproverPolicy, ApproverSpec, Catalogue
from connectors.actions.base import Approvers

ANA = Principal.of("ana@corp.example", ["sre", "engineering"], slack_user_id="UANA")
BEN = Principal.of("ben@corp.example", ["engineering"], slack_user_id="UBEN")
ZOE = Principal.of("zoe@corp.example", [], slack_user_id="UZOE")
NOBODY = Principal.unknown("UNOBODY")

RESTART_PARAMS = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "enum": ["billing", "search"]},
        "env": {"type": "string", "enum": ["staging", "production"]},
        "replicas": {"type": "integer", "minimum": 1},
    },
    "required": ["service", "env"],
    "additionalProperties": False,
}


class FakeConnector:
    """What Catalogue needs from a connector: ``idempotent`` and ``default_approvers``."""

    def __init__(self, idempotent: bool = True, approvers: Approvers | None = None):
        self.idempotent = idempotent
        self._approvers = approvers
        self.asked: list[dict] = []

    def default_approvers(self, arguments: dict) -> Approvers | None:
        self.asked.append(arguments)
        return self._approvers

    def execute(self, arguments, ctx):  # pragma: no cover - never called here
        raise AssertionError("the catalogue never executes anything")


def spec(name: str = "restart_service", **kw) -> ActionSpec:
    kw.setdefault("description", f"Do {name}.")
    kw.setdefault("kind", "fake")
    return ActionSpec.model_validate({"name": name, **kw})


def catalogue(*pairs: tuple[ActionSpec, FakeConnector]) -> Catalogue:
    return Catalogue([s for s, _ in pairs], {s.name: c for s, c in pairs})


def errors_of(exc: pytest.ExceptionInfo) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.value.errors()]


# -- ApproverSpec / ActionSpec validation ------------------------------------------------


def test_approver_spec_defaults_and_unknown_keys():
    assert ApproverSpec() == ApproverSpec(groups=[], users=[])
    assert ApproverSpec.model_validate({"groups": ["sre"]}).users == []
    with pytest.raises(ValidationError) as err:
        ApproverSpec.model_validate({"groups": ["sre"], "roles": ["admin"]})
    assert errors_of(err)[0][0] == "roles"
    with pytest.raises(ValidationError) as err:
        ApproverSpec.model_validate({"groups": "sre"})
    assert errors_of(err)[0][0] == "groups"


def test_action_spec_defaults():
    s = spec()
    assert s.parameters == {"type": "object", "properties": {}}
    assert s.approvers is None and s.requesters is None
    assert s.allow_self_approval is None and s.idempotent is None
    assert s.expires_after == 86400
    assert s.connector_settings == {}


def test_unknown_keys_are_the_connectors_settings():
    s = spec(url="https://hooks.example/x", secret_env="HOOK_SECRET", approvers={"groups": ["sre"]})
    assert s.connector_settings == {"url": "https://hooks.example/x", "secret_env": "HOOK_SECRET"}
    assert s.approvers == ApproverSpec(groups=["sre"])


@pytest.mark.parametrize("name", ["a", "restart_service", "Restart-Service_2", "x" * 64])
def test_good_names(name):
    assert spec(name).name == name


@pytest.mark.parametrize("name", ["", "1restart", "_restart", "-restart", "restart service", "restart.service",
                                  "restart/service", "x" * 65, "rëstart", "restart!"])
def test_bad_names_are_rejected(name):
    with pytest.raises(ValidationError) as err:
        spec(name)
    (where, msg), = errors_of(err)
    assert where == "name"
    assert "must start with a letter" in msg


def test_a_name_with_a_trailing_newline_is_rejected():
    with pytest.raises(ValidationError):
        spec("restart_service\n")


def test_required_fields():
    with pytest.raises(ValidationError) as err:
        ActionSpec.model_validate({"name": "x"})
    assert {where for where, _ in errors_of(err)} == {"description", "kind"}


@pytest.mark.parametrize("value", [0, -1])
def test_expires_after_must_be_positive(value):
    with pytest.raises(ValidationError) as err:
        spec(expires_after=value)
    assert errors_of(err)[0][0] == "expires_after"


@pytest.mark.parametrize("schema", [
    {"type": "array", "items": {"type": "string"}},
    {"type": "string"},
    {"properties": {"a": {"type": "string"}}},          # no type at all
    {"type": ["object", "null"]},
])
def test_parameters_must_be_an_object_schema(schema):
    with pytest.raises(ValidationError) as err:
        spec(parameters=schema)
    (where, msg), = errors_of(err)
    assert where == "parameters"
    assert "must be a JSON Schema of type 'object'" in msg


@pytest.mark.parametrize("schema", [
    {"type": "objekt"},
    {"type": "object", "properties": {"a": {"type": 5}}},
    {"type": "object", "required": "service"},
    {"type": "object", "additionalProperties": "no"},
])
def test_parameters_must_be_a_valid_json_schema(schema):
    with pytest.raises(ValidationError) as err:
        spec(parameters=schema)
    (where, msg), = errors_of(err)
    assert where == "parameters"
    assert "not a valid JSON Schema" in msg


def test_parameters_must_be_a_mapping():
    with pytest.raises(ValidationError) as err:
        spec(parameters=["service"])
    assert errors_of(err)[0][0] == "parameters"


def test_approvers_are_validated_inside_the_spec():
    with pytest.raises(ValidationError) as err:
        spec(approvers={"groups": "sre"})
    assert errors_of(err)[0][0] == "approvers.groups"
    with pytest.raises(ValidationError) as err:
        spec(approvers={"owners": ["x"]})
    assert errors_of(err)[0][0] == "approvers.owners"


# -- tools() and requesters --------------------------------------------------------------


def test_tools_are_openai_function_definitions():
    cat = catalogue((spec(parameters=RESTART_PARAMS, description="Restart one service."), FakeConnector()))
    assert cat.tools(BEN) == [{"type": "function", "function": {
        "name": "restart_service", "description": "Restart one service.", "parameters": RESTART_PARAMS}}]


def test_tools_filter_by_requesters():
    cat = catalogue(
        (spec("restart_service", requesters=["sre"]), FakeConnector()),
        (spec("clear_cache"), FakeConnector()),
        (spec("nobody_may", requesters=[]), FakeConnector()),
        (spec("eng_or_sre", requesters=["engineering", "sre"]), FakeConnector()),
    )
    names = lambda person: [t["function"]["name"] for t in cat.tools(person)]  # noqa: E731
    assert names(ANA) == ["restart_service", "clear_cache", "eng_or_sre"]
    assert names(BEN) == ["clear_cache", "eng_or_sre"]
    assert names(ZOE) == ["clear_cache"]
    assert [s.name for s in cat.requestable(BEN)] == ["clear_cache", "eng_or_sre"]


def test_an_unknown_person_may_request_nothing():
    cat = catalogue((spec("clear_cache"), FakeConnector()), (spec("x", requesters=["sre"]), FakeConnector()))
    assert cat.tools(NOBODY) == []
    assert not cat.may_request(cat.specs["clear_cache"], NOBODY)


def test_empty_catalogue():
    cat = Catalogue.empty()
    assert cat.tools(ANA) == [] and cat.specs == {}


# -- argument_errors ---------------------------------------------------------------------


@pytest.fixture
def restart():
    return catalogue((spec(parameters=RESTART_PARAMS), FakeConnector()))


def test_valid_arguments_have_no_errors(restart):
    assert restart.argument_errors("restart_service", {"service": "billing", "env": "staging"}) == []
    assert restart.argument_errors("restart_service", {"service": "search", "env": "production",
                                                       "replicas": 2}) == []


def test_unknown_action(restart):
    assert restart.argument_errors("teleport", {}) == ["there is no action called 'teleport'"]


@pytest.mark.parametrize("arguments", [None, [], "service=billing", 3])
def test_arguments_must_be_an_object(restart, arguments):
    assert restart.argument_errors("restart_service", arguments) == ["the arguments must be an object"]


def test_missing_required_property(restart):
    assert restart.argument_errors("restart_service", {"service": "billing"}) == [
        "'env' is a required property"]


def test_errors_name_the_field(restart):
    assert restart.argument_errors("restart_service", {"service": "payroll", "env": "staging"}) == [
        "service: 'payroll' is not one of ['billing', 'search']"]
    assert restart.argument_errors("restart_service", {"service": "billing", "env": "staging",
                                                       "replicas": 0}) == [
        "replicas: 0 is less than the minimum of 1"]


def test_additional_properties(restart):
    errors = restart.argument_errors("restart_service", {"service": "billing", "env": "staging", "force": True})
    assert errors == ["Additional properties are not allowed ('force' was unexpected)"]


def test_several_errors_all_reported_sorted_by_path(restart):
    errors = restart.argument_errors("restart_service", {"service": 1, "env": "dev", "replicas": "two"})
    assert len(errors) >= 3
    fields = [e.split(":", 1)[0] for e in errors]
    assert fields == sorted(fields)
    assert any(e.startswith("env: 'dev' is not one of") for e in errors)
    assert any(e.startswith("replicas: 'two' is not of type 'integer'") for e in errors)
    assert any(e.startswith("service: 1 is not of type 'string'") for e in errors)


def test_nested_paths_are_dotted():
    params = {"type": "object", "properties": {
        "targets": {"type": "array", "items": {"type": "object", "properties": {"host": {"type": "string"}}}}}}
    cat = catalogue((spec("deploy", parameters=params), FakeConnector()))
    assert cat.argument_errors("deploy", {"targets": [{"host": "a"}, {"host": 7}]}) == [
        "targets.1.host: 7 is not of type 'string'"]


# -- policy() ----------------------------------------------------------------------------


def test_configured_approvers():
    conn = FakeConnector(approvers=Approvers(groups=("owners",)))
    cat = catalogue((spec(approvers={"groups": ["sre", "oncall"], "users": ["Lead@Corp.Example"]}), conn))
    policy = cat.policy("restart_service", {"service": "billing"})
    assert policy == ApproverPolicy(groups=("sre", "oncall"), users=("lead@corp.example",),
                                    requester_alone=False, allow_self_approval=False)
    assert conn.asked == []  # the catalogue's approvers win; the connector is not asked
    assert policy.describe() == "group sre, group oncall, lead@corp.example"


def test_no_approvers_means_the_requester_alone_with_self_approval():
    cat = catalogue((spec("clear_cache"), FakeConnector(approvers=None)))
    policy = cat.policy("clear_cache", {})
    assert policy == ApproverPolicy((), (), requester_alone=True, allow_self_approval=True)
    assert policy.describe() == "the requester"


def test_connector_default_approvers_turn_self_approval_off():
    conn = FakeConnector(approvers=Approvers(users=("Owner1@Corp.Example", "owner2@corp.example")))
    cat = catalogue((spec("add_to_group"), conn))
    policy = cat.policy("add_to_group", {"group": "finance", "user": "ben@corp.example"})
    assert conn.asked == [{"group": "finance", "user": "ben@corp.example"}]
    assert policy.users == ("owner1@corp.example", "owner2@corp.example")
    assert policy.groups == () and not policy.requester_alone
    assert policy.allow_self_approval is False


def test_connector_default_approvers_may_be_nobody():
    cat = catalogue((spec("add_to_group"), FakeConnector(approvers=Approvers())))
    policy = cat.policy("add_to_group", {"group": "ghosts"})
    assert not policy.requester_alone and not policy.allow_self_approval
    assert policy.describe().startswith("nobody")


@pytest.mark.parametrize("allow, approvers, connector_default, expected", [
    (True, {"groups": ["sre"]}, None, True),              # configured approvers, explicitly allowed
    (False, {"groups": ["sre"]}, None, False),
    (True, None, Approvers(groups=("owners",)), True),   # connector default approvers, explicitly allowed
    (False, None, None, False),                          # requester alone, explicitly not allowed
    (True, None, None, True),
])
def test_explicit_allow_self_approval_overrides(allow, approvers, connector_default, expected):
    cat = catalogue((spec(approvers=approvers, allow_self_approval=allow), FakeConnector(approvers=connector_default)))
    assert cat.policy("restart_service", {}).allow_self_approval is expected


def test_policy_json_round_trip():
    policy = ApproverPolicy(("sre",), ("lead@corp.example",), False, True)
    data = policy.as_json()
    assert data == {"groups": ["sre"], "users": ["lead@corp.example"], "requester_alone": False}
    assert ApproverPolicy.from_json(data, True) == policy
    assert ApproverPolicy.from_json({}, False) == ApproverPolicy()


# -- idempotent() ------------------------------------------------------------------------


@pytest.mark.parametrize("connector_value, spec_value, expected", [
    (True, None, True),
    (False, None, False),
    (True, False, False),
    (False, True, True),
    (True, True, True),
    (False, False, False),
])
def test_idempotent_defaults_to_the_connector_and_the_spec_overrides(connector_value, spec_value, expected):
    cat = catalogue((spec(idempotent=spec_value), FakeConnector(idempotent=connector_value)))
    assert cat.idempotent("restart_service") is expected
