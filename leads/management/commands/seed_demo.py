"""``manage.py seed_demo``: a realistic demo (teams, users of every role, campaigns, leads with their history).

The data are deterministic for a given ``--seed`` (timestamps are relative to the moment of the
run); the demo passwords come from ``secrets`` so that nobody can derive them from the source.
Everything is written set-based with ``bulk_create`` in one transaction: the 5,000-lead default
takes a few seconds on SQLite, most of it password hashing.
"""

from __future__ import annotations

import random
import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import phonenumbers
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from leads.models import (
    Campaign,
    CompanySize,
    Interaction,
    Lead,
    LeadScore,
    LeadStageChange,
    SourceChannel,
    Stage,
    Tag,
)
from leads.services import STAGE_TIMESTAMPS
from users.models import Role, Team, User
from users.services import team_get_or_create, user_create

T = TypeVar("T")
BATCH_SIZE = 1000
HISTORY_DAYS = 90
SITE = "https://www.leadcrm.example.com"

# ---------------------------------------------------------------------------------------------
# Hand-written vocabularies. Chinese names carry their pinyin, which makes plausible e-mail addresses.

CN_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"),
    ("曹", "cao"), ("彭", "peng"), ("曾", "zeng"), ("萧", "xiao"), ("欧阳", "ouyang"), ("司马", "sima"),
)  # fmt: skip
CN_GIVEN = (
    ("伟", "wei"), ("娜", "na"), ("芳", "fang"), ("敏", "min"), ("静", "jing"), ("磊", "lei"), ("强", "qiang"),
    ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"),
    ("明", "ming"), ("超", "chao"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"), ("桂英", "guiying"),
    ("秀英", "xiuying"), ("晓明", "xiaoming"), ("丽华", "lihua"), ("建国", "jianguo"), ("志强", "zhiqiang"),
    ("海燕", "haiyan"), ("文博", "wenbo"), ("子涵", "zihan"), ("欣怡", "xinyi"), ("浩然", "haoran"),
    ("雨桐", "yutong"), ("思远", "siyuan"), ("佳怡", "jiayi"), ("俊杰", "junjie"), ("嘉欣", "jiaxin"),
    ("一鸣", "yiming"), ("晨曦", "chenxi"), ("梓萱", "zixuan"),
)  # fmt: skip
EN_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Daniel", "Emily", "Matthew", "Olivia",
    "Oliver", "Amelia", "Harry", "Isla", "George", "Sophie", "Priya", "Arjun", "Chloé", "Mateo", "Zoë", "Siobhán",
)  # fmt: skip
EN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker",
    "Patel", "Nguyen", "Kim", "Evans", "Hughes", "O'Brien", "Murphy", "Wright", "Cohen", "Müller",
)  # fmt: skip

# (industry, English company suffix, Chinese company suffix, weight)
INDUSTRIES = (
    ("SaaS", "Software", "软件科技有限公司", 18),
    ("Manufacturing", "Manufacturing", "精密制造有限公司", 14),
    ("E-commerce", "Commerce", "电子商务有限公司", 10),
    ("Finance", "Capital", "金融服务有限公司", 8),
    ("Healthcare", "Health", "医疗科技有限公司", 8),
    ("Education", "Learning", "教育科技有限公司", 7),
    ("Logistics", "Logistics", "供应链管理有限公司", 7),
    ("Retail", "Retail", "零售连锁有限公司", 6),
    ("Automotive", "Motors", "汽车零部件有限公司", 6),
    ("Energy", "Energy", "新能源有限公司", 5),
    ("Media", "Media", "文化传媒有限公司", 5),
    ("Real estate", "Properties", "置业有限公司", 4),
)
CN_BRANDS = (
    ("云帆", "yunfan"), ("数澜", "shulan"), ("智源", "zhiyuan"), ("优品", "youpin"), ("恒瑞", "hengrui"),
    ("华信", "huaxin"), ("星河", "xinghe"), ("天成", "tiancheng"), ("博远", "boyuan"), ("鼎新", "dingxin"),
    ("海纳", "haina"), ("睿思", "ruisi"), ("启明", "qiming"), ("长风", "changfeng"), ("青禾", "qinghe"),
    ("蓝鲸", "lanjing"), ("瑞丰", "ruifeng"), ("万象", "wanxiang"), ("嘉和", "jiahe"), ("卓越", "zhuoyue"),
)  # fmt: skip
EN_BRANDS = (
    "Acme", "Northwind", "Bluewave", "Summit", "Brightpath", "Ironclad", "Silverline", "Evergreen",
    "Redwood", "Keystone", "Harbor", "Lumen", "Vertex", "Cobalt", "Pinnacle", "Granite",
)  # fmt: skip

