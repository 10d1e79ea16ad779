"""What a family is told when the photo check of their form has answered: a title that
says the verdict in a few words, never what differs (field values are the child's data);
the app opens the upload (`subject`) for the full message.

Who is told: the parent who uploaded the photo; for a photo a teacher uploaded for the
family (`on_behalf`), the child's confirmed guardians.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.outbox import Outbox
from backend.parents.tables import ServerVerdict
from backend.records.notices import guardians_of

CHECK_FAILED = "check_failed"

VERDICT_TITLES: dict[str, str] = {
    ServerVerdict.matches: "确认表核对结果：一致",
    ServerVerdict.corrections_written: "确认表核对结果：已识别到更正",
    ServerVerdict.differs: "确认表核对结果：印刷信息不一致",
    ServerVerdict.unsigned: "确认表核对结果：未签字",
    ServerVerdict.undated: "确认表核对结果：未写日期",
    ServerVerdict.retake: "确认表核对结果：请重新拍照",
    ServerVerdict.not_this_form: "确认表核对结果：不是本次的确认表",
    ServerVerdict.record_changed: "确认表核对结果：请使用新打印的确认表",
    ServerVerdict.form_superseded: "确认表核对结果：请使用新打印的确认表",
    CHECK_FAILED: "确认表核对结果：待学校人工核对",
}
VERDICT_BODY = "点击查看详情"


async def tell_verdict(
    outbox: Outbox, upload: dict[str, Any], verdict: str, now: datetime
) -> list[int]:
    """Inside the transaction that stores the verdict (or the check's failure)."""
    if upload["on_behalf"]:
        recipients = await guardians_of(upload["student"])
    else:
        recipients = [upload["uploaded_by"]]
    note = Note(
        Category.verdict,
        VERDICT_TITLES[verdict],
        VERDICT_BODY,
        subject=("upload", upload["id"]),
        once=f"verdict:upload:{upload['id']}",
    )
    return await notify(outbox, recipients, note, now=now)
