"""The canonical record of the population database: the one list every stage agrees on.

``RAW_FIELDS`` are the columns a source adapter fills in ``staging.population_record`` (text, as received, after
renaming the source's own field names through the source registry). ``GOLDEN_ATTRIBUTES`` are the attributes of
``population.person`` chosen by survivorship (一数一源) with lineage; the migration ``sql/migrations`` declares the
same columns and a test keeps the two in step.
"""

from __future__ import annotations

# (column, Chinese term) for every field a source may deliver.
RAW_FIELDS: list[tuple[str, str]] = [
    ("id_type", "证件类型"),
    ("id_number", "证件号码 (公民身份号码/护照号码/永久居留身份证号码)"),
    ("name", "姓名"),
    ("sex", "性别"),
    ("birth_date", "出生日期"),
    ("ethnicity", "民族"),
    ("nationality", "国籍"),
    ("hukou_division", "户籍地行政区划代码"),
    ("hukou_address", "户籍地址"),
    ("residence_division", "居住地行政区划代码"),
    ("residence_address", "居住地址"),
    ("residence_permit_no", "居住证号码"),
    ("population_status", "人口状态"),
    ("death_date", "死亡日期"),
    ("marital_status", "婚姻状况"),
    ("employer", "就业单位"),
    ("employer_uscc", "就业单位统一社会信用代码"),
    ("social_insurance_status", "社会保险参保状态"),
    ("education_level", "学历"),
    ("school", "学校"),
    ("event_type", "业务事项 (出生/死亡/结婚/离婚/迁入/迁出)"),
    ("event_date", "业务发生日期"),
]
RAW_FIELD_NAMES: list[str] = [name for name, _ in RAW_FIELDS]

# Attributes of the golden person chosen by the authority registry; each has a lineage column src_<name>.
GOLDEN_ATTRIBUTES: list[str] = [
    "name",
    "sex",
    "birth_date",
    "ethnicity",
    "nationality",
    "hukou_division",
    "hukou_address",
    "residence_division",
    "residence_address",
    "residence_permit_no",
    "population_status",
    "death_date",
    "marital_status",
    "employer",
    "employer_uscc",
    "social_insurance_status",
    "education_level",
    "school",
]

# Identity document kinds (证件类型).
ID_RIC = "RIC"            # 居民身份证 / 公民身份号码 (GB 11643)
ID_PASSPORT = "PASSPORT"  # 外国护照
ID_PRP = "PRP"            # 外国人永久居留身份证
ID_TYPES = (ID_RIC, ID_PASSPORT, ID_PRP)

# Coded values (GB/T 2261.1 sex; our own small vocabularies elsewhere, documented in docs/data-model.md).
SEX_CODES = {"1": "男", "2": "女", "9": "未说明"}
POPULATION_STATUS = {"active": "正常", "deceased": "死亡", "moved_out": "迁出"}
MARITAL_STATUS = {"10": "未婚", "20": "已婚", "30": "丧偶", "40": "离婚"}  # GB/T 2261.2
