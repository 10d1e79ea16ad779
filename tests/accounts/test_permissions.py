"""Who may do what (`backend/accounts/permissions.py`): every action against every role, the
relations some actions hold to their target, and, over HTTP, each kind of refusal answering
the code it always has (and audited)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.permissions import RULES, Action, may, require, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import SCOPE_OF_ROLE, Role, ScopeKind
from backend.accounts.scope import Scope
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.errors import Forbidden
from backend.openapi import error_codes
from backend.records.campaign_regions import SETTERS
from tests.factories import World, bearer, build_world, login, make_account, open_campaign

# ✓ may; · refused, with the code on the right. One column per role, in rank order: parent,
# teacher, registrar, school leader, county reviewer, city admin, province admin, sysadmin.
TABLE = """
action                    par tea reg lea cou cit pro sys   refused with
use_staff_api               ·   ✓   ✓   ✓   ✓   ✓   ✓   ✓   forbidden
use_parent_api              ✓   ·   ·   ·   ·   ·   ·   ·   parents_only
import_records              ·   ·   ✓   ·   ✓   ✓   ✓   ·   forbidden
issue_forms                 ·   ·   ✓   ·   ·   ·   ·   ·   registrar_only
read_printed_form           ·   ·   ✓   ✓   ✓   ✓   ✓   ·   reveal_forbidden
reveal_student              ·   ·   ✓   ✓   ✓   ✓   ✓   ·   reveal_forbidden
search_by_identifier        ·   ·   ✓   ✓   ✓   ✓   ✓   ✓   identifier_search_forbidden
open_campaign               ·   ·   ·   ·   ·   ·   ✓   ✓   campaign_province_only
change_campaign             ·   ·   ·   ·   ·   ·   ✓   ✓   campaign_province_only
set_campaign_region         ·   ·   ·   ·   ·   ✓   ✓   ✓   campaign_county_cannot_set
link_child                  ✓   ·   ·   ·   ·   ·   ·   ·   parents_only
upload_photo                ✓   ✓   ✓   ·   ·   ·   ·   ·   uploaders_only
decide_correction_draft     ·   ✓   ✓   ·   ·   ·   ·   ·   teachers_only
list_guardian_links         ·   ✓   ✓   ·   ·   ·   ·   ·   link_deciders_only
decide_guardian_link        ·   ✓   ✓   ·   ·   ·   ·   ·   link_deciders_only
decide_review_step          ·   ✓   ✓   ✓   ✓   ✓   ✓   ✓   reviewers_only
create_change_request       ·   ·   ✓   ·   ·   ·   ·   ·   registrars_only
transcribe_correction       ·   ✓   ✓   ·   ·   ·   ·   ·   teachers_only
approve_in_bulk             ·   ·   ·   ✓   ·   ·   ·   ·   leaders_only
start_status_change         ·   ·   ✓   ·   ·   ·   ·   ·   status_change_registrar_only
apply_for_status_change     ✓   ·   ·   ·   ·   ·   ·   ·   parents_only
read_problem_cases          ·   ✓   ✓   ✓   ✓   ✓   ✓   ✓   forbidden
act_on_problem              ·   ·   ✓   ·   ·   ·   ·   ·   problem_registrar_only
import_problem_list         ·   ·   ·   ·   ✓   ✓   ✓   ·   authorities_only
arbitrate_problem           ·   ·   ·   ·   ·   ·   ·   ✓   national_only
ask_question                ✓   ·   ·   ·   ·   ·   ·   ·   parents_only
answer_thread               ·   ✓   ✓   ·   ✓   ✓   ✓   ·   answerers_only
pass_thread_up              ·   ✓   ✓   ·   ·   ·   ·   ·   school_desk_only
manage_canned_answers       ·   ·   ✓   ·   ·   ·   ·   ·   registrars_only
mark_class_roll             ·   ✓   ✓   ·   ·   ·   ·   ·   roll_markers_only
decide_roll_entry           ·   ·   ✓   ·   ·   ·   ·   ·   roll_registrar_only
upload_id_proof             ·   ·   ✓   ·   ·   ·   ·   ·   proof_registrar_only
set_field_controls          ·   ·   ·   ·   ·   ·   ✓   ✓   controls_province_only
set_change_rules            ·   ·   ·   ·   ·   ·   ✓   ✓   change_rules_province_only
search_school_directory     ✓   ·   ·   ·   ·   ·   ·   ·   parents_only
create_account              ·   ·   ✓   ·   ✓   ✓   ✓   ✓   forbidden
change_account_status       ·   ·   ✓   ·   ✓   ✓   ✓   ✓   forbidden
reset_password              ·   ·   ✓   ·   ✓   ✓   ✓   ✓   forbidden
create_campaign_account     ·   ·   ·   ·   ✓   ✓   ✓   ✓   campaign_accounts_forbidden
list_schools_not_started    ·   ·   ·   ·   ✓   ✓   ✓   ✓   progress_authorities_only
read_push_attempts          ·   ·   ✓   ·   ✓   ✓   ✓   ✓   forbidden
use_notifications           ✓   ✓   ✓   ✓   ✓   ✓   ✓   ✓   forbidden
register_webhook            ·   ✓   ✓   ✓   ✓   ✓   ✓   ✓   webhook_staff_only
reset_second_factor         ·   ·   ✓   ·   ✓   ✓   ✓   ✓   forbidden
export_reports              ·   ·   ✓   ✓   ✓   ✓   ✓   ·   export_forbidden
record_export_approval      ·   ·   ·   ·   ✓   ✓   ✓   ·   export_admins_only
confirm_export_approval     ·   ·   ·   ·   ✓   ✓   ✓   ·   export_admins_only
export_student_records      ·   ·   ·   ·   ✓   ✓   ✓   ·   export_admins_only
read_progress               ·   ✓   ✓   ✓   ✓   ✓   ✓   ✓   progress_staff_only
tick_paper_return           ·   ✓   ✓   ·   ·   ·   ·   ·   paper_return_desk_only
read_transfer_bulletin      ·   ·   ✓   ✓   ✓   ✓   ✓   ✓   bulletin_staff_only
request_support_grant       ·   ·   ·   ·   ·   ·   ·   ✓   support_sysadmin_only
decide_support_grant        ·   ·   ·   ·   ✓   ✓   ✓   ·   support_region_admins_only
list_support_grants         ·   ·   ·   ·   ✓   ✓   ✓   ✓   support_region_admins_only
"""
COLUMNS = list(Role)  # parent … sysadmin: the table's columns, in the same order


def _rows() -> dict[str, tuple[dict[Role, bool], str]]:
    header, *lines = TABLE.strip().splitlines()
    assert header.split()[1:9] == ["par", "tea", "reg", "lea", "cou", "cit", "pro", "sys"]
    rows = {}
    for line in lines:
        action, *marks, code = line.split()
        assert len(marks) == len(COLUMNS), line
        rows[action] = (
            {role: mark == "✓" for role, mark in zip(COLUMNS, marks, strict=True)},
            code,
        )
    return rows


ROWS = _rows()


def principal(role: Role, region_code: str | None = None) -> Principal:
    return Principal(
        account_id=1,
        role=role,
        name=role.value,
        phone="13800000000",
        scope=Scope(SCOPE_OF_ROLE[role][0], region_code=region_code),
        session_id=uuid.uuid4(),
        password_change_required=False,
    )


def test_every_action_has_a_row_and_every_row_an_action() -> None:
    assert set(ROWS) == {a.value for a in Action}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_who_may_take_each_action(action: Action, role: Role) -> None:
    allowed, code = ROWS[action.value]
    caller = principal(role)

    assert may(caller, action) is allowed[role]
    if allowed[role]:
        require(caller, action)
    else:
        with pytest.raises(Forbidden) as refused:
            require(caller, action)
        assert refused.value.code == code
        assert refused.value.status == 403
        assert refused.value.message  # a Chinese sentence, never empty


def test_only_the_actions_with_a_target_have_a_relation() -> None:
    with_relation = {a for a, rule in RULES.items() if rule.relation is not None}
    assert with_relation == {
        Action.change_campaign,
        Action.set_campaign_region,
        Action.create_account,
        Action.change_account_status,
        Action.set_field_controls,
        Action.set_change_rules,
        Action.reset_second_factor,
        Action.reset_password,
        Action.create_campaign_account,
        Action.record_export_approval,
    }


def test_every_role_that_may_set_a_region_says_whose_word_it_is() -> None:
    assert set(SETTERS) == set(RULES[Action.set_campaign_region].roles)


# (action, caller's role, caller's region, target, holds) — code when refused: the relation's.
RELATIONS: list[tuple[Action, Role, str | None, Any, bool]] = [
    # A campaign is changed from its own region or above.
    (Action.change_campaign, Role.province_admin, "330000", "330000", True),
    (Action.change_campaign, Role.province_admin, "330000", "330106", True),
    (Action.change_campaign, Role.province_admin, "330000", "320000", False),
    (Action.change_campaign, Role.sysadmin, None, "320000", True),
    # A sub-region's setting is set from above it, and never for a province.
    (Action.set_campaign_region, Role.province_admin, "330000", "330100", True),
    (Action.set_campaign_region, Role.province_admin, "330000", "330106", True),
    (Action.set_campaign_region, Role.province_admin, "330000", "330000", False),
    (Action.set_campaign_region, Role.city_admin, "330100", "330106", True),
    (Action.set_campaign_region, Role.city_admin, "330100", "330100", False),
    (Action.set_campaign_region, Role.sysadmin, None, "330100", True),
    (Action.set_campaign_region, Role.sysadmin, None, "320000", False),
    # An account admin makes staff of a lower rank, and changes the status of any lower rank.
    (Action.create_account, Role.registrar, "330106", Role.teacher, True),
    (Action.create_account, Role.registrar, "330106", Role.registrar, False),
    (Action.create_account, Role.registrar, "330106", Role.school_leader, False),
    (Action.create_account, Role.registrar, "330106", Role.parent, False),
    (Action.create_account, Role.city_admin, "330100", Role.county_reviewer, True),
    (Action.create_account, Role.city_admin, "330100", Role.city_admin, False),
    (Action.create_account, Role.sysadmin, None, Role.province_admin, True),
    (Action.create_account, Role.sysadmin, None, Role.sysadmin, False),
    (Action.change_account_status, Role.registrar, "330106", Role.parent, True),
    (Action.change_account_status, Role.registrar, "330106", Role.teacher, True),
    (Action.change_account_status, Role.registrar, "330106", Role.school_leader, False),
    (Action.change_account_status, Role.county_reviewer, "330106", Role.school_leader, True),
    # A lost second factor is reset by a staff admin of a higher rank.
    (Action.reset_second_factor, Role.county_reviewer, "330106", Role.registrar, True),
    (Action.reset_second_factor, Role.county_reviewer, "330106", Role.county_reviewer, False),
    (Action.reset_second_factor, Role.registrar, "330106", Role.school_leader, False),
    (Action.reset_second_factor, Role.registrar, "330106", Role.parent, False),
    # A province sets its own controlled fields.
    (Action.set_field_controls, Role.province_admin, "330000", "330000", True),
    (Action.set_field_controls, Role.province_admin, "330000", "320000", False),
    (Action.set_field_controls, Role.sysadmin, None, "320000", True),
    (Action.set_change_rules, Role.province_admin, "330000", "330000", True),
    (Action.set_change_rules, Role.province_admin, "330000", "320000", False),
    (Action.set_change_rules, Role.sysadmin, None, "320000", True),
    # An authorising document is recorded for the admin's own region or one inside it.
    (Action.record_export_approval, Role.county_reviewer, "330106", "330106", True),
    (Action.record_export_approval, Role.county_reviewer, "330106", "330108", False),
    (Action.record_export_approval, Role.city_admin, "330100", "330106", True),
    (Action.record_export_approval, Role.city_admin, "330100", "330000", False),
]
RELATION_CODES = {
    Action.change_campaign: "campaign_above_scope",
    Action.set_campaign_region: "campaign_setting_not_below",
    Action.create_account: "rank_too_high",
    Action.change_account_status: "rank_too_high",
    Action.set_field_controls: "controls_other_province",
    Action.set_change_rules: "change_rules_other_province",
    Action.reset_second_factor: "rank_too_high",
    Action.record_export_approval: "approval_outside_scope",
}


@pytest.mark.parametrize(("action", "role", "region", "target", "holds"), RELATIONS)
def test_the_relation_to_the_target(
    action: Action, role: Role, region: str | None, target: Any, holds: bool
) -> None:
    caller = principal(role, region)
    if holds:
        require_over(caller, action, target)
    else:
        with pytest.raises(Forbidden) as refused:
            require_over(caller, action, target)
        assert refused.value.code == RELATION_CODES[action]


def test_the_role_is_refused_before_the_relation_is_looked_at() -> None:
    with pytest.raises(Forbidden) as refused:
        require_over(principal(Role.county_reviewer, "330106"), Action.change_campaign, "330106")
    assert refused.value.code == "campaign_province_only"


# ---- over HTTP: each kind of refusal answers its code, and the 403 is audited --------------

SYSADMIN_OF_HANGZHOU = "13800008888"  # a sysadmin holding a city, not the nation


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    account = await make_account(
        settings, Role.sysadmin, SYSADMIN_OF_HANGZHOU, region_code="330100"
    )
    await Account.update({Account.scope_kind: ScopeKind.region.value}).where(Account.id == account)
    return world


CAMPAIGN = {
    "region_code": "330000",
    "name": "核查",
    "starts_at": "2026-09-01T00:00:00+08:00",
    "ends_at": "2026-09-30T00:00:00+08:00",
    "forms_open": True,
    "corrections_open": True,
}
ACCOUNT = {
    "phone": "13511113333",
    "name": "张三",
    "role": "registrar",
    "initial_password": "Init1234pw",
    "school_id": 1,
}
CSV = ("a.csv", b"x")
GRANT = {"region_code": "330106", "reason": "工单：核对导入结果", "hours": 4}
LINK = {"registration_code": "K7QM-3XPA", "birth_date": "2018-05-15"}
DOCUMENTS = {"kind": "suspend", "documents": ["medical_certificate"]}
REQUEST = {"student_id": (None, "999999"), "field_code": (None, "health"), "new_value": (None, "2")}

# (who, method, path, request, code) — `{A1}` is class A1's id, `{campaign}` a campaign of
# 浙江 and `{self}` the caller's own account; ids that do not exist show the refusal comes
# before any row is read.
REFUSALS: list[tuple[Role | str, str, str, dict[str, Any], str]] = [
    (Role.parent, "GET", "/students", {}, "forbidden"),
    (Role.parent, "GET", "/org/schools", {}, "forbidden"),
    (Role.teacher, "GET", "/my/children", {}, "parents_only"),
    (Role.registrar, "GET", "/my/children/999999", {}, "parents_only"),
    (Role.teacher, "POST", "/my/children", {"json": LINK}, "parents_only"),
    (Role.teacher, "POST", "/imports", {"files": {"file": CSV}}, "forbidden"),
    (Role.school_leader, "POST", "/form-batches", {"json": {"class_id": 1}}, "registrar_only"),
    (Role.teacher, "POST", "/students/999999/reveal", {"json": {"field": "id_number"}},
     "reveal_forbidden"),
    (Role.teacher, "GET", "/form-batches/999999/pdf", {}, "reveal_forbidden"),
    (Role.teacher, "GET", "/forms/F999999/png", {}, "reveal_forbidden"),
    (Role.city_admin, "POST", "/campaigns", {"json": CAMPAIGN}, "campaign_province_only"),
    (Role.city_admin, "POST", "/campaigns/{campaign}/close", {}, "campaign_province_only"),
    (SYSADMIN_OF_HANGZHOU, "POST", "/campaigns/{campaign}/close", {}, "campaign_above_scope"),
    (Role.county_reviewer, "PUT", "/campaigns/{campaign}/regions/330106", {"json": {}},
     "campaign_county_cannot_set"),
    (Role.city_admin, "PUT", "/campaigns/{campaign}/regions/330100", {"json": {}},
     "campaign_setting_not_below"),
    (Role.school_leader, "POST", "/students/999999/uploads", {"files": {"file": CSV}},
     "uploaders_only"),
    (Role.county_reviewer, "POST", "/correction-drafts/999999/legible", {}, "teachers_only"),
    (Role.school_leader, "GET", "/guardian-links", {}, "link_deciders_only"),
    (Role.teacher, "POST", "/change-requests", {"files": REQUEST}, "registrars_only"),
    (Role.school_leader, "POST", "/correction-drafts/999999/transcription",
     {"files": {"new_value": (None, "2")}}, "teachers_only"),
    (Role.school_leader, "POST", "/guardian-links/999999/confirm", {}, "link_deciders_only"),
    (Role.school_leader, "POST", "/accounts", {"json": ACCOUNT}, "forbidden"),
    (Role.registrar, "POST", "/accounts", {"json": ACCOUNT}, "rank_too_high"),
    (Role.registrar, "POST", "/accounts/{self}/seal", {}, "rank_too_high"),
    (Role.sysadmin, "POST", "/students/999999/reveal", {"json": {"field": "id_number"}},
     "reveal_forbidden"),
    (Role.county_reviewer, "POST", "/support-grants", {"json": GRANT}, "support_sysadmin_only"),
    (Role.registrar, "GET", "/support-grants", {}, "support_region_admins_only"),
    (Role.sysadmin, "POST", "/support-grants/999999/approve", {"json": {}},
     "support_region_admins_only"),
    (Role.city_admin, "PUT", "/provinces/330000/change-documents", {"json": DOCUMENTS},
     "change_rules_province_only"),
    (Role.province_admin, "PUT", "/provinces/320000/change-documents", {"json": DOCUMENTS},
     "change_rules_other_province"),
    (Role.province_admin, "PUT", "/provinces/320000/repeat-rule",
     {"json": {"senior_high": "special_only"}}, "change_rules_other_province"),
    (Role.teacher, "GET", "/school-directory", {"params": {"name": "学校"}}, "parents_only"),
]  # fmt: skip


@pytest.mark.parametrize(("who", "method", "path", "request_", "code"), REFUSALS)
async def test_each_refusal_answers_its_code_is_audited_and_documented(
    app: Litestar,
    client: httpx.AsyncClient,
    world: World,
    who: Role | str,
    method: str,
    path: str,
    request_: dict[str, Any],
    code: str,
) -> None:
    phone = world.phones[who] if isinstance(who, Role) else who
    headers = bearer(await login(client, phone))
    ids = {"A1": world.classes["A1"]}
    if "{self}" in path:
        ids["self"] = (await client.get("/me", headers=headers)).json()["id"]
    if "{campaign}" in path:
        ids["campaign"] = await open_campaign("330000")

    response = await client.request(method, path.format(**ids), headers=headers, **request_)

    assert (response.status_code, response.json()["code"]) == (403, code), response.text
    [row] = await AuditLog.select().where(AuditLog.action == "forbidden")
    audited = json.loads(row["after"])
    assert audited["code"] == code
    # …and the operation says it may answer so (the phone team's contract).
    method_, template = audited["route"].split(" ", 1)
    operation = app.openapi_schema.to_schema()["paths"][template][method_.lower()]
    assert code in error_codes(operation["responses"]["403"]["description"])


async def test_an_identifier_search_is_refused_and_audited_by_the_search(
    client: httpx.AsyncClient, world: World
) -> None:
    tokens = await login(client, world.phones[Role.teacher])

    response = await client.get("/students", headers=bearer(tokens), params={"q": "13800000001"})

    assert (response.status_code, response.json()["code"]) == (403, "identifier_search_forbidden")
    audited = await AuditLog.select(AuditLog.action).where(AuditLog.entity == "student")
    assert [r["action"] for r in audited] == ["search_denied"]
    assert not await AuditLog.exists().where(AuditLog.action == "forbidden")


async def test_a_guard_refuses_before_the_body_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    """A staff account posting to a parent's endpoint is told it is not a parent, whatever
    it sent (before the guard, a body the schema refused answered 400 first)."""
    tokens = await login(client, world.phones[Role.teacher])

    response = await client.post("/my/children", headers=bearer(tokens), json={})

    assert (response.status_code, response.json()["code"]) == (403, "parents_only")
