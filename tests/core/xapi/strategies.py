"""Hypothesis strategies for valid xAPI statements (shared by the formats and validation tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

tags = st.sampled_from(["en", "en-US", "en-GB", "de", "de-DE", "fr-CA", "zh-Hans-CN", "ja-JP", "und", "es-419"])
language_maps = st.dictionaries(tags, st.text(max_size=8), max_size=4)
iris = st.builds(lambda n: f"http://example.com/{n}", st.integers(0, 50))
names = st.text(min_size=1, max_size=8)

ifis = st.one_of(
    st.builds(lambda n: {"mbox": f"mailto:user{n}@example.com"}, st.integers(0, 20)),
    st.builds(lambda n: {"mbox_sha1sum": f"{n:040x}"}, st.integers(0, 2**60)),
    st.builds(lambda n: {"openid": f"http://openid.example.org/{n}"}, st.integers(0, 20)),
    st.builds(lambda n: {"account": {"homePage": "http://example.com", "name": str(n)}}, st.integers(0, 20)),
)


@st.composite
def agents(draw: Any, object_type: bool | None = None) -> dict:
    agent = dict(draw(ifis))
    if draw(st.booleans()):
        agent["name"] = draw(names)
    if object_type or (object_type is None and draw(st.booleans())):
        agent["objectType"] = "Agent"
    return agent


@st.composite
def groups(draw: Any) -> dict:
    group: dict = {"objectType": "Group"}
    if draw(st.booleans()):
        group["name"] = draw(names)
    identified = draw(st.booleans())
    if identified:
        group.update(draw(ifis))
    if not identified or draw(st.booleans()):
        group["member"] = draw(st.lists(agents(), min_size=0 if identified else 1, max_size=3))
    return group


components = st.lists(
    st.builds(lambda i, d: {"id": f"c{i}", "description": d}, st.integers(0, 9), language_maps),
    max_size=3,
    unique_by=lambda c: c["id"],
)


@st.composite
def activities(draw: Any) -> dict:
    activity: dict = {"id": draw(iris)}
    if draw(st.booleans()):
        activity["objectType"] = "Activity"
    if draw(st.booleans()):
        definition: dict = {}
        if draw(st.booleans()):
            definition["name"] = draw(language_maps)
        if draw(st.booleans()):
            definition["description"] = draw(language_maps)
        if draw(st.booleans()):
            definition["type"] = draw(iris)
        if draw(st.booleans()):
            definition["interactionType"] = "choice"
            definition["correctResponsesPattern"] = ["c1"]
            definition["choices"] = draw(components)
        activity["definition"] = definition
    return activity


verbs = st.builds(
    lambda i, d, with_display: {"id": i, "display": d} if with_display else {"id": i},
    iris,
    language_maps,
    st.booleans(),
)


@st.composite
def contexts(draw: Any) -> dict:
    context: dict = {}
    if draw(st.booleans()):
        context["instructor"] = draw(st.one_of(agents(), groups()))
    if draw(st.booleans()):
        context["team"] = draw(groups())
    if draw(st.booleans()):
        context["contextActivities"] = draw(
            st.dictionaries(
                st.sampled_from(["parent", "grouping", "category", "other"]),
                st.one_of(activities(), st.lists(activities(), max_size=2)),
                max_size=3,
            )
        )
    if draw(st.booleans()):
        context["language"] = draw(tags)
    return context


@st.composite
def cores(draw: Any, substatement: bool = False) -> dict:
    statement: dict = {"actor": draw(st.one_of(agents(), groups())), "verb": draw(verbs)}
    choices = [activities(), agents(object_type=True), groups()]
    if not substatement:
        choices.append(cores(substatement=True).map(lambda s: {"objectType": "SubStatement", **s}))
    statement["object"] = draw(st.one_of(*choices))
    if draw(st.booleans()):
        statement["context"] = draw(contexts())
    if draw(st.booleans()):
        statement["result"] = {"success": draw(st.booleans()), "duration": "PT1.5S"}
    return statement


@st.composite
def statements(draw: Any) -> dict:
    statement = draw(cores())
    if draw(st.booleans()):
        statement["authority"] = draw(agents())
    statement["id"] = "8f87ccde-bb56-4c2e-ab83-44982ef22df0"
    statement["timestamp"] = "2026-12-03T17:00:00.000Z"
    return statement


preferences = st.lists(tags, max_size=3)