# (title, seniority 0–10, weight): seniority nudges the score like a fit rule would.
CN_TITLES = (
    ("首席执行官", 10, 2), ("总经理", 10, 3), ("副总裁", 9, 3), ("首席技术官", 9, 2), ("销售总监", 8, 6),
    ("市场总监", 8, 6), ("IT总监", 8, 5), ("财务总监", 7, 3), ("采购经理", 6, 7), ("IT经理", 6, 8),
    ("市场经理", 5, 8), ("运营经理", 5, 7), ("产品经理", 5, 6), ("工程师", 3, 9), ("市场专员", 2, 7),
    ("销售代表", 2, 6), ("实习生", 0, 2), ("学生", 0, 1),
)  # fmt: skip
EN_TITLES = (
    ("CEO", 10, 2), ("Managing Director", 10, 2), ("VP Sales", 9, 3), ("CTO", 9, 2), ("Director of Marketing", 8, 6),
    ("Head of IT", 8, 5), ("Finance Director", 7, 3), ("Procurement Manager", 6, 7), ("IT Manager", 6, 8),
    ("Marketing Manager", 5, 8), ("Operations Manager", 5, 7), ("Product Manager", 5, 6),
    ("Software Engineer", 3, 9), ("Marketing Specialist", 2, 7), ("Sales Associate", 2, 6), ("Intern", 0, 2),
    ("Student", 0, 1),
)  # fmt: skip

# (band, employees range, weight)
COMPANY_SIZES = (
    (CompanySize.S1_10, (2, 10), 8),
    (CompanySize.S11_50, (11, 50), 18),
    (CompanySize.S51_200, (51, 200), 24),
    (CompanySize.S201_500, (201, 500), 18),
    (CompanySize.S501_1000, (501, 1000), 12),
    (CompanySize.S1001_5000, (1001, 5000), 12),
    (CompanySize.S5000_PLUS, (5001, 50000), 8),
)
INTERESTS = (
    "CRM", "Marketing automation", "Lead scoring", "Analytics", "Integrations", "API", "Mobile app",
    "Data security", "AI assistant", "WeCom integration",
)  # fmt: skip
TAGS = (
    "VIP",
    "重点客户",
    "回访",
    "展会线索",
    "partner",
    "needs-demo",
    "budget-approved",
    "competitor-user",
    "decision-maker",
)
SOURCE_WEIGHTS = (
    (SourceChannel.ONLINE_ADS, 22), (SourceChannel.WEB_FORM, 18), (SourceChannel.SOCIAL_MEDIA, 15),
    (SourceChannel.CONTENT, 12), (SourceChannel.EVENT, 10), (SourceChannel.REFERRAL, 8), (SourceChannel.IMPORT, 6),
    (SourceChannel.PROMOTION, 5), (SourceChannel.API, 3), (SourceChannel.OTHER, 1),
)  # fmt: skip

# A stage and the usual roads to it (each road starts at "new"), with how often leads stand there.
STAGE_PATHS: dict[Stage, tuple[tuple[Stage, ...], ...]] = {
    Stage.NEW: ((Stage.NEW,),),
    Stage.CONTACTED: ((Stage.NEW, Stage.CONTACTED),),
    Stage.NURTURING: ((Stage.NEW, Stage.CONTACTED, Stage.NURTURING), (Stage.NEW, Stage.NURTURING)),
    Stage.MQL: ((Stage.NEW, Stage.CONTACTED, Stage.MQL), (Stage.NEW, Stage.CONTACTED, Stage.NURTURING, Stage.MQL)),
    Stage.SQL: ((Stage.NEW, Stage.CONTACTED, Stage.MQL, Stage.SQL),),
    Stage.CONVERTED: (
        (Stage.NEW, Stage.CONTACTED, Stage.MQL, Stage.SQL, Stage.CONVERTED),
        (Stage.NEW, Stage.CONTACTED, Stage.NURTURING, Stage.MQL, Stage.SQL, Stage.CONVERTED),
    ),
    Stage.LOST: (
        (Stage.NEW, Stage.CONTACTED, Stage.LOST),
        (Stage.NEW, Stage.CONTACTED, Stage.MQL, Stage.SQL, Stage.LOST),
    ),
    Stage.RECYCLED: (
        (Stage.NEW, Stage.CONTACTED, Stage.LOST, Stage.RECYCLED),
        (Stage.NEW, Stage.CONTACTED, Stage.NURTURING, Stage.RECYCLED),
    ),
}
STAGE_WEIGHTS = (
    (Stage.NEW, 28), (Stage.CONTACTED, 20), (Stage.NURTURING, 18), (Stage.MQL, 10), (Stage.SQL, 7),
    (Stage.CONVERTED, 6), (Stage.LOST, 8), (Stage.RECYCLED, 3),
)  # fmt: skip
# Scores agree with the stage thresholds (MQL ≥ 50, SQL ≥ 80).
SCORE_BANDS = {
    Stage.NEW: (0, 45), Stage.CONTACTED: (5, 49), Stage.NURTURING: (10, 49), Stage.MQL: (50, 79), Stage.SQL: (80, 100),
    Stage.CONVERTED: (65, 100), Stage.LOST: (0, 35), Stage.RECYCLED: (10, 45),
}  # fmt: skip
# Days a lead needs, at least, to reach the stage: long roads start long ago.
MIN_AGE_DAYS = {
    Stage.NEW: 0, Stage.CONTACTED: 1, Stage.NURTURING: 5, Stage.MQL: 7, Stage.SQL: 14, Stage.CONVERTED: 21,
    Stage.LOST: 7, Stage.RECYCLED: 30,
}  # fmt: skip
STAGE_REASONS = {Stage.MQL: "score ≥ 50", Stage.SQL: "score ≥ 80", Stage.RECYCLED: "recycled to marketing"}
LOST_REASONS_CN = ("预算不足", "选择了竞争对手", "无决策权", "暂无需求", "多次联系未果", "要求不再联系")
LOST_REASONS_EN = (
    "No budget",
    "Chose a competitor",
    "No decision authority",
    "Not now — revisit next year",
    "Unresponsive",
    "Asked not to be contacted",
)
DO_NOT_CONTACT_REASONS = {"要求不再联系", "Asked not to be contacted"}

