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


def test_errors_items_are_in_the_clients_language(api: Api, trader: dict[str, str], declaration_body: dict) -> None:
    """Each errors[] item's detail follows Accept-Language (pydantic's messages by type, ours through the catalog,
    the format hints too); pointer and code are the same in every language."""
    body = {**declaration_body, "transport": {**declaration_body["transport"], "expected_arrival": "28/11/2026"}}
    body["items"] = [{**declaration_body["items"][0], "hs_code": "1234"}]
    body["containers"] = [{**declaration_body["containers"][0], "number": "CSQU3054384"}]
    body["unexpected"] = 1
    answers = {
        lang: assert_problem(
            api.client.post(
                BASE, json=body, headers={**trader, "Idempotency-Key": str(uuid.uuid4()), "Accept-Language": lang}
            ),
            422,
        )
        for lang in ("en", "vi", "zh-CN")
    }
    shapes = {lang: [(e["pointer"], e["code"]) for e in a["errors"]] for lang, a in answers.items()}
    assert shapes["vi"] == shapes["en"] == shapes["zh-CN"]
    details = {lang: {e["pointer"]: e["detail"] for e in a["errors"]} for lang, a in answers.items()}
    codes = {e["pointer"]: e["code"] for e in answers["en"]["errors"]}
    assert codes["/unexpected"] == "unknown_field"
    assert details["en"]["/unexpected"] == "Extra inputs are not permitted"
    assert details["vi"]["/unexpected"] == "Không được gửi trường không có trong mẫu"
    assert details["zh-CN"]["/unexpected"] == "不允许提交未定义的字段"
    hs = next(p for p in codes if p.endswith("/hs_code"))
    assert details["en"][hs] == "HS code must be 8 digits (AHTN 2022)"
    assert details["vi"][hs] == "mã hs phải gồm 8 chữ số (AHTN 2022)"
    assert details["zh-CN"][hs] == "HS编码必须为 8 位数字（AHTN 2022）"
    container = next(p for p in codes if p.startswith("/containers/"))
    assert "ISO 6346" in details["vi"][container]
    assert "số kiểm tra" in details["vi"][container]
    assert "集装箱号校验位不符" in details["zh-CN"][container]
    # A date in another format: pydantic's words and our hint, both translated.
    declared = "/transport/expected_arrival"
    assert declared in codes, codes
    assert details["en"][declared].endswith("; expected ISO 8601 with offset, e.g. 2026-11-28T08:30:00+07:00")
    assert details["vi"][declared].startswith("Giá trị phải là ngày giờ hoặc ngày hợp lệ, năm có ký tự không hợp lệ")
    assert details["vi"][declared].endswith("; định dạng đúng: ISO 8601 kèm múi giờ, ví dụ 2026-11-28T08:30:00+07:00")
    assert details["zh-CN"][declared].startswith("取值应为有效的日期时间或日期，年份含有无效字符")
    assert "带时区偏移的 ISO 8601" in details["zh-CN"][declared]
    for lang in ("vi", "zh-CN"):
        assert all(details[lang][p] != details["en"][p] for p in codes), details[lang]


def test_malformed_json_says_line_and_column_in_vietnamese(api: Api, trader: dict[str, str]) -> None:
    headers = {**trader, "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    sent = b'{\n  "kind": "import",\n  "items": [}\n}'
    en = assert_problem(api.client.post(BASE, content=sent, headers=headers), 422)["errors"][0]
    vi = assert_problem(api.client.post(BASE, content=sent, headers={**headers, "Accept-Language": "vi"}), 422)
    item = vi["errors"][0]
    assert (item["pointer"], item["code"], item["line"], item["column"]) == ("", "json.invalid", en["line"],
                                                                           en["column"])  # fmt: skip
    assert en["detail"].startswith(f"invalid JSON at line {en['line']}, column {en['column']}: ")
    assert item["detail"].startswith(f"JSON không hợp lệ tại dòng {en['line']}, cột {en['column']}: ")
