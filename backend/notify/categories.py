"""What a notification is about (`Category`), and how each kind behaves: whether it waits out
quiet hours, and whether its recipient may turn it off."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    # approvers (review steps; conversations use the same three for their due dates)
    review_digest = "review_digest"  # the working-day morning digest of what waits
    step_due_soon = "step_due_soon"  # 2 working days left
    step_overdue = "step_overdue"  # the assignee's own item passed its due date
    step_escalated = "step_escalated"  # to the level above, the day an item is overdue
    # parents
    verdict = "verdict"  # the photo check's answer
    request_decided = "request_decided"  # approved, rejected, sent back, asked to confirm
    status_change_decided = "status_change_decided"  # each decision on a transfer (异动)
    thread_answered = "thread_answered"  # an answer in their conversation
    campaign_closing = "campaign_closing"  # the window closes soon, the form not verified
    # staff
    thread_new = "thread_new"  # a new question in their class or school
    thread_passed_up = "thread_passed_up"  # a school passed a thread to its authority
    upload_nudge = "upload_nudge"  # a teacher: families who have not uploaded yet
    roll_mismatch = "roll_mismatch"  # a registrar: the class roll found a record or a child
    read_rate_alert = "read_rate_alert"  # admins: an account read far too many students
    # anyone
    test = "test"  # "send me a test notification", from the app's settings


@dataclass(frozen=True)
class Behaviour:
    label: str  # Chinese, for the settings screen
    urgent: bool = False  # pushed at once, even in quiet hours
    may_turn_off: bool = True


BEHAVIOUR: dict[Category, Behaviour] = {
    Category.review_digest: Behaviour("每日待办汇总"),
    Category.step_due_soon: Behaviour("待办即将到期"),
    Category.step_overdue: Behaviour("本人待办已逾期", may_turn_off=False),
    Category.step_escalated: Behaviour("下级待办逾期"),
    # A parent who just photographed the form waits for this answer, whatever the hour.
    Category.verdict: Behaviour("确认表核对结果", urgent=True),
    Category.request_decided: Behaviour("更正申请处理结果"),
    Category.status_change_decided: Behaviour("转学等学籍异动办理进展"),
    Category.thread_answered: Behaviour("咨询有新回复"),
    Category.campaign_closing: Behaviour("核查即将结束提醒"),
    Category.thread_new: Behaviour("新的家长咨询"),
    Category.thread_passed_up: Behaviour("学校转交的咨询"),
    Category.upload_nudge: Behaviour("未上传家庭提醒"),
    Category.roll_mismatch: Behaviour("班级名册核对待处理"),
    # A possible leak in progress: pushed at once, and an admin may not silence it.
    Category.read_rate_alert: Behaviour("账号查看学生信息异常", urgent=True, may_turn_off=False),
    # Asked for by the user a moment ago, to see that pushes reach this phone.
    Category.test: Behaviour("测试通知", urgent=True, may_turn_off=False),
}
