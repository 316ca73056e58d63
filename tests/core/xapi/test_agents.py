"""Agents: canonical IFI keys, the `agent` parameter, the Agents resource's Person object; versions."""

from __future__ import annotations

import json

import pytest

from appliance.core.xapi.agents import agent_ifi, agent_ifis, parse_agent_param, person_object
from appliance.core.xapi.statement_errors import StatementError
from appliance.core.xapi.versions import ABOUT_VERSIONS, SUPPORTED, V1, V2, negotiate


@pytest.mark.parametrize(
    ("agent", "key"),
    [
        ({"mbox": "mailto:xapi@adlnet.gov"}, "mbox:mailto:xapi@adlnet.gov"),
        ({"mbox": "MAILTO:xapi@adlnet.gov", "name": "x"}, "mbox:mailto:xapi@adlnet.gov"),
        ({"objectType": "Group", "mbox": "mailto:g@example.com", "member": []}, "mbox:mailto:g@example.com"),
        (
            {"mbox_sha1sum": "CD9B00A5611F94EAA7B1661EDAB976068E364975"},
            "mbox_sha1sum:cd9b00a5611f94eaa7b1661edab976068e364975",
        ),
        ({"openid": "http://openid.example.org/12345"}, "openid:http://openid.example.org/12345"),
        (
            {"account": {"name": "xAPI account name", "homePage": "http://www.example.com"}},
            "account:http://www.example.com xAPI account name",
        ),
    ],
)
def test_agent_ifi(agent: dict, key: str) -> None:
    assert agent_ifi(agent) == key


def test_the_same_agent_whatever_its_name_and_the_kinds_never_collide() -> None:
    assert agent_ifi({"mbox": "mailto:a@example.com", "name": "A"}) == agent_ifi({"mbox": "mailto:a@example.com"})
    keys = {
        agent_ifi({"mbox": "mailto:a@example.com"}),
        agent_ifi({"openid": "mailto:a@example.com"}),
        agent_ifi({"account": {"homePage": "http://a.example.com", "name": "b"}}),
        agent_ifi({"account": {"homePage": "http://a.example.com/b", "name": ""}}),
        agent_ifi({"account": {"homePage": "http://a.example.com", "name": "b "}}),
    }
    assert len(keys) == 5


def test_anonymous_group_has_no_ifi_but_its_members_do() -> None:
    group = {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}, {"openid": "http://o.example/b"}]}
    with pytest.raises(StatementError):
        agent_ifi(group)
    assert agent_ifis(group) == ["mbox:mailto:a@example.com", "openid:http://o.example/b"]
    identified = {"objectType": "Group", "mbox": "mailto:g@example.com", "member": [{"mbox": "mailto:a@example.com"}]}
    assert agent_ifis(identified) == ["mbox:mailto:g@example.com", "mbox:mailto:a@example.com"]
    assert agent_ifis({"mbox": "mailto:a@example.com"}) == ["mbox:mailto:a@example.com"]


@pytest.mark.parametrize(
    "agent",
    [
        {"mbox": "mailto:xapi@adlnet.gov"},
        {"objectType": "Agent", "name": "xAPI", "account": {"homePage": "http://www.example.com", "name": "n"}},
        {"objectType": "Group", "mbox": "mailto:g@example.com"},
        {"objectType": "Group", "openid": "http://o.example.org/g", "member": [{"mbox": "mailto:a@example.com"}]},
    ],
)
def test_parse_agent_param_accepts(agent: dict) -> None:
    assert parse_agent_param(json.dumps(agent)) == agent


@pytest.mark.parametrize(
    "text",
    [
        "wrong",
        "",
        "[]",
        '"mailto:a@example.com"',
        "{}",
        '{"name": "no ifi"}',
        '{"mbox": "a@example.com"}',
        '{"mbox": "mailto:a@example.com", "openid": "http://o.example.org/1"}',
        '{"mbox": "mailto:a@example.com", "extra": 1}',
        '{"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}]}',
        '{"objectType": "Group", "mbox": "mailto:g@example.com", "member": [{"name": "x"}]}',
        '{"objectType": "Person", "mbox": "mailto:a@example.com"}',
    ],
)
def test_parse_agent_param_refuses(text: str) -> None:
    """Data 2.2 (XAPI-00012): a parameter that is not a valid Agent is the client's 400."""
    with pytest.raises(StatementError) as info:
        parse_agent_param(text)
    assert info.value.path.startswith("agent")


def test_documents_take_agents_only() -> None:
    group = json.dumps({"objectType": "Group", "mbox": "mailto:g@example.com"})
    with pytest.raises(StatementError) as info:
        parse_agent_param(group, allow_group=False)
    assert info.value.path == "agent.objectType"


def test_person_object_gathers_every_name_and_ifi_once() -> None:
    person = person_object(
        [
            {"objectType": "Agent", "name": "Ann", "mbox": "mailto:ann@example.com"},
            {"name": "Ann B.", "mbox": "mailto:ann@example.com"},
            {"name": "Ann", "account": {"homePage": "http://lms.example.com", "name": "ann"}},
            {"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"},
            {"openid": "http://openid.example.org/ann"},
            {"account": {"homePage": "http://lms.example.com", "name": "ann"}},
        ]
    )
    assert person == {
        "objectType": "Person",
        "name": ["Ann", "Ann B."],
        "mbox": ["mailto:ann@example.com"],
        "mbox_sha1sum": ["cd9b00a5611f94eaa7b1661edab976068e364975"],
        "openid": ["http://openid.example.org/ann"],
        "account": [{"homePage": "http://lms.example.com", "name": "ann"}],
    }


def test_person_object_of_one_agent_holds_only_what_it_says() -> None:
    """XAPI-00247: with nothing more known, the Person is the requested Agent's information."""
    assert person_object([{"openid": "http://openid.example.org/x"}]) == {
        "objectType": "Person",
        "openid": ["http://openid.example.org/x"],
    }


@pytest.mark.parametrize(
    ("header", "version"),
    [
        ("1.0", V1),
        ("1.0.0", V1),
        ("1.0.1", V1),
        ("1.0.2", V1),
        ("1.0.3", V1),
        (" 1.0.3 ", V1),
        ("2.0", V2),
        ("2.0.0", V2),
        (None, None),
        ("", None),
        ("0.95", None),
        ("0.9", None),
        ("1", None),
        ("1.1.0", None),
        ("2.1", None),
        ("3.0.0", None),
        ("1.0.3x", None),
        ("v1.0.3", None),
    ],
)
def test_negotiate(header: str | None, version: str | None) -> None:
    assert negotiate(header) == version


def test_version_constants() -> None:
    assert SUPPORTED == ("1.0.3", "2.0.0")
    assert set(SUPPORTED) <= set(ABOUT_VERSIONS)
