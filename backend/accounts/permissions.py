"""Who may do what: every action a role may or may not take, in one table.

Each `Action` has one `Rule`: the roles that may take it (by name, or by rank: `from_rank`),
the refusal everyone else gets (a `Forbidden` with its own stable `code` and Chinese message),
and, where the answer depends on what is acted on rather than only on who acts, a `Relation`
between the caller and its target (with a refusal of its own).

    require(principal, Action.issue_forms)                       # in a service
    require_over(principal, Action.change_campaign, region_code) # once the target is known
    guards=[allowed(Action.use_staff_api)]                       # in a controller (backend/http.py)

Which rows an allowed caller reaches is the scope's business (`accounts/scope.py`: a row
outside it answers 404, like a missing one), not this module's. To add an action: a member of
`Action`, its `Rule` in `RULES`, its row in `tests/accounts/test_permissions.py`, and a
`require(...)` (or a guard) where it is taken (docs/architecture.md, "Permissions").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from backend.accounts.org import region_level
from backend.accounts.principal import Principal
from backend.accounts.roles import RANK, STAFF_ROLES, RegionLevel, Role
from backend.errors import Forbidden


class Action(StrEnum):
    # Areas: a whole group of endpoints, refused before anything is read.
    use_staff_api = "use_staff_api"  # the staff endpoints: reads of one's scope
    use_parent_api = "use_parent_api"  # /my/children: a parent's own children
    # Records
    import_records = "import_records"
    issue_forms = "issue_forms"
    read_printed_form = "read_printed_form"  # a class's PDF, one form's PNG: every value in full
    reveal_student = "reveal_student"  # one sensitive value in full
    search_by_identifier = "search_by_identifier"  # by registry number, ID number or phone
    # Campaigns
    open_campaign = "open_campaign"
    change_campaign = "change_campaign"  # change, close, delete
    set_campaign_region = "set_campaign_region"  # a sub-region's window and switches
    # Families
    link_child = "link_child"
    upload_photo = "upload_photo"
    decide_correction_draft = "decide_correction_draft"
    list_guardian_links = "list_guardian_links"
    decide_guardian_link = "decide_guardian_link"
    # Reviews (who decides a given step is its seat's business: `records.reviews.occupies`)
    decide_review_step = "decide_review_step"
    # Change requests (a parent's own go through `use_parent_api` and the guardian scope)
    create_change_request = "create_change_request"  # a registrar enters one directly
    transcribe_correction = "transcribe_correction"  # a legible paper correction → a request
    approve_in_bulk = "approve_in_bulk"  # many ordinary changes at once (never key data)
    # Status changes (学籍异动): a transfer is started by the receiving school's registrar,
    # the others by the student's school's; who decides each step is its seat's business
    start_status_change = "start_status_change"
    apply_for_status_change = "apply_for_status_change"  # a parent, for a confirmed child
    # Problem records (问题学籍)
    read_problem_cases = "read_problem_cases"  # lists and counts of cases in one's scope
    act_on_problem = "act_on_problem"  # delete / corroborate / change, by the school
    import_problem_list = "import_problem_list"  # the national system's list, by an authority
    arbitrate_problem = "arbitrate_problem"  # national arbitration of a duplicate
    # Conversations (a parent's own threads go through `ask_question` and the guardian scope)
    ask_question = "ask_question"  # a parent asks about their child, writes again, closes
    answer_thread = "answer_thread"  # the school (teacher, registrar) or its authority answers
    pass_thread_up = "pass_thread_up"  # the school hands a thread to its authority
    manage_canned_answers = "manage_canned_answers"  # a school's common answers
    # The class roll (人籍一致) and the proof of children without a resident ID number
    mark_class_roll = "mark_class_roll"  # here / not here / a child without a record
    decide_roll_entry = "decide_roll_entry"  # the registrar decides a mismatch, registers
    upload_id_proof = "upload_id_proof"  # proof for a child without a resident ID number
    # Controlled fields (受控字段): a province's controls above the national catalog's
    set_field_controls = "set_field_controls"
    # the documents asked for with a status change, the senior-high repeat rule
    set_change_rules = "set_change_rules"
    search_school_directory = "search_school_directory"  # a parent finds a school by name
    # Accounts
    create_account = "create_account"
    change_account_status = "change_account_status"  # seal, unseal, disable, enable
    # Notifications (one's own inbox, devices, live stream and settings)
    read_push_attempts = "read_push_attempts"  # why an account's pushes did (not) arrive
    use_notifications = "use_notifications"
    register_webhook = "register_webhook"  # a school's own system as a push target
    # Second factor (backend/accounts/second_factor_service.py)
    reset_second_factor = "reset_second_factor"  # a lower-ranked account's lost factor
    # Staff administration and campaign accounts (issue 12)
    reset_password = "reset_password"  # a temporary password for a lower-ranked staff account
    create_campaign_account = "create_campaign_account"  # 数据质量核查专用账号
    list_schools_not_started = "list_schools_not_started"  # a campaign's schools yet to print
    # Exports (backend/reports): masked lists and tables; full records under an approval
    export_reports = "export_reports"  # problem-record lists and progress tables, masked
    record_export_approval = "record_export_approval"  # an authorising document, by one admin
    confirm_export_approval = "confirm_export_approval"  # by a second admin of that level
    export_student_records = "export_student_records"  # full records, unmasked, when approved
    # Campaign progress (backend/reports/progress.py)
    read_progress = "read_progress"  # counts, drill-down and series of one's scope
    tick_paper_return = "tick_paper_return"  # 回收: the signed paper form came back
    # the transfers bulletin's figures: a region's and below (authorities), a school's own
    read_transfer_bulletin = "read_transfer_bulletin"
    # Support grants (backend/accounts/support.py): a sysadmin's time-boxed access to a region
    request_support_grant = "request_support_grant"
    decide_support_grant = "decide_support_grant"  # approve, refuse, revoke: the region's admins
    list_support_grants = "list_support_grants"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str = Forbidden.message

    def error(self, *, audited: bool = False) -> Forbidden:
        return Forbidden(self.message, code=self.code, audited=audited)


@dataclass(frozen=True, slots=True)
class Relation:
    """What must hold between the caller and the target of the action (a region code, a
    role), checked once the target is known."""

    description: str
    holds: Callable[[Principal, Any], bool]
    refusal: Refusal


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    refusal: Refusal
    relation: Relation | None = None


def from_rank(lowest: Role) -> frozenset[Role]:
    """Staff of `lowest`'s rank and above."""
    return frozenset(role for role in STAFF_ROLES if RANK[role] >= RANK[lowest])


