"""Problems of the real API in the client's language: title and detail follow Accept-Language, the rest does not."""

from __future__ import annotations

import uuid

from tests.api.support import BASE, Api, assert_problem


def test_a_missing_declaration_in_each_language(api: Api, trader: dict[str, str]) -> None:
    url = f"{BASE}/{uuid.uuid4()}"
    english = assert_problem(api.client.get(url, headers=trader), 404)
    vi = assert_problem(api.client.get(url, headers={**trader, "Accept-Language": "vi-VN,vi;q=0.9"}), 404)
    zh = assert_problem(api.client.get(url, headers={**trader, "Accept-Language": "zh-CN"}), 404)
    ident = url.rsplit("/", 1)[-1]
    assert english["detail"] == f"declaration {ident} not found"
    assert (vi["title"], vi["detail"]) == ("Không tìm thấy", f"không tìm thấy tờ khai {ident}")
    assert (zh["title"], zh["detail"]) == ("未找到", f"未找到报关单 {ident}")
    for body in (vi, zh):
        assert {k: v for k, v in body.items() if k not in ("title", "detail")} == {
            k: v for k, v in english.items() if k not in ("title", "detail")
        }


def test_a_refused_transition_keeps_its_members(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader)
    url = f"{BASE}/{decl['id']}/cancel"
    assert api.client.post(url, json={"reason": "buyer withdrew"}, headers=trader).status_code == 200
    again = api.client.post(url, json={"reason": "twice"}, headers={**trader, "Accept-Language": "vi"})
    body = assert_problem(again, 409)
    assert again.headers["content-language"] == "vi"
    assert body["title"] == "Không được thực hiện thao tác ở trạng thái này"
    assert body["detail"].startswith("không thể thực hiện thao tác cancel với tờ khai ở trạng thái cancelled")
    assert body["type"].endswith("/illegal-transition")
    assert (body["current_status"], body["allowed_actions"]) == ("cancelled", [])


def test_validation_in_chinese_keeps_pointers_and_codes(api: Api, trader: dict[str, str]) -> None:
    decl = api.file(trader)
    refused = api.client.post(f"{BASE}/{decl['id']}/cancel", json={}, headers={**trader, "Accept-Language": "zh"})
    body = assert_problem(refused, 422)
    assert body["title"] == "数据校验未通过"
    assert body["detail"] == "请求中有 1 处错误"
    assert body["errors"][0]["pointer"] == "/reason"
    assert body["errors"][0]["code"] == "required"