PAGES = (
    "/",
    "/product/lead-scoring",
    "/product/marketing-automation",
    "/solutions/manufacturing",
    "/customers",
    "/integrations/wecom",
    "/docs/api",
    "/blog/lead-scoring-101",
)
ASSETS_CN = ("2025中国企业CRM白皮书.pdf", "线索评分最佳实践.pdf", "ROI计算器.xlsx", "客户案例合集.pdf")
ASSETS_EN = ("State-of-B2B-Sales-2025.pdf", "Lead-Scoring-Playbook.pdf", "Product-Datasheet.pdf", "ROI-Calculator.xlsx")
WEBINARS_CN = ("AI 线索评分实战", "从 Excel 到 CRM：销售团队数字化")
WEBINARS_EN = ("Lead Scoring 101", "Building a Nurture Program That Converts")
EMAILS_CN = ("【直播邀请】AI 线索评分实战", "您的试用还剩 7 天", "客户案例：制造业如何提升转化率")
EMAILS_EN = ("You're invited: Lead Scoring 101", "Your trial ends in 7 days", "How Acme doubled its conversion rate")
NOTES_CN = (
    "客户关注数据安全与私有化部署。",
    "下周三安排产品演示。",
    "需要与 IT 部门确认集成方案。",
    "对价格敏感，建议年付方案。",
)
NOTES_EN = (
    "Asked about SSO and data residency.",
    "Demo booked for next Wednesday.",
    "Needs sign-off from IT on the integration.",
    "Price-sensitive; suggested the annual plan.",
)
# Behaviour events filling a timeline, (type, weight); calls, meetings and notes need an owner.
BEHAVIOUR = (
    ("page_view", 30),
    ("email_open", 20),
    ("email_click", 10),
    ("content_download", 8),
    ("pricing_page_view", 6),
    ("webinar_attended", 4),
)
SALES_ACTIVITY = (("call", 6), ("meeting", 3), ("note", 4))


@dataclass(frozen=True)
class Place:
    city: str
    region: str
    country: str
    pinyin: str = ""  # Chinese cities: used in company domains
    area_codes: tuple[str, ...] = ()  # +1 numbers: local area codes
    weight: int = 1


@dataclass(frozen=True)
class TeamPlan:
    key: str
    name: str
    chinese: bool
    share: int  # relative share of the leads
    places: tuple[Place, ...]
    manager: tuple[str, str]  # (username, display name)
    reps: tuple[tuple[str, str], ...]


TEAMS = (
    TeamPlan(
        key="east",
        name="华东 East China",
        chinese=True,
        share=40,
        places=(
            Place("上海", "华东", "CN", "shanghai", weight=30),
            Place("杭州", "华东", "CN", "hangzhou", weight=15),
            Place("南京", "华东", "CN", "nanjing", weight=10),
            Place("苏州", "华东", "CN", "suzhou", weight=10),
            Place("宁波", "华东", "CN", "ningbo", weight=5),
            Place("合肥", "华东", "CN", "hefei", weight=5),
            Place("北京", "华北", "CN", "beijing", weight=20),
            Place("天津", "华北", "CN", "tianjin", weight=5),
        ),
        manager=("east.manager", "陈静"),
        reps=(("east.rep1", "王磊"), ("east.rep2", "李娜"), ("east.rep3", "张伟")),
    ),
    TeamPlan(
        key="south",
        name="华南 South China",
        chinese=True,
        share=35,
        places=(
            Place("深圳", "华南", "CN", "shenzhen", weight=30),
            Place("广州", "华南", "CN", "guangzhou", weight=25),
            Place("厦门", "华南", "CN", "xiamen", weight=8),
            Place("东莞", "华南", "CN", "dongguan", weight=8),
            Place("珠海", "华南", "CN", "zhuhai", weight=4),
            Place("福州", "华南", "CN", "fuzhou", weight=5),
            Place("成都", "西南", "CN", "chengdu", weight=12),
            Place("重庆", "西南", "CN", "chongqing", weight=8),
        ),
        manager=("south.manager", "黄志强"),
        reps=(("south.rep1", "林晓明"), ("south.rep2", "郭嘉欣")),
    ),
    TeamPlan(
        key="intl",
        name="International",
        chinese=False,
        share=25,
        places=(
            Place("New York", "North America", "US", area_codes=("212", "646"), weight=12),
            Place("San Francisco", "North America", "US", area_codes=("415",), weight=10),
            Place("Austin", "North America", "US", area_codes=("512",), weight=4),
            Place("Seattle", "North America", "US", area_codes=("206",), weight=5),
            Place("Boston", "North America", "US", area_codes=("617",), weight=5),
            Place("Chicago", "North America", "US", area_codes=("312",), weight=5),
            Place("Toronto", "North America", "CA", area_codes=("416", "647"), weight=5),
            Place("Vancouver", "North America", "CA", area_codes=("604",), weight=2),
            Place("London", "Europe", "GB", weight=14),
            Place("Manchester", "Europe", "GB", weight=4),
            Place("Edinburgh", "Europe", "GB", weight=3),
        ),
        manager=("intl.manager", "Emma Clarke"),
        reps=(("intl.rep1", "Daniel Wright"), ("intl.rep2", "Priya Patel"), ("intl.rep3", "Lucas Martin")),
    ),
)

