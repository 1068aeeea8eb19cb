"""Word lists of the simulated departments: names, districts and roads, ethnic groups, nationalities, employers.

Every character is common (GB 2312 level 1 or 2), so every value encodes in GBK — the residence-permit CSV is
written in GBK and a test keeps it so. Weights are rough shares, good enough for a realistic mix, not statistics.
"""

from __future__ import annotations

# Shanghai districts of today: (code, name, weight ~ resident population share, roads).
DISTRICTS: list[tuple[int, str, float, tuple[str, ...]]] = [
    (310101, "黄浦区", 0.026, ("南京东路", "淮海中路", "西藏南路", "复兴东路", "中山南路", "河南中路")),
    (310104, "徐汇区", 0.045, ("漕溪北路", "衡山路", "肇嘉浜路", "天钥桥路", "宜山路", "龙华中路")),
    (310105, "长宁区", 0.028, ("愚园路", "延安西路", "天山路", "仙霞路", "虹桥路", "定西路")),
    (310106, "静安区", 0.039, ("南京西路", "延安中路", "共和新路", "北京西路", "江宁路", "大统路")),
    (310107, "普陀区", 0.051, ("曹杨路", "真北路", "长寿路", "武宁路", "中山北路", "金沙江路")),
    (310109, "虹口区", 0.030, ("四川北路", "曲阳路", "大连路", "临平路", "西江湾路", "广粤路")),
    (310110, "杨浦区", 0.051, ("国权路", "黄兴路", "控江路", "淞沪路", "平凉路", "长阳路")),
    (310112, "闵行区", 0.107, ("莘松路", "七莘路", "都市路", "沪闵路", "虹梅南路", "剑川路")),
    (310113, "宝山区", 0.088, ("牡丹江路", "友谊路", "长江西路", "泰和路", "殷高西路", "呼兰路")),
    (310114, "嘉定区", 0.075, ("城中路", "博乐路", "墨玉南路", "沪宜公路", "嘉罗公路", "清河路")),
    (310115, "浦东新区", 0.230, ("世纪大道", "张杨路", "浦东南路", "金桥路", "川沙路", "秀浦路", "锦绣路", "东方路")),
    (310116, "金山区", 0.034, ("卫零路", "龙航路", "蒙山路", "板桥西路", "金山大道")),
    (310117, "松江区", 0.078, ("人民北路", "中山中路", "广富林路", "文诚路", "荣乐东路", "谷阳北路")),
    (310118, "青浦区", 0.052, ("城中北路", "公园路", "青松路", "淀山湖大道", "华新路")),
    (310120, "奉贤区", 0.047, ("解放东路", "环城东路", "运河北路", "望园路", "金海公路")),
    (310151, "崇明区", 0.019, ("八一路", "人民路", "鼓浪屿路", "东门路", "南门路")),
]

# Codes that may appear on 公民身份号码 of Shanghai-born people, with the years a birth could receive them
# (first, last; None = open), weight within the years it applies. Matches python-stdnum's cn/loc data, so every
# clean generated number passes stdnum.cn.ric.validate. Retired codes: 310103 卢湾 (to 2011), 310108 闸北
# (to 2015), 310119 南汇 (2001-2009), 310230 崇明县 (1982-2016).
SH_ID_CODES: list[tuple[int, int | None, int | None, float]] = [
    (310101, None, None, 0.05), (310103, None, 2011, 0.03), (310104, None, None, 0.06),
    (310105, None, None, 0.04), (310106, None, None, 0.03), (310107, None, None, 0.06),
    (310108, None, 2015, 0.04), (310109, None, None, 0.05), (310110, None, None, 0.07),
    (310112, 1981, None, 0.08), (310113, 1988, None, 0.07), (310114, 1992, None, 0.05),
    (310115, 1992, None, 0.16), (310116, 1997, None, 0.03), (310117, 1998, None, 0.05),
    (310118, 1999, None, 0.04), (310119, 2001, 2009, 0.02), (310120, 2001, None, 0.04),
    (310151, 2016, None, 0.02), (310230, 1982, 2016, 0.03),
]
RETIRED_ID_CODES = (310103, 310108, 310119, 310230)

# Other provinces (migrants holding a 居住证), first year the code could be on a birth's number.
OTHER_ID_CODES: list[tuple[int, int | None, float]] = [
    (320102, 1983, 0.14), (330106, 1983, 0.10), (340104, 1983, 0.16), (410105, 1983, 0.10),
    (420106, 1983, 0.07), (510107, 1990, 0.07), (360102, 1983, 0.08), (370102, 1983, 0.07),
    (430102, 1983, 0.06), (350102, 1983, 0.06),
    # open since before 1980: people born before the 1983 city-district codes
    (110101, None, 0.02), (110105, None, 0.02), (120101, None, 0.02), (120103, None, 0.01),
]

