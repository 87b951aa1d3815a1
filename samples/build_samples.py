#!/usr/bin/env python3
"""Regenerate the zhiwen sample corpus in ``samples/corpus/``.

All document text lives in this script; running it rewrites every file in
``corpus/`` deterministically (same bytes on every run):

* text formats are written as explicit bytes in their target encodings
  (UTF-8, UTF-8 with BOM, GBK, Big5) with ``\\n`` line endings;
* ``数据备份指南.docx`` is built with python-docx, with fixed core properties
  and the zip re-packed with a fixed timestamp;
* ``客户服务规范.pdf`` is built with reportlab in ``invariant`` mode (fixed
  creation date and document ID).

PDF font note: the PDF uses reportlab's built-in CID font ``STSong-Light``
(``reportlab.pdfbase.cidfonts.UnicodeCIDFont``, encoding ``UniGB-UCS2-H``).
The font is not embedded, so the file stays tiny, and the text is stored as
UCS-2 code units, which pypdf maps back to Unicode via the predefined CMap:
``pypdf.PdfReader(path).pages[i].extract_text()`` returns readable Chinese
(checked by ``verify()`` below). No external TTF font is needed.

Usage::

    python samples/build_samples.py            # build + verify
    python samples/build_samples.py --no-verify

Requires: python-docx, reportlab (dev extra); pypdf and charset-normalizer for
verification.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

MAX_BYTES = 100 * 1024

# ---------------------------------------------------------------------------
# 1. 差旅报销制度.md  (UTF-8 Markdown)
# ---------------------------------------------------------------------------

TRAVEL_MD = """\
# 星河科技差旅报销制度

> 文件编号：XH-FIN-003　版本：2026年版　生效日期：2026年1月1日　归口部门：财务部

## 一、总则

本制度适用于星河科技有限公司（以下简称“公司”）全体正式员工、试用期员工及经批准的外派人员因公出差所发生的费用报销。出差应遵循“事前申请、事中控制、事后报销”的原则：所有出差须在OA系统提交《出差申请单》，经直属上级批准后方可出行。未经批准擅自出差的，相关费用一律不予报销。

## 二、城市分级

- 一线城市：北京、上海、广州、深圳；
- 二线城市：杭州、南京、成都、武汉、西安、苏州等省会城市及计划单列市；
- 三线及以下城市：除上述城市以外的其他地区。

## 三、住宿标准

| 城市级别 | 普通员工 | 经理及以上 |
| --- | --- | --- |
| 一线城市 | 每晚不超过600元 | 每晚不超过800元 |
| 二线城市 | 每晚不超过450元 | 每晚不超过600元 |
| 三线及以下城市 | 每晚不超过350元 | 每晚不超过450元 |

一线城市住宿标准为普通员工每晚不超过600元、经理及以上每晚不超过800元。住宿费用超出标准的部分由员工自行承担。两名同性别员工同时出差的，原则上应合住一间标准间。住宿须取得酒店开具的增值税专用发票，发票抬头为“星河科技有限公司”。

## 四、伙食补助与市内交通

出差期间按自然日发放伙食补助：一线城市每人每天100元，其他城市每人每天80元。伙食补助实行包干制，无需提供餐饮发票。若接待方已统一安排用餐，则当天伙食补助减半发放。

市内交通补助为每人每天50元，包干使用。因业务需要乘坐出租车或网约车且单次超过100元的，须在报销单中注明事由。

## 五、城际交通

- 飞机：普通员工限乘经济舱，总监及以上可乘坐公务舱；应尽量提前7天订票以获得折扣。
- 火车：高铁、动车限二等座，部门总监及以上可乘坐一等座；夜间乘车时间超过6小时的，可购买卧铺。
- 自驾：须事先报批，按每公里0.8元给予补贴，过路费、停车费凭票据报销。

## 六、报销流程与时限

1. 员工应在出差结束后15个工作日内，通过OA系统提交《差旅费报销单》，并上传全部发票及行程单的电子影像。
2. 超过15个工作日提交的，须附书面说明并经部门总监特批；出差结束超过60天仍未提交的，不予报销。
3. 审批链：直属上级审核 → 部门负责人审批 → 财务部复核；单笔报销金额超过2万元的，还须经分管副总裁审批。
4. 财务部在审批完成后5个工作日内将报销款打入员工工资卡。

## 七、借款与冲账

预计差旅费用超过5000元的，员工可在出差前申请备用金借款，借款金额不超过预算的80%。出差结束后须在报销时一并冲销借款，多退少补。

## 八、附则