def roles(*names: Role) -> frozenset[Role]:
    return frozenset(names)


PROVINCE_LEVEL = roles(Role.province_admin, Role.sysadmin)  # a sysadmin acts for the province
FAMILY_DESK = roles(Role.teacher, Role.registrar)  # the class's teacher, the school's registrar
# A sysadmin writes no student's data and reveals none in full: under a support grant it
# reads, masked, what the region's staff read (backend/accounts/support.py).
IMPORTERS = roles(Role.registrar, Role.county_reviewer, Role.city_admin, Role.province_admin)
REVEALERS = from_rank(Role.registrar) - {Role.sysadmin}
# The administering authorities' reviewers (`roles.AUTHORITY_ROLE`): support staff too.
AUTHORITIES = roles(Role.county_reviewer, Role.city_admin, Role.province_admin)
# Who creates, seals, unseals and disables accounts of a lower rank in their scope.
ACCOUNT_ADMINS = roles(
    Role.registrar, Role.county_reviewer, Role.city_admin, Role.province_admin, Role.sysadmin
)

_PARENTS_ONLY = Refusal("parents_only", "仅家长账号可用")
_REVEAL = Refusal("reveal_forbidden", "只有学籍管理员及以上角色可以查看完整信息")
_PROVINCE_ONLY = Refusal(
    "campaign_province_only",
    "核查工作由省级教育行政部门开启和管理；地市可在省级允许的范围内为所辖区县设定时间和开关",
)
_LINK_DECIDERS = Refusal("link_deciders_only", "仅班主任或学籍管理员可以处理绑定申请")
_RANK_TOO_HIGH = Refusal("rank_too_high", "只能管理比自己级别低的账号")

