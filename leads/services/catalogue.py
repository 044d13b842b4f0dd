"""The built-in event-type catalogue, ensured after every migrate (and every test-database flush)."""

from __future__ import annotations

from leads.models import EventCategory, EventType

# key, English name, Chinese name, category, counts as a touch
BUILTIN_EVENT_TYPES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("page_view", "Page view", "页面浏览", EventCategory.WEB, False),
    ("pricing_page_view", "Pricing page view", "浏览价格页", EventCategory.WEB, False),
    ("content_download", "Content download", "资料下载", EventCategory.CONTENT, False),
    ("email_sent", "E-mail sent", "邮件已发送", EventCategory.EMAIL, False),
    ("email_open", "E-mail opened", "邮件已打开", EventCategory.EMAIL, False),
    ("email_click", "E-mail link clicked", "邮件链接点击", EventCategory.EMAIL, False),
    ("email_reply", "E-mail replied", "邮件回复", EventCategory.EMAIL, False),
    ("email_bounce", "E-mail bounced", "邮件退信", EventCategory.EMAIL, False),
    ("webinar_registered", "Webinar registration", "网络研讨会报名", EventCategory.EVENT, False),
    ("webinar_attended", "Webinar attended", "参加网络研讨会", EventCategory.EVENT, False),
    ("trial_signup", "Trial sign-up", "试用注册", EventCategory.WEB, False),
    ("demo_request", "Demo request", "预约演示", EventCategory.FORM, False),
    ("form_submit", "Form submission", "表单提交", EventCategory.FORM, False),
    ("call", "Call", "电话", EventCategory.SALES, True),
    ("email", "E-mail (logged)", "邮件（记录）", EventCategory.SALES, True),
    ("meeting", "Meeting", "会议", EventCategory.SALES, True),
    ("note", "Note", "备注", EventCategory.SALES, False),
    ("social_interaction", "Social interaction", "社交互动", EventCategory.SOCIAL, False),
    ("unsubscribe", "Unsubscribe", "退订", EventCategory.EMAIL, False),
    ("import", "Imported", "导入", EventCategory.SYSTEM, False),
    ("field_conflict", "Conflicting value received", "收到冲突的值", EventCategory.SYSTEM, False),
    ("merge", "Merged", "合并", EventCategory.SYSTEM, False),
)


def event_types_ensure_builtin() -> int:
    """Create the built-in types that are missing; admins' renames and deactivations are kept."""
    existing = set(EventType.objects.values_list("key", flat=True))
    missing = [
        EventType(key=key, name=name, name_zh=name_zh, category=category, is_touch=is_touch, is_builtin=True)
        for key, name, name_zh, category, is_touch in BUILTIN_EVENT_TYPES
        if key not in existing
    ]
    EventType.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)
