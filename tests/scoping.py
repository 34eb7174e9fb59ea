"""The office-scoping attack matrix, reusable by every module's tests.

For one office-owned record of office B and one of office A, a user of office A
must get 404 on every door for B's record (web list/show/edit/delete/action/
action_post, REST get/put/delete/list) and nothing of B's may change, while the
same doors work for A's record (so the test fails when scoping is too strict
to mean anything, too).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScopedCase:
    view: str  # web route base, e.g. "/officedocumenttypeview"
    api: str  # REST route base, e.g. "/api/v1/office_document_type"
    action: str  # an @action name of the view
    put_body: dict = field(default_factory=dict)
    edit_form: dict = field(default_factory=dict)
    list_marker: str = ""  # text that identifies the foreign row in list HTML/JSON
    rest_delete: bool = True  # False: the API has no DELETE (then 405 is fine too)


def assert_foreign_record_is_404(web, rest, headers, case: ScopedCase, foreign_pk: int) -> None:
    r = web.get(f"{case.view}/show/{foreign_pk}")
    assert r.status_code == 404, "web show"
    assert web.get(f"{case.view}/edit/{foreign_pk}").status_code == 404, "web edit GET"
    assert web.post(f"{case.view}/edit/{foreign_pk}", data=case.edit_form).status_code == 404, \
        "web edit POST"
    assert web.post(f"{case.view}/delete/{foreign_pk}").status_code == 404, "web delete"
    assert web.post(f"{case.view}/action/{case.action}/{foreign_pk}").status_code == 404, \
        "web action"
    r = web.post(f"{case.view}/action_post", data={"action": case.action, "rowid": [foreign_pk]})
    assert r.status_code == 404, "web action_post"
    assert rest.get(f"{case.api}/{foreign_pk}", headers=headers).status_code == 404, "REST get"
    assert rest.put(f"{case.api}/{foreign_pk}", json=case.put_body,
                    headers=headers).status_code == 404, "REST put"
    deleted = rest.delete(f"{case.api}/{foreign_pk}", headers=headers).status_code
    assert deleted == 404 or (not case.rest_delete and deleted == 405), "REST delete"
    listed = rest.get(f"{case.api}/?q=(page_size:100)", headers=headers).get_json()["result"]
    assert foreign_pk not in {row["id"] for row in listed}, "REST list"
    html = web.get(f"{case.view}/list/?psize_{case.view.strip('/').title()}=100").get_data(
        as_text=True)
    if case.list_marker:
        assert case.list_marker not in html, "web list"


def assert_own_record_is_reachable(web, rest, headers, case: ScopedCase, own_pk: int) -> None:
    assert web.get(f"{case.view}/show/{own_pk}").status_code == 200
    assert web.get(f"{case.view}/edit/{own_pk}").status_code == 200
    assert rest.get(f"{case.api}/{own_pk}", headers=headers).status_code == 200
    r = web.post(f"{case.view}/action/{case.action}/{own_pk}")
    assert r.status_code == 302, "own action redirects back"