COVERS_REGION = Relation(
    "the target region is the caller's or lies inside it",
    lambda principal, region_code: principal.reach.covers_region(region_code),
    Refusal("campaign_above_scope", "只能修改本级或下级的核查工作"),
)
BELOW_OWN_REGION = Relation(
    "the target region lies below the caller's own, and is not a province",
    lambda principal, region_code: (
        region_code != principal.reach.region_code
        and region_level(region_code) is not RegionLevel.province
    ),
    Refusal(
        "campaign_setting_not_below",
        "只能为下级地区设置核查时间和功能开关；本级的由上级设定（省级请直接修改核查工作）",
    ),
)
OWN_PROVINCE = Relation(
    "the target province is the caller's (a national account: any)",
    lambda principal, province_code: principal.reach.covers_region(province_code),
    Refusal("controls_other_province", "只能设置本省的受控字段"),
)
OWN_PROVINCE_RULES = Relation(
    "the target province is the caller's (a national account: any)",
    lambda principal, province_code: principal.reach.covers_region(province_code),
    Refusal("change_rules_other_province", "只能设置本省的学籍异动规则"),
)
LOWER_RANK_STAFF = Relation(
    "the target role is a staff role of a lower rank than the caller's",
    lambda principal, role: role in STAFF_ROLES and RANK[role] < RANK[principal.role],
    _RANK_TOO_HIGH,
)
LOWER_RANK = Relation(
    "the target role (a parent's included) ranks lower than the caller's",
    lambda principal, role: RANK[role] < RANK[principal.role],
    _RANK_TOO_HIGH,
)

# Full student records leave only under an authorising document (regulation 002:
# 经县级以上人民政府批准) that an admin at county level or above records and a second confirms.
EXPORT_APPROVERS = roles(Role.county_reviewer, Role.city_admin, Role.province_admin)
_EXPORT_ADMINS_ONLY = Refusal(
    "export_admins_only",
    "学生完整信息的批量导出须由县级及以上教育行政部门的管理员登记批准文件、另一位管理员确认",
)
APPROVAL_REGION_IN_SCOPE = Relation(
    "the approved region is the caller's or lies inside it",
    lambda principal, region_code: principal.reach.covers_region(region_code),
    Refusal("approval_outside_scope", "只能为本级或下级地区登记批准文件"),
)

# An admin of the region (the role that administers accounts there, `admin.py`) decides.
_SUPPORT_DECIDERS = Refusal(
    "support_region_admins_only", "技术支持授权由该地区的省级、市级或区县级管理员审批"
)

