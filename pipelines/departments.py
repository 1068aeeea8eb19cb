"""The departments that own data, as one small enum: the only place their codes are spelled.

The code is what every table stores (``department`` columns); the Chinese name is what reports show.
"""

from __future__ import annotations

from enum import StrEnum


class Department(StrEnum):
    PSB = "psb"                      # 市公安局: 户籍与居住登记, 居住证, 境外人员住宿登记
    HEALTH = "health"                # 市卫生健康委员会: 出生医学证明, 死亡医学证明
    CIVIL_AFFAIRS = "civil_affairs"  # 市民政局: 婚姻登记
    HRSS = "hrss"                    # 市人力资源和社会保障局: 就业登记, 社会保险
    EDUCATION = "education"          # 市教育委员会: 学籍
    SAMR = "samr"                    # 市市场监督管理局: 法人登记 (legal-person database)
    PLANNING = "planning"            # 市规划和自然资源局: 空间地理 (spatial database)

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[Department, str] = {
    Department.PSB: "市公安局",
    Department.HEALTH: "市卫生健康委员会",
    Department.CIVIL_AFFAIRS: "市民政局",
    Department.HRSS: "市人力资源和社会保障局",
    Department.EDUCATION: "市教育委员会",
    Department.SAMR: "市市场监督管理局",
    Department.PLANNING: "市规划和自然资源局",
}