# (name, channel, cost, currency, starts days ago, runs for days or None = ongoing, utm_campaign, utm_source, utm_medium)
CAMPAIGNS = (
    ("百度搜索推广 2025 Q3", SourceChannel.ONLINE_ADS, "180000.00", "CNY", 120, 100, "baidu-sem-q3", "baidu", "cpc"),
    ("微信朋友圈广告 · 秋季", SourceChannel.ONLINE_ADS, "95000.00", "CNY", 75, 60, "wechat-moments-autumn", "wechat", "cpc"),
    ("Google Ads — Global", SourceChannel.ONLINE_ADS, "42000.00", "USD", 150, None, "google-global", "google", "cpc"),
    ("LinkedIn Sponsored Content", SourceChannel.ONLINE_ADS, "18000.00", "USD", 100, 90, "linkedin-sponsored", "linkedin", "cpc"),
    ("微信公众号增长计划", SourceChannel.SOCIAL_MEDIA, "30000.00", "CNY", 140, None, "wechat-oa-growth", "wechat", "social"),
    ("抖音短视频种草", SourceChannel.SOCIAL_MEDIA, "60000.00", "CNY", 90, 60, "douyin-seeding", "douyin", "social"),
    ("LinkedIn Thought Leadership", SourceChannel.SOCIAL_MEDIA, "5000.00", "USD", 130, None, "linkedin-organic", "linkedin", "social"),
    ("2025 上海国际零售展", SourceChannel.EVENT, "120000.00", "CNY", 80, 4, "retail-expo-sh", "expo", "offline"),
    ("深圳高交会 2025", SourceChannel.EVENT, "150000.00", "CNY", 45, 5, "chtf-sz", "expo", "offline"),
    ("SaaStr Europa London", SourceChannel.EVENT, "25000.00", "USD", 60, 3, "saastr-europa", "event", "offline"),
    ("《2025 中国企业 CRM 白皮书》", SourceChannel.CONTENT, "20000.00", "CNY", 110, None, "crm-whitepaper-2025", "content", "organic"),
    ("Webinar: AI Lead Scoring 101", SourceChannel.CONTENT, "3000.00", "USD", 70, 30, "webinar-ai-scoring", "webinar", "email"),
    ("双十一年付八折", SourceChannel.PROMOTION, "40000.00", "CNY", 40, 20, "double11-annual", "sms", "promo"),
    ("Black Friday annual plan", SourceChannel.PROMOTION, "8000.00", "USD", 30, 10, "black-friday", "newsletter", "email"),
    ("老客户推荐计划 Customer referral", SourceChannel.REFERRAL, "15000.00", "CNY", 160, None, "referral-cn", "customer", "referral"),
    ("Partner referral — Europe", SourceChannel.REFERRAL, "6000.00", "USD", 160, None, "partner-eu", "partner", "referral"),
    ("官网免费试用 Free trial form", SourceChannel.WEB_FORM, "0.00", "CNY", 180, None, "free-trial", "", ""),
    ("展会名单导入 Expo list import", SourceChannel.IMPORT, "0.00", "CNY", 44, 1, "expo-import", "", ""),
    ("Partner API — Zapier", SourceChannel.API, "0.00", "USD", 180, None, "zapier", "zapier", "api"),
    ("线下拜访 Field visits", SourceChannel.OTHER, "12000.00", "CNY", 90, None, "field-visits", "", ""),
)  # fmt: skip
KEYWORDS_CN = ("crm系统", "销售管理软件", "客户管理系统", "线索管理")
KEYWORDS_EN = ("crm software", "lead management", "sales pipeline tool", "lead scoring")


def weighted(rng: random.Random, items: Sequence[tuple[T, int]]) -> T:
    return rng.choices([item for item, _ in items], weights=[w for _, w in items])[0]


