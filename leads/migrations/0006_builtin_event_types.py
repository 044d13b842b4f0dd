"""The built-in event-type catalogue (admins may add more, and rename these)."""

from django.db import migrations

# key, English name, Chinese name, category, counts as a touch
BUILTIN = [
    ("page_view", "Page view", "页面浏览", "web", False),
    ("pricing_page_view", "Pricing page view", "浏览价格页", "web", False),
    ("content_download", "Content download", "资料下载", "content", False),
    ("email_sent", "E-mail sent", "邮件已发送", "email", False),
    ("email_open", "E-mail opened", "邮件已打开", "email", False),
    ("email_click", "E-mail link clicked", "邮件链接点击", "email", False),
    ("email_reply", "E-mail replied", "邮件回复", "email", False),
    ("email_bounce", "E-mail bounced", "邮件退信", "email", False),
    ("webinar_registered", "Webinar registration", "网络研讨会报名", "event", False),
    ("webinar_attended", "Webinar attended", "参加网络研讨会", "event", False),
    ("trial_signup", "Trial sign-up", "试用注册", "web", False),
    ("demo_request", "Demo request", "预约演示", "form", False),
    ("form_submit", "Form submission", "表单提交", "form", False),
    ("call", "Call", "电话", "sales", True),
    ("email", "E-mail (logged)", "邮件（记录）", "sales", True),
    ("meeting", "Meeting", "会议", "sales", True),
    ("note", "Note", "备注", "sales", False),
    ("social_interaction", "Social interaction", "社交互动", "social", False),
    ("unsubscribe", "Unsubscribe", "退订", "email", False),
    ("import", "Imported", "导入", "system", False),
    ("field_conflict", "Conflicting value received", "收到冲突的值", "system", False),
    ("merge", "Merged", "合并", "system", False),
]


def add_builtin(apps, schema_editor):
    EventType = apps.get_model("leads", "EventType")
    for key, name, name_zh, category, is_touch in BUILTIN:
        EventType.objects.update_or_create(
            key=key,
            defaults={"name": name, "name_zh": name_zh, "category": category, "is_touch": is_touch, "is_builtin": True},
        )


def remove_builtin(apps, schema_editor):
    apps.get_model("leads", "EventType").objects.filter(is_builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("leads", "0005_collect_and_track")]

    operations = [migrations.RunPython(add_builtin, remove_builtin)]
