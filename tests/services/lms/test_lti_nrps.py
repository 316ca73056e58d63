"""appliance.services.lms.lti.nrps's reading of the platform's paging headers (RFC 8288 `Link`, NRPS 2.0 §2.4.2)."""

from __future__ import annotations

from appliance.services.lms.lti.nrps import next_link


def test_the_next_page_is_the_link_whose_rel_says_next() -> None:
    assert next_link(['<https://lms.example/m?p=2>; rel="next"']) == "https://lms.example/m?p=2"
    both = '<https://lms.example/m?since=9>; rel="differences", <https://lms.example/m?p=3>; rel=next'
    assert next_link([both]) == "https://lms.example/m?p=3"
    assert next_link(
        ['<https://lms.example/a>; rel="prev"', '<https://lms.example/b>; title="x"; rel="next last"']
    ) == ("https://lms.example/b")


def test_no_next_link_is_the_last_page() -> None:
    assert next_link([]) is None
    assert next_link(['<https://lms.example/m?since=9>; rel="differences"']) is None
    assert next_link(["not a link header"]) is None