def ascii_slug(text: str) -> str:
    """``Chloé O'Brien`` → ``chloeobrien``: letters and digits only, for e-mail local parts."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


@dataclass
class DemoUser:
    user: User
    role: Role
    team: str
    password: str


@dataclass
class LeadPlan:
    """A lead before it has an id, with the rows that will point at it."""

    lead: Lead
    card: LeadScore  # written after the lead: the database makes a default card with each lead
    tag_ids: list[int]
    stage_changes: list[LeadStageChange] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)


class DemoBuilder:
    """Builds unsaved rows from one ``random.Random``; the command saves them set-based."""

    def __init__(
        self,
        *,
        rng: random.Random,
        now: datetime,
        teams: dict[str, Team],
        reps: dict[str, list[User]],
        managers: dict[str, User],
        marketing: User,
        campaigns: list[Campaign],
        tags: list[Tag],
        taken_emails: set[str],
        taken_phones: set[str],
    ) -> None:
        self.rng = rng
        self.now = now
        self.teams = teams
        self.reps = reps
        self.managers = managers
        self.marketing = marketing
        self.campaigns = campaigns
        self.tags = tags
        self.emails = taken_emails
        self.phones = taken_phones

    # -- contact details ------------------------------------------------------------------------

    def phone(self, place: Place) -> str:
        rng = self.rng
        while True:
            if place.country == "CN":
                raw = f"+86{rng.choice(('130', '135', '136', '138', '139', '150', '158', '159', '166', '177', '186', '188', '189', '199'))}{rng.randrange(10**8):08d}"
            elif place.country == "GB":
                raw = f"+447{rng.choice('4578')}{rng.randrange(10**8):08d}"
            else:
                exchange = rng.randrange(200, 1000)
                if exchange % 100 == 11 or exchange == 555:  # N11 service codes and the fictional 555
                    continue
                raw = f"+1{rng.choice(place.area_codes)}{exchange}{rng.randrange(10**4):04d}"
            if raw not in self.phones and phonenumbers.is_valid_number(phonenumbers.parse(raw)):
                self.phones.add(raw)
                return raw

    def email(self, local: str, domain: str) -> str:
        candidate = f"{local}@{domain}"
        n = 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.emails.add(candidate)
        return candidate

    # -- one lead -------------------------------------------------------------------------------

    def lead(self) -> LeadPlan:
        rng = self.rng
        plan = weighted(rng, [(t, t.share) for t in TEAMS])
        place = weighted(rng, [(p, p.weight) for p in plan.places])
        industry, en_suffix, cn_suffix, _ = weighted(rng, [(i, i[3]) for i in INDUSTRIES])
        size, (low, high), _ = weighted(rng, [(s, s[2]) for s in COMPANY_SIZES])
        employees = rng.randint(low, high)
        # Reserved example.com sub-domains: a demo wired to a real mail relay must not mail strangers.
        if plan.chinese:
            (surname, surname_py), (given, given_py) = rng.choice(CN_SURNAMES), rng.choice(CN_GIVEN)
            name = surname + given
            brand, brand_py = rng.choice(CN_BRANDS)
            company = f"{place.city}{brand}{cn_suffix}"
            domain = f"{place.pinyin}-{brand_py}.example.com"
            local = rng.choice((f"{given_py}.{surname_py}", f"{surname_py}{given_py}", f"{surname_py}.{given_py}"))
            title, seniority, _ = weighted(rng, [(t, t[2]) for t in CN_TITLES])
        else:
            first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            name = f"{first} {last}"
            brand = rng.choice(EN_BRANDS)
            company = f"{brand} {en_suffix} {'Ltd' if place.country == 'GB' else 'Inc.'}"
            domain = f"{ascii_slug(brand + en_suffix)}.example.com"
            local = rng.choice((f"{ascii_slug(first)}.{ascii_slug(last)}", f"{ascii_slug(first)[0]}{ascii_slug(last)}"))
            title, seniority, _ = weighted(rng, [(t, t[2]) for t in EN_TITLES])

        source = weighted(rng, SOURCE_WEIGHTS)
        campaign = self._campaign(source, chinese=plan.chinese)
        stage = weighted(rng, STAGE_WEIGHTS)
        path = rng.choice(STAGE_PATHS[stage])
        created_at = self._created_at(stage, campaign)

        # Fresh leads often wait in the team pool; a lead past "new" has been worked by someone.
        team = self.teams[plan.key]
        unassigned = {Stage.NEW: 0.45, Stage.NURTURING: 0.2, Stage.RECYCLED: 0.5}.get(stage, 0.0)
        owner: User | None = None
        if rng.random() >= unassigned:
            owner = self.managers[plan.key] if rng.random() < 0.08 else rng.choice(self.reps[plan.key])

        low_score, high_score = SCORE_BANDS[stage]
        score = max(low_score, min(high_score, rng.randint(low_score, high_score) + (seniority - 5)))
        lost_reason = rng.choice(LOST_REASONS_CN if plan.chinese else LOST_REASONS_EN) if Stage.LOST in path else ""
        plan_name = "enterprise" if employees > 1000 else ("pro" if employees > 100 else "starter")
        attributes: dict[str, Any] = {"plan": plan_name, "employees": employees}
        if rng.random() < 0.4:
            budget_cny = rng.choice((50_000, 100_000, 200_000, 500_000))
            attributes["budget"] = budget_cny if plan.chinese else budget_cny * 15 // 100  # in USD abroad
        if plan.chinese and rng.random() < 0.35:
            attributes["wechat"] = f"wxid_{rng.randrange(16**10):010x}"
        if rng.random() < 0.2:
            attributes["trial"] = True

        utm = self._utm(source, campaign, chinese=plan.chinese)
        lead = Lead(
            name=name,
            email=self.email(local, domain),
            phone=self.phone(place),
            company=company,
            job_title=title,
            website=f"https://www.{domain}",
            industry=industry,
            company_size=size,
            country=place.country,
            region=place.region,
            city=place.city,
            interests=sorted(rng.sample(INTERESTS, rng.randint(1, 3))),
            attributes=attributes,
            source=source,
            campaign=campaign,
            stage=stage,
            lost_reason=lost_reason,
            owner=owner,
            team=team,
            do_not_contact=lost_reason in DO_NOT_CONTACT_REASONS or rng.random() < 0.01,
            created_at=created_at,
            created_by=self.marketing if source == SourceChannel.IMPORT else None,
            **utm,
        )
        tag_ids = [t.pk for t in rng.sample(self.tags, weighted(rng, ((0, 45), (1, 35), (2, 15), (3, 5))))]
        card = LeadScore(score=score, grade="hot" if score >= 80 else ("warm" if score >= 50 else "cold"))
        result = LeadPlan(lead=lead, card=card, tag_ids=tag_ids)
        self._history(result, path, chinese=plan.chinese)
        return result

    def _campaign(self, source: str, *, chinese: bool) -> Campaign | None:
        if self.rng.random() < 0.15:
            return None
        currency = "CNY" if chinese else "USD"
        candidates = [c for c in self.campaigns if c.channel == source and c.currency == currency]
        candidates = candidates or [c for c in self.campaigns if c.channel == source]
        return self.rng.choice(candidates) if candidates else None

    def _created_at(self, stage: Stage, campaign: Campaign | None) -> datetime:
        rng = self.rng
        oldest = self.now - timedelta(days=HISTORY_DAYS - 1)
        newest = self.now - timedelta(days=MIN_AGE_DAYS[stage])
        if campaign is not None and campaign.starts_on is not None:
            # Inside the campaign's window when it overlaps the lead's possible lifetime.
            start = datetime.combine(campaign.starts_on, datetime.min.time(), tzinfo=self.now.tzinfo)
            end = datetime.combine(campaign.ends_on or self.now.date(), datetime.max.time(), tzinfo=self.now.tzinfo)
            if max(start, oldest) < min(end, newest):
                oldest, newest = max(start, oldest), min(end, newest)
        # New leads skew recent: untouched leads do not pile up for months.
        fraction = rng.random() ** 2 if stage == Stage.NEW else rng.random()
        return (newest - (newest - oldest) * fraction).replace(microsecond=0)

    def _utm(self, source: str, campaign: Campaign | None, *, chinese: bool) -> dict[str, str]:
        if campaign is None or source in (SourceChannel.IMPORT, SourceChannel.OTHER):
            if source == SourceChannel.WEB_FORM and self.rng.random() < 0.5:
                return {"utm_source": "baidu" if chinese else "google", "utm_medium": "organic"}
            return {}
        spec = next(c for c in CAMPAIGNS if c[0] == campaign.name)
        utm = {"utm_source": spec[7], "utm_medium": spec[8], "utm_campaign": campaign.utm_campaign}
        if source == SourceChannel.ONLINE_ADS:
            utm["utm_term"] = self.rng.choice(KEYWORDS_CN if chinese else KEYWORDS_EN)
            utm["utm_content"] = self.rng.choice(("ad-a", "ad-b", "ad-c"))
        return {k: v for k, v in utm.items() if v}

    # -- its history ----------------------------------------------------------------------------

    def _history(self, plan: LeadPlan, path: tuple[Stage, ...], *, chinese: bool) -> None:
        """Stage changes along ``path`` with their lifecycle stamps, and a timeline of 5–8 events."""
        rng, lead = self.rng, plan.lead
        created = lead.created_at
        span = (self.now - created).total_seconds()
        # Stage moves happen in order, somewhere between creation and now.
        offsets = sorted(rng.uniform(0.05, 0.95) * span for _ in path[1:])
        times = [created] + [
            created + timedelta(seconds=int(o)) + timedelta(minutes=i + 1) for i, o in enumerate(offsets)
        ]
        times = [min(t, self.now) for t in times]
        previous = ""
        for stage, when in zip(path, times, strict=True):
            by_human = stage in (Stage.CONTACTED, Stage.SQL, Stage.CONVERTED, Stage.LOST)
            reason = lead.lost_reason if stage == Stage.LOST else STAGE_REASONS.get(stage, "")
            changed_by = (lead.owner if by_human else None) if stage != Stage.NEW else lead.created_by
            plan.stage_changes.append(
                LeadStageChange(
                    from_stage=previous, to_stage=stage, changed_by=changed_by, changed_at=when, reason=reason
                )
            )
            if stage in STAGE_TIMESTAMPS:
                setattr(lead, STAGE_TIMESTAMPS[stage], when)
            previous = stage

        owner = lead.owner
        events: list[tuple[datetime, str, dict[str, Any], User | None]] = [
            (created, *self._origin(lead, chinese=chinese))
        ]
        # An event at each move explains it: the call that made contact, the pricing visit that made an MQL…
        for stage, when in zip(path[1:], times[1:], strict=True):
            events.append((when, *self._stage_event(stage, lead, owner, chinese=chinese)))
        total = max(rng.randint(5, 8), len(events))
        # Calls, meetings and notes only once a rep has made contact.
        contacted = lead.first_contacted_at
        sales = owner is not None and contacted is not None
        kinds = BEHAVIOUR + (SALES_ACTIVITY if sales else ())
        while len(events) < total:
            kind = weighted(rng, kinds)
            start = contacted if contacted is not None and kind in ("call", "meeting", "note") else created
            when = min(
                start + timedelta(seconds=int(rng.uniform(60, max((self.now - start).total_seconds(), 120)))), self.now
            )
            events.append(
                (
                    when,
                    kind,
                    self._properties(kind, chinese=chinese),
                    owner if kind in ("call", "meeting", "note") else None,
                )
            )
        for when, kind, properties, by in events:
            plan.interactions.append(
                Interaction(type=kind, occurred_at=when, properties=properties, created_by=by, created_at=when)
            )
        lead.last_activity_at = max(when for when, *_ in events)
        plan.card.score_updated_at = lead.last_activity_at

    def _origin(self, lead: Lead, *, chinese: bool) -> tuple[str, dict[str, Any], User | None]:
        source = lead.source
        if source == SourceChannel.IMPORT:
            return "import", {"file": "expo-leads-2025.xlsx", "row": self.rng.randint(2, 3000)}, self.marketing
        if source == SourceChannel.EVENT:
            return "note", {"text": "展会现场交换名片" if chinese else "Met at the booth; scanned badge."}, None
        if source == SourceChannel.REFERRAL:
            return "note", {"text": "老客户推荐" if chinese else "Referred by an existing customer."}, None
        if source == SourceChannel.CONTENT:
            return "content_download", self._properties("content_download", chinese=chinese), None
        forms: dict[str, str] = {SourceChannel.API: "partner-api", SourceChannel.PROMOTION: "promo-signup"}
        form = forms.get(source, "free-trial")
        return "form_submit", {"form": form, "url": f"{SITE}/{'zh/' if chinese else ''}trial"}, None

    def _stage_event(
        self, stage: Stage, lead: Lead, owner: User | None, *, chinese: bool
    ) -> tuple[str, dict[str, Any], User | None]:
        if stage == Stage.CONTACTED and owner is not None:
            return "call", self._properties("call", chinese=chinese, outcome="connected"), owner
        if stage == Stage.MQL:
            return "pricing_page_view", self._properties("pricing_page_view", chinese=chinese), None
        if stage in (Stage.SQL, Stage.CONVERTED) and owner is not None:
            title = (
                ("签约会议" if chinese else "Contract signing")
                if stage == Stage.CONVERTED
                else ("产品演示" if chinese else "Product demo")
            )
            return "meeting", {"title": title, "duration_min": self.rng.choice((30, 45, 60))}, owner
        if stage == Stage.LOST:
            return "note", {"text": lead.lost_reason}, owner
        return "email_open", self._properties("email_open", chinese=chinese), None

    def _properties(self, kind: str, *, chinese: bool, outcome: str | None = None) -> dict[str, Any]:
        rng = self.rng
        lang = "zh/" if chinese else ""
        if kind == "page_view":
            return {"url": f"{SITE}/{lang}{rng.choice(PAGES).lstrip('/')}"}
        if kind == "pricing_page_view":
            return {"url": f"{SITE}/{lang}pricing", "plan_viewed": rng.choice(("starter", "pro", "enterprise"))}
        if kind == "content_download":
            return {"asset": rng.choice(ASSETS_CN if chinese else ASSETS_EN)}
        if kind in ("email_open", "email_click"):
            props = {"subject": rng.choice(EMAILS_CN if chinese else EMAILS_EN)}
            if kind == "email_click":
                props["url"] = f"{SITE}/{lang}{rng.choice(PAGES).lstrip('/')}"
            return props
        if kind == "webinar_attended":
            return {"webinar": rng.choice(WEBINARS_CN if chinese else WEBINARS_EN), "minutes": rng.randint(10, 60)}
        if kind == "call":
            result = outcome or rng.choice(("connected", "connected", "voicemail", "no_answer"))
            return {
                "outcome": result,
                "duration_s": rng.randint(120, 1500) if result == "connected" else rng.randint(10, 40),
            }
        if kind == "meeting":
            return {"title": "需求沟通" if chinese else "Discovery call", "duration_min": rng.choice((30, 45, 60))}
        return {"text": rng.choice(NOTES_CN if chinese else NOTES_EN)}


class Command(BaseCommand):
    help = "Seed a realistic demo: teams, users of every role (passwords printed), campaigns, leads with history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--leads", type=int, default=5000, help="How many leads (default 5000).")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any lead exists.")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same data.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Lead.objects.exists():
            self.stdout.write("seed_demo: leads already exist, nothing to do (--if-empty).")
            return
        started = time.perf_counter()
        rng = random.Random(options["seed"])
        with transaction.atomic():
            people = self._people()
            campaigns = self._campaigns()
            tags = self._tags()
            counts = self._leads(rng, count=max(0, options["leads"]), people=people, campaigns=campaigns, tags=tags)
        # Fresh planner statistics: a bulk load leaves the tables unanalyzed until autovacuum gets to them
        # (never, where it is off), and the duplicates page's self-join then took 20 s instead of 0.1 s.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {counts['leads']} leads, {counts['interactions']} interactions, {counts['stage_changes']} stage changes, "
                f"{len(campaigns)} campaigns, {len(people)} users in {elapsed:.1f} s."
            )
        )
        self._print_users(people)

    # -- reference data -------------------------------------------------------------------------

    def _people(self) -> list[DemoUser]:
        """Teams and a user of every role through the users service (role groups, team managers)."""
        people: list[DemoUser] = []

        def make(username: str, display: str, role: Role, team: Team | None, language: str) -> None:
            existing = User.objects.filter(username=username).first()
            if existing is not None:
                people.append(DemoUser(existing, role, team.name if team else "", "(unchanged)"))
                return
            # Guessable in 10^4 tries at most: fine for a local demo; the admin's is long and random.
            password = f"demo-{role.value}-" + (
                secrets.token_urlsafe(9) if role == Role.ADMIN else f"{secrets.randbelow(9000) + 1000}"
            )
            user = user_create(
                username=username,
                password=password,
                role=role,
                team=team,
                email=f"{username}@leadcrm.example.com",
                display_name=display,
                language=language,
            )
            people.append(DemoUser(user, role, team.name if team else "", password))

        make("admin", "Admin", Role.ADMIN, None, "")
        make("marketing", "周婷", Role.MARKETING, None, "zh-hans")
        for plan in TEAMS:
            team = team_get_or_create(name=plan.name)
            language = "zh-hans" if plan.chinese else "en"
            make(plan.manager[0], plan.manager[1], Role.MANAGER, team, language)
            for username, display in plan.reps:
                make(username, display, Role.REP, team, language)
        return people

    def _campaigns(self) -> list[Campaign]:
        today = timezone.localdate()
        campaigns = []
        for name, channel, cost, currency, ago, days, utm, _source, _medium in CAMPAIGNS:
            starts_on: date = today - timedelta(days=ago)
            campaign, _ = Campaign.objects.get_or_create(
                name=name,
                defaults={
                    "channel": channel,
                    "cost": Decimal(cost),
                    "currency": currency,
                    "starts_on": starts_on,
                    "ends_on": starts_on + timedelta(days=days) if days is not None else None,
                    "utm_campaign": utm,
                },
            )
            campaigns.append(campaign)
        return campaigns

    def _tags(self) -> list[Tag]:
        Tag.objects.bulk_create([Tag(name=n) for n in TAGS], ignore_conflicts=True)
        by_name = {t.name: t for t in Tag.objects.filter(name__in=TAGS)}
        return [by_name[n] for n in TAGS]

    # -- the leads ------------------------------------------------------------------------------

    def _leads(
        self, rng: random.Random, *, count: int, people: list[DemoUser], campaigns: list[Campaign], tags: list[Tag]
    ) -> dict[str, int]:
        by_username = {p.user.username: p.user for p in people}
        builder = DemoBuilder(
            rng=rng,
            now=timezone.now().replace(microsecond=0),
            teams={plan.key: Team.objects.get(name=plan.name) for plan in TEAMS},
            reps={plan.key: [by_username[u] for u, _ in plan.reps] for plan in TEAMS},
            managers={plan.key: by_username[plan.manager[0]] for plan in TEAMS},
            marketing=by_username["marketing"],
            campaigns=campaigns,
            tags=tags,
            # Only needed when seeding on top of earlier data; an empty database costs two empty queries.
            taken_emails=set(Lead.objects.exclude(email="").values_list("email", flat=True)),
            taken_phones=set(Lead.objects.exclude(phone="").values_list("phone", flat=True)),
        )
        plans = [builder.lead() for _ in range(count)]
        # One INSERT per batch; the ids come back (RETURNING) and key the dependent rows.
        Lead.objects.bulk_create([p.lead for p in plans], batch_size=BATCH_SIZE)
        for p in plans:
            p.card.lead_id = p.lead.pk
        LeadScore.objects.bulk_update(
            [p.card for p in plans], ["score", "grade", "score_updated_at"], batch_size=BATCH_SIZE
        )
        through = Lead.tags.through
        tag_rows, changes, interactions = [], [], []
        for p in plans:
            tag_rows += [through(lead_id=p.lead.pk, tag_id=tag_id) for tag_id in p.tag_ids]
            for change in p.stage_changes:
                change.lead = p.lead
                changes.append(change)
            for interaction in p.interactions:
                interaction.lead = p.lead
                interactions.append(interaction)
        through.objects.bulk_create(tag_rows, batch_size=BATCH_SIZE)
        LeadStageChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
        Interaction.objects.bulk_create(interactions, batch_size=BATCH_SIZE)
        return {"leads": len(plans), "interactions": len(interactions), "stage_changes": len(changes)}

    def _print_users(self, people: list[DemoUser]) -> None:
        header = ("username", "role", "team", "password")
        rows = [header] + [(p.user.username, p.role.value, p.team or "—", p.password) for p in people]
        widths = [max(display_width(row[i]) for row in rows) for i in range(len(header))]
        self.stdout.write("\nDemo users (sign in at /login/):")
        for i, row in enumerate(rows):
            self.stdout.write(("  " + "  ".join(pad(cell, widths[j]) for j, cell in enumerate(row))).rstrip())
            if i == 0:
                self.stdout.write("  " + "  ".join("-" * w for w in widths))