RULES: dict[Action, Rule] = {
    Action.use_staff_api: Rule(STAFF_ROLES, Refusal("forbidden")),
    Action.use_parent_api: Rule(roles(Role.parent), _PARENTS_ONLY),
    Action.import_records: Rule(IMPORTERS, Refusal("forbidden")),
    Action.issue_forms: Rule(
        roles(Role.registrar), Refusal("registrar_only", "只有学籍管理员可以打印确认表")
    ),
    Action.read_printed_form: Rule(REVEALERS, _REVEAL),
    Action.reveal_student: Rule(REVEALERS, _REVEAL),
    Action.search_by_identifier: Rule(
        from_rank(Role.registrar),
        Refusal(
            "identifier_search_forbidden",
            "只有学籍管理员及以上角色可以按学籍号、身份证件号或手机号查找学生，请按姓名查找",
        ),
    ),
    Action.open_campaign: Rule(PROVINCE_LEVEL, _PROVINCE_ONLY),
    Action.change_campaign: Rule(PROVINCE_LEVEL, _PROVINCE_ONLY, COVERS_REGION),
    Action.set_campaign_region: Rule(
        PROVINCE_LEVEL | {Role.city_admin},
        Refusal(
            "campaign_county_cannot_set",
            "区县不能设置核查时间和功能开关：由省级为各地区设定，地市可在省级允许的范围内为所辖区县设定",
        ),
        BELOW_OWN_REGION,
    ),
    Action.link_child: Rule(roles(Role.parent), _PARENTS_ONLY),
    Action.upload_photo: Rule(
        FAMILY_DESK | {Role.parent},
        Refusal("uploaders_only", "只有家长、班主任和学籍管理员可以上传确认表照片"),
    ),
    Action.decide_correction_draft: Rule(
        FAMILY_DESK, Refusal("teachers_only", "只有班主任或学籍管理员可以核对更正字迹")
    ),
    Action.list_guardian_links: Rule(FAMILY_DESK, _LINK_DECIDERS),
    Action.decide_guardian_link: Rule(FAMILY_DESK, _LINK_DECIDERS),
    Action.decide_review_step: Rule(
        STAFF_ROLES, Refusal("reviewers_only", "只有学校和教育行政部门的工作人员可以审核")
    ),
    Action.create_change_request: Rule(
        roles(Role.registrar),
        Refusal("registrars_only", "只有学籍管理员可以直接录入更正申请"),
    ),
    Action.transcribe_correction: Rule(
        FAMILY_DESK, Refusal("teachers_only", "只有班主任或学籍管理员可以转录纸质更正")
    ),
    Action.approve_in_bulk: Rule(
        roles(Role.school_leader), Refusal("leaders_only", "只有学校领导可以批量审核普通数据变更")
    ),
    Action.start_status_change: Rule(
        roles(Role.registrar),
        Refusal("status_change_registrar_only", "只有学籍管理员可以办理转学、休学等学籍异动"),
    ),
    Action.apply_for_status_change: Rule(roles(Role.parent), _PARENTS_ONLY),
    Action.read_problem_cases: Rule(STAFF_ROLES, Refusal("forbidden")),
    Action.act_on_problem: Rule(
        roles(Role.registrar),
        Refusal("problem_registrar_only", "只有学籍管理员可以处理问题学籍"),
    ),
    Action.import_problem_list: Rule(
        AUTHORITIES,
        Refusal("authorities_only", "只有教育行政部门可以导入全国系统下发的问题学籍名单"),
    ),
    Action.arbitrate_problem: Rule(
        roles(Role.sysadmin), Refusal("national_only", "只有国家级账号可以仲裁重复学籍")
    ),
    Action.ask_question: Rule(roles(Role.parent), _PARENTS_ONLY),
    Action.answer_thread: Rule(
        FAMILY_DESK | AUTHORITIES,
        Refusal("answerers_only", "只有班主任、学籍管理员和教育行政部门的支持人员可以回复咨询"),
    ),
    Action.pass_thread_up: Rule(
        FAMILY_DESK, Refusal("school_desk_only", "只有班主任或学籍管理员可以转交上级")
    ),
    Action.manage_canned_answers: Rule(
        roles(Role.registrar), Refusal("registrars_only", "只有学籍管理员可以维护常见问题答复")
    ),
    Action.mark_class_roll: Rule(
        FAMILY_DESK, Refusal("roll_markers_only", "只有班主任或学籍管理员可以核对班级名册")
    ),
    Action.decide_roll_entry: Rule(
        roles(Role.registrar),
        Refusal("roll_registrar_only", "只有学籍管理员可以处理班级名册核对发现的问题"),
    ),
    Action.upload_id_proof: Rule(
        roles(Role.registrar),
        Refusal("proof_registrar_only", "只有学籍管理员可以上传证明材料"),
    ),
    Action.set_field_controls: Rule(
        PROVINCE_LEVEL,
        Refusal("controls_province_only", "受控字段由省级教育行政部门设置"),
        OWN_PROVINCE,
    ),
    Action.set_change_rules: Rule(
        PROVINCE_LEVEL,
        Refusal("change_rules_province_only", "学籍异动所需材料和留级规则由省级教育行政部门设置"),
        OWN_PROVINCE_RULES,
    ),
    Action.search_school_directory: Rule(roles(Role.parent), _PARENTS_ONLY),
    Action.create_account: Rule(ACCOUNT_ADMINS, Refusal("forbidden"), LOWER_RANK_STAFF),
    Action.change_account_status: Rule(ACCOUNT_ADMINS, Refusal("forbidden"), LOWER_RANK),
    Action.read_push_attempts: Rule(ACCOUNT_ADMINS, Refusal("forbidden")),
    Action.use_notifications: Rule(frozenset(Role), Refusal("forbidden")),
    Action.register_webhook: Rule(
        STAFF_ROLES,
        Refusal("webhook_staff_only", "只有学校和教育行政部门的工作人员可以登记 Webhook"),
    ),
    Action.reset_second_factor: Rule(ACCOUNT_ADMINS, Refusal("forbidden"), LOWER_RANK_STAFF),
    Action.reset_password: Rule(ACCOUNT_ADMINS, Refusal("forbidden"), LOWER_RANK_STAFF),
    Action.create_campaign_account: Rule(
        roles(Role.county_reviewer, Role.city_admin, Role.province_admin, Role.sysadmin),
        Refusal("campaign_accounts_forbidden", "核查专用账号由区县及以上教育行政部门下发"),
        LOWER_RANK_STAFF,
    ),
    Action.list_schools_not_started: Rule(
        AUTHORITIES | {Role.sysadmin},
        Refusal("progress_authorities_only", "只有教育行政部门可以查看各校核查工作进展"),
    ),
    Action.export_reports: Rule(
        REVEALERS,  # support reads in place: no file of a region leaves with a sysadmin
        Refusal("export_forbidden", "只有学籍管理员及以上角色可以导出名单和进度表"),
    ),
    Action.record_export_approval: Rule(
        EXPORT_APPROVERS, _EXPORT_ADMINS_ONLY, APPROVAL_REGION_IN_SCOPE
    ),
    Action.confirm_export_approval: Rule(EXPORT_APPROVERS, _EXPORT_ADMINS_ONLY),
    Action.export_student_records: Rule(EXPORT_APPROVERS, _EXPORT_ADMINS_ONLY),
    Action.read_progress: Rule(
        STAFF_ROLES,
        Refusal("progress_staff_only", "只有学校和教育行政部门的工作人员可以查看核查进度"),
    ),
    Action.tick_paper_return: Rule(
        FAMILY_DESK,
        Refusal("paper_return_desk_only", "只有班主任或学籍管理员可以登记纸质确认表回收"),
    ),
    Action.read_transfer_bulletin: Rule(
        from_rank(Role.registrar),
        Refusal(
            "bulletin_staff_only", "只有学校学籍管理员、校领导和教育行政部门可以查看异动通报数据"
        ),
    ),
    Action.request_support_grant: Rule(
        roles(Role.sysadmin),
        Refusal("support_sysadmin_only", "只有系统管理员可以申请技术支持授权"),
    ),
    Action.decide_support_grant: Rule(AUTHORITIES, _SUPPORT_DECIDERS),
    Action.list_support_grants: Rule(AUTHORITIES | {Role.sysadmin}, _SUPPORT_DECIDERS),
}


def may(principal: Principal, action: Action) -> bool:
    return principal.role in RULES[action].roles


def require(principal: Principal, action: Action) -> None:
    """Refuse (403, the action's own code) a caller whose role may not take the action."""
    if not may(principal, action):
        raise RULES[action].refusal.error()


def require_over(principal: Principal, action: Action, target: object) -> None:
    """`require`, then the action's relation to its target (a region code, a role)."""
    require(principal, action)
    relation = RULES[action].relation
    assert relation is not None, f"{action} has no relation to check"
    if not relation.holds(principal, target):
        raise relation.refusal.error()


def refusal(action: Action, *, audited: bool = False) -> Forbidden:
    """The action's refusal, for a service that audits the attempt itself first."""
    return RULES[action].refusal.error(audited=audited)