# A division field with a retired code instead of today's (the planted W_DIVISION_RETIRED defect).
RETIRED_FOR_CURRENT = {310101: 310103, 310106: 310108, 310151: 310230, 310115: 310119}
UNKNOWN_DIVISION = 310199   # not a GB/T 2260 code (on an ID: ID_UNKNOWN_DIVISION; in a field: BAD_DIVISION)
POSTDATING_DIVISION = 310151  # 崇明区, in use from 2016: on the ID of someone born earlier (W_DIVISION_POSTDATES_BIRTH)

SURNAMES: list[tuple[str, float]] = [
    ("王", 7.1), ("李", 7.0), ("张", 6.9), ("刘", 5.4), ("陈", 4.6), ("杨", 3.1), ("黄", 2.1), ("赵", 2.0),
    ("吴", 2.0), ("周", 1.9), ("徐", 1.7), ("孙", 1.5), ("马", 1.5), ("朱", 1.3), ("胡", 1.3), ("郭", 1.2),
    ("何", 1.2), ("高", 1.1), ("林", 1.1), ("罗", 1.0), ("郑", 1.0), ("梁", 0.9), ("谢", 0.9), ("宋", 0.8),
    ("唐", 0.8), ("许", 0.8), ("韩", 0.7), ("冯", 0.7), ("邓", 0.7), ("曹", 0.7), ("彭", 0.6), ("曾", 0.6),
    ("肖", 0.6), ("田", 0.6), ("董", 0.5), ("袁", 0.5), ("潘", 0.5), ("于", 0.5), ("蒋", 0.5), ("蔡", 0.5),
    ("余", 0.5), ("杜", 0.5), ("叶", 0.5), ("程", 0.5), ("苏", 0.4), ("魏", 0.4), ("吕", 0.4), ("丁", 0.4),
    ("任", 0.4), ("沈", 0.5), ("姚", 0.4), ("卢", 0.4), ("姜", 0.4), ("崔", 0.4), ("钟", 0.4), ("谭", 0.3),
    ("陆", 0.5), ("汪", 0.3), ("范", 0.3), ("金", 0.3), ("石", 0.3), ("廖", 0.3), ("贾", 0.3), ("夏", 0.3),
    ("韦", 0.3), ("付", 0.3), ("方", 0.3), ("白", 0.3), ("邹", 0.3), ("孟", 0.3), ("熊", 0.3), ("秦", 0.3),
    ("邱", 0.3), ("江", 0.3), ("尹", 0.3), ("薛", 0.3), ("闫", 0.2), ("段", 0.2), ("雷", 0.2), ("侯", 0.2),
    ("龙", 0.2), ("史", 0.2), ("陶", 0.2), ("黎", 0.2), ("贺", 0.2), ("顾", 0.4), ("毛", 0.2), ("郝", 0.2),
    ("龚", 0.2), ("邵", 0.2), ("万", 0.2), ("钱", 0.3), ("严", 0.2), ("武", 0.2), ("戴", 0.2), ("莫", 0.2),
    ("孔", 0.2), ("汤", 0.2), ("欧阳", 0.05), ("司马", 0.02), ("诸葛", 0.02), ("上官", 0.02),
]

# Given-name characters by sex, each with a look-alike or same-sounding variant (the hrss "different character"
# conflict: 张伟 in 公安, 张玮 in 人社).
GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳峰建国文志海东晨嘉子豪博轩睿泽毅诚"
GIVEN_MALE_VARIANT = "玮蔷垒君永洁滔铭潮钢苹晖朋桦非新博彬雨皓恺键骏凡序凝隆琳扬锋健帼雯智凯冬辰佳梓皓搏宣瑞择义成"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英玲桂兰红燕梅琳雪婷慧颖佳欣悦洁莉萍倩璐瑶琪怡晶蕾月珍凤妍雯"
GIVEN_FEMALE_VARIANT = "方纳闵婧莉燕鹃夏绣瑛苓贵岚虹艳枚林薛亭惠莹家馨跃婕丽平茜露遥祺仪菁雷越真风研文"

ETHNICITIES: list[tuple[str, float]] = [
    ("汉族", 0.975), ("回族", 0.005), ("满族", 0.004), ("蒙古族", 0.002), ("朝鲜族", 0.003),
    ("土家族", 0.003), ("苗族", 0.002), ("壮族", 0.003), ("藏族", 0.001), ("维吾尔族", 0.002),
]

