"""Column mapping: which lead field each column fills, guessed from English and Chinese headers.

A mapping is ``{"column header": target}`` where target is a lead field from ``TARGETS``,
``attr:<key>`` (a custom attribute) or ``""`` (ignore the column).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _

ATTR_PREFIX = "attr:"
# Lead fields an import may fill, with the label shown in the mapping select.
TARGETS = {
    "name": _("Name"),
    "email": _("E-mail"),
    "phone": _("Phone"),
    "company": _("Company"),
    "job_title": _("Job title"),
    "website": _("Website"),
    "industry": _("Industry"),
    "company_size": _("Company size"),
    "country": _("Country (ISO code)"),
    "region": _("Region / province"),
    "city": _("City"),
    "source": _("Source"),
    "tags": _("Tags"),
    "utm_source": _("UTM source"),
    "utm_medium": _("UTM medium"),
    "utm_campaign": _("UTM campaign"),
    "utm_term": _("UTM term"),
    "utm_content": _("UTM content"),
}

# Header spellings (lower-cased, spaces/underscores/hyphens removed) → target.
ALIASES: dict[str, str] = {}
for _target, _spellings in {
    "name": "name fullname contactname contact 姓名 名字 联系人 客户姓名 客户名称",
    "email": "email e-mail emailaddress mail 邮箱 电子邮件 电子邮箱 邮件 邮箱地址",
    "phone": "phone mobile tel telephone phonenumber mobilephone cellphone cell 手机 电话 手机号 手机号码 联系电话 电话号码 联系方式",
    "company": "company companyname organization organisation account 公司 单位 公司名称 企业 企业名称 单位名称",
    "job_title": "title jobtitle position role 职位 职务 头衔 岗位",
    "website": "website web url site homepage 网站 网址 官网 公司网站",
    "industry": "industry sector 行业 所属行业",
    "company_size": "companysize size employees headcount 公司规模 规模 人数 员工人数",
    "country": "country countrycode 国家",
    "region": "region province state 地区 省份 省 区域",
    "city": "city town 城市 市",
    "source": "source leadsource 来源 线索来源 渠道",
    "tags": "tags tag labels 标签",
    "utm_source": "utmsource",
    "utm_medium": "utmmedium",
    "utm_campaign": "utmcampaign",
    "utm_term": "utmterm",
    "utm_content": "utmcontent",
}.items():
    for _spelling in _spellings.split():
        ALIASES[_spelling] = _target
# Headers that become a custom attribute under a fixed key (e.g. notes), whatever their spelling.
ATTRIBUTE_ALIASES = {
    "备注": "notes",
    "notes": "notes",
    "note": "notes",
    "remarks": "notes",
    "comment": "notes",
    "说明": "notes",
}


def _key(header: str) -> str:
    return re.sub(r"[\s_\-:：]+", "", header.lower())


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """Each header's most likely target; a lead field is given to its first matching column only.

    Unrecognised columns are kept as custom attributes (``attr:<header>``): nothing in the file is lost.
    """
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = _key(header)
        target = ALIASES.get(key)
        if target and target not in taken:
            mapping[header] = target
            taken.add(target)
        elif key in ATTRIBUTE_ALIASES:
            mapping[header] = ATTR_PREFIX + ATTRIBUTE_ALIASES[key]
        else:
            mapping[header] = ATTR_PREFIX + header
    return mapping


def mapping_errors(mapping: Mapping[str, object], headers: list[str]) -> list[str]:
    """What is wrong with a user's mapping, as sentences (empty when it can be used)."""
    errors: list[str] = []
    header_set = set(headers)
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in header_set:
            errors.append(str(_("“%(column)s” is not a column of this file.") % {"column": column}))
            continue
        if not isinstance(target, str):
            errors.append(str(_("The target of “%(column)s” must be text.") % {"column": column}))
            continue
        if target == "":
            continue
        if target.startswith(ATTR_PREFIX):
            if not target[len(ATTR_PREFIX) :].strip() or len(target) > 100 + len(ATTR_PREFIX):
                errors.append(str(_("“%(column)s”: give the custom attribute a name.") % {"column": column}))
            continue
        if target not in TARGETS:
            errors.append(str(_("“%(target)s” is not a lead field.") % {"target": target}))
            continue
        if target in used:
            errors.append(
                str(
                    _("“%(a)s” and “%(b)s” both map to %(field)s.")
                    % {"a": used[target], "b": column, "field": TARGETS[target]}
                )
            )
        used[target] = column
    if not errors and not {"name", "email", "phone"} & set(used):
        errors.append(str(_("Map at least one column to name, e-mail or phone.")))
    return errors


def complete_mapping(mapping: Mapping[str, str] | None, headers: list[str]) -> dict[str, str]:
    """The user's mapping over the guessed one: columns they did not mention keep the guess."""
    guessed = guess_mapping(headers)
    if mapping is None:
        return guessed
    chosen = set(mapping.values())
    completed: dict[str, str] = {}
    for header in headers:
        if header in mapping:
            completed[header] = mapping[header]
        elif guessed[header] in chosen and not guessed[header].startswith(ATTR_PREFIX):
            completed[header] = ATTR_PREFIX + header  # the user gave that field to another column
        else:
            completed[header] = guessed[header]
    return completed