本制度由财务部负责解释，自2026年1月1日起施行，原《差旅费管理办法（2022年版）》同时废止。如有疑问，请联系财务部报销专员王丽（分机8021）。
"""

# ---------------------------------------------------------------------------
# 2. 员工手册.txt  (GBK)
# ---------------------------------------------------------------------------

HANDBOOK_TXT = """\
星河科技员工手册（2026年版）

第一章 总则

一、本手册适用于星河科技有限公司（以下简称“公司”）全体员工，是员工了解公司制度、明确自身权利和义务的基本依据。
二、本手册由人力资源部负责制定、解释和修订，经公司管理委员会审议通过后发布，自2026年1月1日起执行。
三、员工在入职时应认真阅读本手册，并签署《员工手册确认书》。

第二章 工作时间与考勤

一、公司实行标准工时制，每周工作五天，周一至周五上午9:00至下午6:00，其中中午12:00至13:00为午休时间，每天工作8小时，每周工作40小时。
二、研发部门可申请弹性工作制，核心工作时间为上午10:00至下午4:00，每天到岗时间不得晚于上午10:00，且每天工作时长不少于8小时。
三、员工上下班须通过门禁或企业微信打卡。迟到或早退30分钟以内的，每次扣除当月绩效分1分；每月累计迟到3次以上的，由部门负责人进行谈话提醒。
四、因工作需要加班的，须事先在OA系统提交加班申请。工作日加班可安排调休，调休须在加班之日起3个月内使用完毕。

第三章 入职与试用期

一、新员工入职时须提交身份证、学历证书、离职证明及体检报告等材料。
二、新员工试用期为3个月。试用期内，员工工资不低于转正后工资的80%。
三、试用期满前两周，由直属上级和人力资源部共同进行转正评估。评估合格的，按期转正；表现特别优秀的，经部门负责人申请可提前转正，但试用期最短不少于1个月。
四、试用期内员工提出离职的，应提前3天通知公司；转正后员工提出离职的，应提前30天以书面形式通知公司。

第四章 假期

一、法定节假日：员工依照国家规定享受元旦、春节、清明节、劳动节、端午节、中秋节、国庆节等法定节假日。
二、年休假：员工累计工作已满1年不满10年的，年休假5天；已满10年不满20年的，年休假10天；已满20年的，年休假15天。年休假须至少提前3个工作日在OA系统申请，经直属上级批准后方可休假。当年未休完的年休假可顺延至次年3月31日，逾期作废。
三、病假：员工因病需要休假的，须提供二级及以上医院出具的病假证明。每年前5天病假按全额工资发放，超过部分按当地规定的病假工资标准发放。
四、婚假：符合法定结婚条件的员工，可享受婚假10天（含法定婚假3天及公司福利婚假7天），须在领取结婚证后一年内一次性休完。
五、产假与陪产假：女员工生育可享受产假158天；男员工在配偶生育期间可享受陪产假10天。
六、丧假：员工直系亲属去世的，可享受丧假3天。

第五章 薪酬与福利

一、公司于每月10日以银行转账方式发放上一个自然月的工资，遇节假日提前至最近的工作日发放。
二、公司依法为员工缴纳养老、医疗、失业、工伤、生育保险及住房公积金。
三、公司每年为员工安排一次免费健康体检，并为正式员工购买补充商业医疗保险。
四、员工生日当月可领取200元生日礼金；每年春节发放节日慰问品。

第六章 行为规范

一、员工应遵守国家法律法规和公司规章制度，诚实守信，爱岗敬业。
二、员工不得利用职务之便谋取私利，不得收受供应商、客户的礼品、礼金或有价证券。确实无法拒收的，应在3个工作日内上交人力资源部登记处理。
三、员工应保守公司商业秘密，未经批准不得对外披露公司的技术资料、客户信息和财务数据。
四、办公区域内禁止吸烟，请在指定吸烟区吸烟。

第七章 培训与发展

一、新员工入职后一周内须参加公司组织的入职培训，内容包括企业文化、规章制度和信息安全等。
二、公司每年为每位员工提供不少于40学时的培训机会，员工可在学习平台上自主选课。
三、公司每年进行两次绩效考核，分别在6月和12月，考核结果作为调薪、晋升和年终奖发放的依据。

第八章 附则