# Foreign residents: (alpha-3, ISO 3166 numeric, weight, passport prefix, digits after it, family names,
# given names: four men's, then four women's)
NATIONALITIES: list[tuple[str, int, float, str, int, tuple[str, ...], tuple[str, ...]]] = [
    ("USA", 840, 0.16, "5", 8, ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "MILLER", "DAVIS", "WILSON"),
     ("JAMES", "ROBERT", "MICHAEL", "DAVID", "MARY", "JENNIFER", "LINDA", "SARAH")),
    ("JPN", 392, 0.20, "TR", 7, ("SATO", "SUZUKI", "TAKAHASHI", "TANAKA", "WATANABE", "ITO", "YAMAMOTO", "NAKAMURA"),
     ("HIROSHI", "TAKESHI", "KENJI", "HARUTO", "AKIKO", "YOKO", "YUKI", "SAKURA")),
    ("KOR", 410, 0.18, "M", 8, ("KIM", "LEE", "PARK", "CHOI", "JUNG", "KANG", "CHO", "YOON"),
     ("MINJUN", "JIHO", "DOYUN", "HYUNWOO", "SEOYEON", "HAYOON", "SUBIN", "JIWOO")),
    ("DEU", 276, 0.09, "C", 8, ("MULLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER", "MEYER", "WAGNER", "BECKER"),
     ("LUKAS", "LEON", "FELIX", "JONAS", "ANNA", "LENA", "MARIE", "SOPHIE")),
    ("FRA", 250, 0.07, "19FV", 5, ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND"),
     ("LOUIS", "GABRIEL", "JULES", "HUGO", "EMMA", "CHLOE", "LEA", "CAMILLE")),
    ("GBR", 826, 0.07, "1", 8, ("TAYLOR", "EVANS", "THOMAS", "ROBERTS", "WALKER", "WRIGHT", "HUGHES", "GREEN"),
     ("OLIVER", "GEORGE", "HARRY", "JACK", "AMELIA", "OLIVIA", "ISLA", "EMILY")),
    ("AUS", 36, 0.05, "PA", 7, ("CLARKE", "MORRIS", "KELLY", "RYAN", "MURPHY", "CAMPBELL", "YOUNG", "KING"),
     ("NOAH", "WILLIAM", "LIAM", "ETHAN", "CHARLOTTE", "MIA", "GRACE", "RUBY")),
    ("CAN", 124, 0.06, "AB", 6, ("TREMBLAY", "GAGNON", "ROY", "COTE", "BOUCHARD", "GAUTHIER", "MORIN", "LAVOIE"),
     ("NATHAN", "SAMUEL", "ALEXANDRE", "FELIX", "OLIVIA", "EMMA", "ZOE", "LEAH")),
    ("SGP", 702, 0.08, "K", 7, ("TAN", "LIM", "LEE", "NG", "ONG", "WONG", "GOH", "CHUA"),
     ("WEI MING", "KAI EN", "JUN JIE", "ZHI HAO", "JIA HUI", "XIN YI", "HUI MIN", "SHU TING")),
    ("ITA", 380, 0.04, "YA", 7, ("ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI"),
     ("FRANCESCO", "ALESSANDRO", "LORENZO", "MATTEO", "GIULIA", "SOFIA", "AURORA", "CHIARA")),
]

# Employers: "上海" + trade name + industry + legal form.
EMPLOYER_TRADE = ("申城", "浦江", "东方", "金桥", "张江", "长江", "明珠", "新华", "锦程", "光华", "恒信", "联创",
                  "博远", "瑞丰", "鼎盛", "宏达", "天成", "汇通", "信达", "永安", "嘉禾", "中创", "华申", "沪联")
EMPLOYER_INDUSTRY = ("科技", "贸易", "实业", "信息技术", "建设工程", "物流", "餐饮管理", "医疗器械", "文化传媒",
                     "电子", "机械制造", "投资管理", "商务咨询", "物业管理")
EMPLOYER_FORM = ("有限公司", "有限公司", "有限公司", "股份有限公司")
INSURANCE_STATUS: list[tuple[str, float]] = [("正常参保", 0.93), ("暂停参保", 0.05), ("终止参保", 0.02)]

SCHOOL_NAMES = ("实验", "第一", "第二", "第三", "育才", "明德", "新华", "建设", "光明", "向阳")
UNIVERSITIES = ("复旦大学", "上海交通大学", "同济大学", "华东师范大学", "上海财经大学", "上海大学", "华东理工大学",
                "东华大学", "上海理工大学", "上海师范大学")
# education levels (学历层次): name, first and last age, share of the age group enrolled
LEVELS: list[tuple[str, int, int, float]] = [
    ("小学", 6, 11, 0.98), ("初中", 12, 14, 0.98), ("高中", 15, 17, 0.95), ("本科", 18, 21, 0.55),
    ("硕士研究生", 22, 24, 0.15),
]