一、本手册未尽事宜，按国家有关法律法规及公司其他规章制度执行。
二、如对本手册内容有疑问，请联系人力资源部（分机8001，邮箱hr@xinghe.example）。
"""

# ---------------------------------------------------------------------------
# 3. 知问网关产品说明.html  (UTF-8 HTML)
# ---------------------------------------------------------------------------

PRODUCT_HTML = """\
<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>知问网关产品说明 - 星河科技</title>
<style>
body { font-family: sans-serif; max-width: 860px; margin: 0 auto; }
table { border-collapse: collapse; }
td, th { border: 1px solid #999; padding: 4px 8px; }
</style>
<script>window.dataLayer = window.dataLayer || [];</script>
</head>
<body>
<nav class="site-nav">首页 | 产品中心 | 解决方案 | 文档中心 | 联系我们</nav>
<main>
<h1>知问网关产品说明</h1>
<p>知问网关是星河科技自主研发的高性能API网关，为企业提供统一的接口接入、流量治理、安全防护与可观测能力。当前最新版本为v2.5.0，已在金融、零售、制造等行业的200多家客户中投入生产使用。</p>

<h2>一、核心功能</h2>
<ul>
<li>统一接入：支持HTTP/1.1、HTTP/2、gRPC和WebSocket协议，可在同一端口上同时处理多种协议的请求。</li>
<li>身份认证：支持API Key、JWT和OAuth 2.0三种认证方式，并可对接企业LDAP目录。</li>
<li>流量治理：提供基于令牌桶算法的限流、熔断、重试和灰度发布能力，限流规则可精确到单个API和单个调用方。</li>
<li>安全防护：内置IP黑白名单、防重放攻击和请求签名校验，支持国密SM2/SM4算法。</li>
<li>可观测性：原生输出Prometheus指标，支持OpenTelemetry链路追踪，访问日志可对接Kafka和Elasticsearch。</li>
<li>插件扩展：支持使用Lua或WebAssembly编写自定义插件，插件可热加载，无需重启网关。</li>
</ul>

<h2>二、性能指标</h2>
<p>在4核8GB内存的单节点上，开启认证和限流插件的情况下，知问网关的平均延迟为2毫秒，P99延迟低于5毫秒，单节点吞吐量可达50000 QPS。通过横向扩展节点，集群吞吐量可近似线性增长。</p>
<table>
<thead>
<tr><th>测试项</th><th>指标</th><th>测试条件</th></tr>
</thead>
<tbody>
<tr><td>平均延迟</td><td>2毫秒</td><td>4核8GB，1KB请求体</td></tr>
<tr><td>P99延迟</td><td>低于5毫秒</td><td>4核8GB，1KB请求体</td></tr>
<tr><td>单节点吞吐量</td><td>50000 QPS</td><td>4核8GB，开启认证与限流</td></tr>
<tr><td>最大并发连接数</td><td>100000</td><td>单节点，长连接</td></tr>
<tr><td>配置生效时间</td><td>1秒以内</td><td>集群规模50个节点</td></tr>
</tbody>
</table>

<h2>三、部署要求</h2>
<p>知问网关单节点的最低配置为4核CPU、8GB内存和50GB磁盘空间，生产环境建议至少部署3个节点以保证高可用。操作系统要求Linux内核版本4.18及以上，支持使用Docker 20.10及以上版本或Kubernetes 1.24及以上版本部署。配置中心依赖etcd 3.5及以上版本。</p>
<p>网关默认使用8080端口处理业务流量，管理控制台默认使用9090端口。首次登录管理控制台的默认账号为admin，登录后系统会强制要求修改初始密码。</p>

<h2>四、版本与授权</h2>
<p>知问网关提供社区版、专业版和企业版三种版本。社区版免费使用，最多支持3个节点；专业版按节点数量订阅，每个节点每年12000元；企业版提供不限节点数的授权及7×24小时技术支持，价格请联系销售团队。</p>

<h2>五、技术支持</h2>
<p>购买专业版或企业版的客户可通过客服热线400-800-1234或邮箱support@xinghe.example获取技术支持。社区版用户可在开发者论坛提问。</p>
</main>
<footer class="site-footer">
<p>版权所有 © 2026 星河科技 | 京ICP备00000000号 | 隐私政策 | 联系我们</p>
</footer>
</body>
</html>
"""

# ---------------------------------------------------------------------------
# 4. 資訊安全規範.txt  (Traditional Chinese, Big5)
# ---------------------------------------------------------------------------

SECURITY_TXT = """\
星河科技資訊安全規範

文件編號：XH-SEC-001
版本：第三版
生效日期：2026年1月1日
主管單位：資訊安全部

第一條　目的
為保護公司資訊資產的機密性、完整性與可用性，降低資訊安全風險，確保業務持續運作，特制定本規範。

第二條　適用範圍
本規範適用於星河科技全體員工、約聘人員、實習生，以及經授權存取公司資訊系統的外部廠商人員。所有人員於到職或開始合作前，須簽署《資訊安全保密同意書》。

第三條　帳號與密碼管理
一、每位使用者僅可使用本人帳號，嚴禁與他人共用帳號或將密碼告知他人。
二、密碼長度至少12個字元，且須包含大寫字母、小寫字母、數字及特殊符號中的至少三類。
三、密碼每90天必須更換一次，且不得重複使用最近5次用過的密碼。
四、連續輸入錯誤密碼達5次時，帳號將自動鎖定30分鐘。
五、存取公司VPN、郵件系統及雲端管理後台時，必須啟用多因素驗證。

第四條　終端設備安全
一、筆記型電腦必須啟用全磁碟加密，Windows電腦使用BitLocker，macOS電腦使用FileVault。
二、電腦閒置超過10分鐘須自動鎖定螢幕，離開座位時應立即手動鎖定。
三、禁止安裝未經資訊安全部核准的軟體，所有電腦須安裝公司指定的防毒軟體並保持自動更新。
四、公司電腦的USB儲存裝置功能預設停用，如因業務需要使用，須經部門主管及資訊安全部核准。
五、筆記型電腦不得放置於無人看管的車輛內，出差期間應隨身攜帶。

第五條　資料分級與保護
一、公司資料依敏感程度分為公開、內部、機密、極機密四個等級。
二、機密及以上等級的資料不得透過個人電子郵件、個人雲端硬碟或即時通訊軟體傳送。
三、對外傳送機密資料時，須使用公司核准的加密傳輸工具，並將解密密碼以其他管道另行通知收件人。
四、紙本機密文件使用完畢後，須以碎紙機銷毀，不得直接丟入垃圾桶。

第六條　網路使用
一、員工於公司外部存取內部系統時，必須透過公司VPN連線。
二、禁止私自架設無線基地台，禁止將公司電腦連接至未經加密的公共無線網路。
三、收到來源不明的電子郵件時，不得點擊其中的連結或開啟附件，並應轉寄至資訊安全部進行檢查。

第七條　資安事件通報
一、資安事件包括但不限於：電腦中毒、帳號疑似遭盜用、筆記型電腦或手機遺失、資料外洩、收到勒索訊息等。
二、任何人員發現資安事件時，須於1小時內通報資訊安全部，通報專線為分機6110，電子郵件為security@xinghe.example。
三、資訊安全部接獲通報後，應立即進行初步處置；屬於重大資安事件者，須於4小時內向公司管理層提出報告。
四、通報人員應保留相關證據，不得自行刪除紀錄或重新安裝系統。

第八條　教育訓練
一、新進人員須於到職後30天內完成資訊安全教育訓練課程並通過測驗。
二、全體員工每年至少參加一次資訊安全教育訓練。
三、資訊安全部每季度舉辦一次社交工程演練，測試員工對釣魚郵件的警覺性。

第九條　罰則
違反本規範者，依情節輕重給予口頭警告、書面警告、記過或解除勞動合約等處分；造成公司損失者，應負賠償責任；涉及違法者，移送司法機關處理。

第十條　附則
本規範由資訊安全部負責解釋與修訂，每年至少檢討一次。如有疑問，請聯絡資訊安全部（分機6110）。
"""

# ---------------------------------------------------------------------------
# 5. 数据备份指南.docx  (python-docx)
#    Each block: ("h1"|"h2"|"p"|"table", payload)
# ---------------------------------------------------------------------------

BACKUP_TITLE = "星河科技数据备份指南"

BACKUP_BLOCKS: list[tuple[str, object]] = [
    ("p", "文件编号：XH-OPS-007　版本：2026年版　归口部门：运维部"),
    ("h1", "一、目的与适用范围"),
    ("p", "为防止因硬件故障、误操作、恶意攻击或自然灾害造成数据丢失，保障业务系统在发生故障后能够及时恢复，特制定本指南。"
          "本指南适用于公司所有生产环境的数据库、文件存储、代码仓库以及知问网关的配置数据。"),
    ("h1", "二、备份策略"),
    ("h2", "2.1 备份频率"),
    ("p", "所有生产数据库每日凌晨2点执行增量备份，每周日凌晨2点执行全量备份（当日不再另行执行增量备份）。"
          "代码仓库每日凌晨3点进行一次全量镜像。备份任务由统一的备份调度平台自动触发，无需人工操作。"),
    ("h2", "2.2 保留期限"),
    ("p", "所有备份数据默认保留30天，超过30天的备份由系统自动清理。"
          "每月最后一个周日的全量备份作为月度归档，保留12个月；涉及财务数据的月度归档保留5年。"),
    ("h2", "2.3 存储位置"),
    ("p", "备份数据首先写入北京亦庄主机房的备份存储，随后同步复制到上海机房，作为异地备份。"
          "主机房与上海机房之间通过专线传输，异地复制须在备份完成后6小时内完成。"),
    ("table", [
        ["备份类型", "执行时间", "保留期限", "存储位置"],
        ["增量备份", "每日凌晨2点", "30天", "北京亦庄主机房 + 上海机房"],
        ["全量备份", "每周日凌晨2点", "30天", "北京亦庄主机房 + 上海机房"],
        ["月度归档", "每月最后一个周日", "12个月（财务数据5年）", "上海机房"],
        ["代码仓库镜像", "每日凌晨3点", "30天", "北京亦庄主机房 + 上海机房"],
    ]),
    ("h1", "三、备份安全"),
    ("p", "所有备份文件在写入存储前均使用AES-256算法加密，加密密钥由资讯安全部统一保管，并与备份数据分开存放。"
          "备份存储仅允许备份服务账号写入，任何人员不得手工删除备份文件。"),
    ("h1", "四、恢复目标与恢复演练"),
    ("h2", "4.1 恢复目标"),
    ("p", "核心业务系统的恢复点目标（RPO）不超过24小时，恢复时间目标（RTO）不超过4小时。"
          "知问网关的配置数据可在30分钟内完成恢复。"),
    ("h2", "4.2 恢复演练"),
    ("p", "运维部每季度组织一次恢复演练，随机抽取至少一个生产数据库的备份在隔离环境中进行恢复，"
          "并校验数据完整性。演练结果须形成报告，提交技术委员会审阅。"),
    ("h1", "五、职责分工"),
    ("p", "运维部负责备份系统的建设、日常监控与恢复操作，备份管理员为李强（分机8133）。"
          "各业务系统负责人负责确认本系统的备份范围，并在系统上线前提交《备份需求登记表》。"
          "备份任务失败时，监控系统会在10分钟内发出告警，值班工程师须在当天完成补备份。"),
    ("h1", "六、附则"),
    ("p", "本指南由运维部负责解释，自2026年1月1日起施行。"),
]

# ---------------------------------------------------------------------------
# 6. 客户服务规范.pdf  (reportlab, STSong-Light, 2 pages)
#    Each page: list of ("h"|"p", text)
# ---------------------------------------------------------------------------

PDF_HEADER = "星河科技 内部资料"
PDF_FOOTER = "第 {page} 页 / 共 {total} 页"
PDF_TITLE = "星河科技客户服务规范"

PDF_PAGES: list[list[tuple[str, str]]] = [
    [
        ("t", PDF_TITLE),
        ("h", "一、服务渠道"),
        ("p", "客服热线：400-800-1234，服务时间为工作日9:00-18:00，法定节假日除外。"),
        ("p", "在线客服：通过官网或管理控制台右下角的“在线咨询”入口接入，提供7×24小时服务，"
              "夜间及节假日由值班工程师处理紧急问题。"),
        ("p", "电子邮件：support@xinghe.example，客服人员须在4个工作小时内回复首封邮件。"),
        ("h", "二、服务时效"),
        ("p", "客服热线的接通率目标为95%以上，来电须在20秒内接听。"
              "在线咨询的首次响应时间不超过1分钟。"),
        ("p", "一般咨询类问题应在首次沟通中直接解答；需要技术团队协助的问题，"
              "客服人员须在2小时内创建工单并告知客户工单编号。"),
        ("h", "三、服务用语"),
        ("p", "接听电话时须使用标准开场白：“您好，星河科技客服中心，工号XXXX为您服务。”"
              "通话中不得使用不文明用语，不得与客户争执，不得先于客户挂断电话。"),
        ("p", "客服人员不得向客户承诺超出公司政策范围的赔偿或服务，"
              "遇到无法答复的问题时应如实告知并转交上级处理。"),
    ],
    [
        ("h", "四、投诉处理"),
        ("p", "客户投诉须在24小时内响应，48小时内给出处理方案，7个工作日内完成结案。"
              "处理结果须以电话或邮件方式告知客户，并记录在客户服务系统中。"),
        ("p", "投诉升级机制：一线客服无法解决的投诉升级至客服主管；"
              "超过48小时仍未给出处理方案的，自动升级至客户服务部经理；"
              "涉及重大客户或媒体关注的投诉，须在2小时内报告分管副总裁。"),
        ("h", "五、故障等级与响应"),
        ("p", "P1级故障（知问网关整体不可用）须在15分钟内响应，4小时内恢复服务；"
              "P2级故障（部分功能不可用）须在30分钟内响应，24小时内恢复；"
              "P3级问题（咨询或轻微缺陷）须在1个工作日内响应。"),
        ("h", "六、回访与考核"),
        ("p", "工单结案后3个工作日内，客服中心须对客户进行满意度回访，满意度目标为95%以上。"
              "每月客户满意度低于90%的客服小组，须提交改进计划。"),
        ("p", "客户服务部每季度对客服人员进行一次服务质量考核，考核结果与季度绩效挂钩。"
              "本规范由客户服务部负责解释，自2026年1月1日起施行。"),
    ],
]

# ---------------------------------------------------------------------------
# 7. 常见问题.csv  (UTF-8 with BOM)
# ---------------------------------------------------------------------------

FAQ_ROWS = [
    ("如何重置API Key？",
     "登录管理控制台（默认端口9090），进入“密钥管理”页面，选择需要重置的密钥后点击“重置”按钮。"
     "新密钥立即生效，旧密钥将在5分钟后失效，请及时更新调用方的配置。"),
    ("忘记了管理控制台的密码怎么办？",
     "在登录页点击“忘记密码”，系统会向绑定邮箱发送重置链接，链接有效期为30分钟。"
     "如果是admin账号，可在服务器上执行 zhiwen-gw admin reset-password 命令重置。"),
    ("知问网关支持哪些协议？",
     "支持HTTP/1.1、HTTP/2、gRPC和WebSocket协议。其中gRPC支持从v2.3.0版本开始提供。"),
    ("如何为某个API配置限流？",
     "在管理控制台的“流量治理”页面新建限流规则，选择目标API和调用方，设置每秒请求数上限。"
     "规则保存后1秒内在全部节点生效，超出限制的请求会返回HTTP 429状态码。"),
    ("网关返回502错误是什么原因？",
     "502表示网关无法从上游服务获得有效响应，常见原因是上游服务宕机、端口配置错误或健康检查未通过。"
     "请先在控制台的“上游服务”页面检查节点健康状态。"),
    ("如何查看API的调用日志？",
     "在管理控制台的“日志查询”页面，可按API、调用方和时间范围检索访问日志，默认保留7天。"
     "如需长期保存，可将日志对接到Kafka或Elasticsearch。"),
    ("社区版最多可以部署几个节点？",
     "社区版免费使用，最多支持3个节点；需要更多节点请购买专业版或企业版。"),
    ("升级网关版本会中断业务吗？",
     "不会。知问网关支持滚动升级，逐个节点升级时流量会自动切换到其他节点。"
     "建议升级前先备份配置数据，并在测试环境验证。"),
]

# ---------------------------------------------------------------------------
# 8. 更新日志.jsonl  (UTF-8)
# ---------------------------------------------------------------------------

CHANGELOG = [
    {"version": "v2.0.0", "date": "2025-03-10", "title": "全新架构发布",
     "text": "知问网关v2.0.0采用全新的异步架构，单节点吞吐量提升至30000 QPS；"
             "新增管理控制台，支持可视化配置路由和上游服务。"},
    {"version": "v2.1.0", "date": "2025-05-20", "title": "新增OAuth 2.0认证",
     "text": "新增OAuth 2.0认证插件，可对接企业统一身份认证平台；"
             "限流插件支持按调用方设置独立配额。"},
    {"version": "v2.2.0", "date": "2025-07-15", "title": "可观测性增强",
     "text": "新增OpenTelemetry链路追踪支持；Prometheus指标新增按API统计的P99延迟；"
             "访问日志支持输出到Kafka。"},
    {"version": "v2.3.0", "date": "2025-09-08", "title": "新增 gRPC 支持",
     "text": "v2.3.0 新增 gRPC 支持，可代理gRPC和gRPC-Web请求，并支持gRPC与HTTP/JSON的协议转换；"
             "修复了WebSocket长连接在高并发下偶发断开的问题。"},
    {"version": "v2.4.0", "date": "2025-11-12", "title": "性能优化与国密支持",
     "text": "优化连接池和内存分配，单节点吞吐量从30000 QPS提升至50000 QPS，P99延迟降至5毫秒以下；"
             "新增国密SM2/SM4算法支持。"},
    {"version": "v2.5.0", "date": "2026-01-15", "title": "WebAssembly插件",
     "text": "支持使用WebAssembly编写自定义插件，插件可热加载；"
             "新增API Key一键重置功能，旧密钥在5分钟后自动失效。"},
]

# ---------------------------------------------------------------------------
# README sample questions (kept here too so tests can import them)
# ---------------------------------------------------------------------------

SAMPLE_QA = [
    ("一线城市住宿标准是多少？",
     "普通员工每晚不超过600元（经理及以上不超过800元）", "差旅报销制度.md"),
    ("出差回来多久内要提交报销？", "出差结束后15个工作日内", "差旅报销制度.md"),
    ("工作满5年有几天年假？", "5天（满1年不满10年为5天）", "员工手册.txt"),
    ("知问网关的P99延迟是多少？", "低于5毫秒（平均延迟2毫秒）", "知问网关产品说明.html"),
    ("资安事件多久内要通报？", "须于1小时内通报资讯安全部（分机6110）", "資訊安全規範.txt"),
    ("全量备份在什么时候做？异地备份放在哪里？", "每周日（凌晨2点）全量备份；异地备份在上海机房", "数据备份指南.docx"),
    ("客户投诉要多久给出处理方案？", "24小时内响应，48小时内给出处理方案", "客户服务规范.pdf"),
    ("如何重置API Key？", "在管理控制台“密钥管理”页面点击“重置”，旧密钥5分钟后失效", "常见问题.csv"),
    ("哪个版本开始支持gRPC？", "v2.3.0（2025-09-08）", "更新日志.jsonl"),
    ("火星上有多少颗卫星？", "（应拒答：知识库中没有相关内容）", None),
]

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _write(name: str, data: bytes) -> Path:
    path = CORPUS / name
    path.write_bytes(data)
    return path


def build_text_files() -> None:
    _write("差旅报销制度.md", TRAVEL_MD.encode("utf-8"))
    # strict: raises if any char is outside GBK
    _write("员工手册.txt", HANDBOOK_TXT.encode("gbk"))
    _write("知问网关产品说明.html", PRODUCT_HTML.encode("utf-8"))
    # strict: raises if any char is outside Big5
    _write("資訊安全規範.txt", SECURITY_TXT.encode("big5"))

    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["问题", "答案"])
    writer.writerows(FAQ_ROWS)
    _write("常见问题.csv", buf.getvalue().encode("utf-8-sig"))

    lines = [json.dumps(rec, ensure_ascii=False) for rec in CHANGELOG]
    _write("更新日志.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))


_FIXED_DT = _dt.datetime(2026, 1, 1, 9, 0, 0)


def _normalize_zip(data: bytes) -> bytes:
    """Re-pack a zip with fixed timestamps so the output is byte-stable."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


def build_docx() -> None:
    import docx
    from docx.oxml.ns import qn

    doc = docx.Document()
    # East-Asian font so Word renders the Chinese text sensibly.
    for style_name in ("Normal", "Title", "Heading 1", "Heading 2"):
        style = doc.styles[style_name]
        rpr = style.element.get_or_add_rPr()
        rfonts = rpr.find(qn("w:rFonts"))
        if rfonts is None:
            rfonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(rfonts)
        rfonts.set(qn("w:eastAsia"), "SimSun")

    doc.add_heading(BACKUP_TITLE, level=0)
    for kind, payload in BACKUP_BLOCKS:
        if kind == "h1":
            doc.add_heading(payload, level=1)
        elif kind == "h2":
            doc.add_heading(payload, level=2)
        elif kind == "p":
            doc.add_paragraph(payload)
        elif kind == "table":
            rows = payload
            table = doc.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, cell_text in enumerate(row):
                    table.cell(r, c).text = cell_text
        else:  # pragma: no cover
            raise ValueError(kind)

    cp = doc.core_properties
    cp.title = BACKUP_TITLE
    cp.author = "星河科技运维部"
    cp.last_modified_by = "星河科技运维部"
    cp.created = _FIXED_DT
    cp.modified = _FIXED_DT
    cp.last_printed = _FIXED_DT
    cp.revision = 1

    raw = io.BytesIO()
    doc.save(raw)
    _write("数据备份指南.docx", _normalize_zip(raw.getvalue()))


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy character-level wrap (fine for CJK text)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, cur = [], ""
    for ch in text:
        if stringWidth(cur + ch, font, size) > width and cur:
            # keep closing punctuation on the current line
            if ch in "，。；：、）”！？":
                cur += ch
                continue
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    if cur:
        lines.append(cur)
    return lines


def build_pdf() -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"  # built-in CID font; see module docstring
    pdfmetrics.registerFont(UnicodeCIDFont(font))

    path = CORPUS / "客户服务规范.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle(PDF_TITLE)
    c.setAuthor("星河科技客户服务部")
    c.setSubject("客户服务规范")

    page_w, page_h = A4
    left, right = 64, page_w - 64
    total = len(PDF_PAGES)
    for pno, blocks in enumerate(PDF_PAGES, start=1):
        # running header
        c.setFont(font, 9)
        c.drawString(left, page_h - 40, PDF_HEADER)
        c.line(left, page_h - 46, right, page_h - 46)

        y = page_h - 90
        for kind, text in blocks:
            if kind == "t":
                c.setFont(font, 18)
                c.drawCentredString(page_w / 2, y, text)
                y -= 36
            elif kind == "h":
                y -= 6
                c.setFont(font, 14)
                c.drawString(left, y, text)
                y -= 24
            else:
                size = 11
                c.setFont(font, size)
                for i, line in enumerate(_wrap(text, font, size, right - left - 22)):
                    c.drawString(left + (22 if i == 0 else 0), y, line)
                    y -= 19
                y -= 6
            if y < 80:  # pragma: no cover - content is sized to fit
                raise RuntimeError(f"PDF page {pno} overflows")
        # running footer (drawn last so extraction order is header, body, footer)
        c.setFont(font, 9)
        c.line(left, 52, right, 52)
        c.drawCentredString(page_w / 2, 38, PDF_FOOTER.format(page=pno, total=total))
        c.showPage()
    c.save()


def build_all() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    build_text_files()
    build_docx()
    build_pdf()


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def _cjk_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def verify() -> bool:
    ok = True

    def check(cond: bool, msg: str) -> None:
        nonlocal ok
        print(("  ok   " if cond else "  FAIL ") + msg)
        ok = ok and cond

    print("sizes:")
    for p in sorted(CORPUS.iterdir()):
        size = p.stat().st_size
        check(size < MAX_BYTES, f"{p.name}: {size} bytes")

    print("encodings:")
    from charset_normalizer import from_bytes

    for name, codec, family in [
        ("员工手册.txt", "gbk", {"gb18030", "gbk", "gb2312"}),
        ("資訊安全規範.txt", "big5", {"big5", "cp950", "big5hkscs"}),
    ]:
        data = (CORPUS / name).read_bytes()
        text = data.decode(codec)  # strict
        check(text == (HANDBOOK_TXT if codec == "gbk" else SECURITY_TXT),
              f"{name} round-trips with {codec}")
        best = from_bytes(data).best()
        enc = best.encoding if best else None
        check(enc in family, f"{name}: charset_normalizer -> {enc}")
        check(best is not None and str(best) == text, f"{name}: detected decode matches")

    check((CORPUS / "常见问题.csv").read_bytes().startswith(b"\xef\xbb\xbf"), "常见问题.csv has UTF-8 BOM")
    for line in (CORPUS / "更新日志.jsonl").read_text("utf-8").splitlines():
        rec = json.loads(line)
        check(set(rec) == {"version", "date", "title", "text"}, f"jsonl {rec['version']}")

    print("docx:")
    import docx

    d = docx.Document(str(CORPUS / "数据备份指南.docx"))
    styles = {p.style.name for p in d.paragraphs}
    check({"Heading 1", "Heading 2"} <= styles, f"heading styles present: {sorted(styles)}")
    check(len(d.tables) == 1, "one table")

    print("pdf:")
    from pypdf import PdfReader

    pages = PdfReader(str(CORPUS / "客户服务规范.pdf")).pages
    check(len(pages) == 2, "2 pages")
    texts = [pg.extract_text() for pg in pages]
    check("400-800-1234" in texts[0] and "工作日9:00-18:00" in texts[0], "page 1 facts extract")
    check("24小时内响应" in texts[1] and "48小时内给出处理方案" in texts[1], "page 2 facts extract")
    check(all(PDF_HEADER in t for t in texts), "header on every page")
    check("第 1 页" in texts[0] and "第 2 页" in texts[1], "footer page numbers")

    print("lengths (CJK chars):")
    pdf_text = "".join(t for blocks in PDF_PAGES for _, t in blocks)
    docx_text = BACKUP_TITLE + "".join(
        p if isinstance(p, str) else "".join("".join(r) for r in p) for _, p in BACKUP_BLOCKS
    )
    for name, text in [
        ("差旅报销制度.md", TRAVEL_MD),
        ("员工手册.txt", HANDBOOK_TXT),
        ("知问网关产品说明.html", PRODUCT_HTML),
        ("資訊安全規範.txt", SECURITY_TXT),
        ("数据备份指南.docx", docx_text),
        ("客户服务规范.pdf", pdf_text),
    ]:
        n = _cjk_count(text)
        check(600 <= n <= 2000, f"{name}: {n}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args(argv)
    build_all()
    print(f"wrote {len(list(CORPUS.iterdir()))} files to {CORPUS}")
    if args.no_verify:
        return 0
    return 0 if verify() else 1


if __name__ == "__main__":
    sys.exit(main())
