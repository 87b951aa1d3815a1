"""The extractive answerer on hand-built hits: real jieba, real OpenCC, no index. What it answers with
(one sentence, two in the combine case, a long sentence trimmed to its answering clauses), the script
of the answer, and citations that quote the document exactly at their offsets."""

from __future__ import annotations

import re

from core.models import Chunk, Hit
from core.text import is_traditional, to_simplified
from llm.extractive import answer_text, extractive_answer

_MARKER_RE = re.compile(r"\[\d+\]")


def make_hit(text: str, rank: int = 1, doc_offset: int = 0, title: str = "", headings: list[str] | None = None,
             doc_id: str | None = None) -> Hit:
    doc_id = doc_id or f"doc{rank}"
    chunk = Chunk(id=f"{doc_id}-0", doc_id=doc_id, ordinal=0, text=text, start=doc_offset, end=doc_offset + len(text),
                  n_tokens=len(text) // 2, source=f"{doc_id}.md", title=title, heading_path=headings or [])
    return Hit(chunk=chunk, score=1.0 / rank, relevance=0.8, rank=rank)


def body(answer) -> str:
    return _MARKER_RE.sub("", answer.text)


def assert_quotes_exact(answer, documents: dict[str, str]) -> None:
    """Every citation quotes its document at [start:end] and every [n] in the text has a citation."""
    assert answer.citations
    for c in answer.citations:
        assert documents[c.source][c.start : c.end] == c.quote
    assert sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}) == [c.n for c in answer.citations]


GATEWAY = (
    "知问网关是星河科技的API网关产品。网关支持HTTP/2、gRPC和WebSocket协议。"
    "单节点吞吐可达50000 QPS。管理控制台默认监听9090端口。"
)


def test_a_single_fact_question_is_answered_by_one_sentence():
    answer = extractive_answer("管理控制台默认使用哪个端口？", [make_hit(GATEWAY, title="知问网关")])
    assert answer.text == "管理控制台默认监听9090端口。[1]"
    assert_quotes_exact(answer, {"doc1.md": GATEWAY})
    assert answer.citations[0].quote == "管理控制台默认监听9090端口。"


def test_the_title_words_choose_the_passage_not_the_sentence():
    """Every sentence is about 大鳞大眼鲷; the one that answers carries the question's other words."""
    text = "大鳞大眼鲷，又称日本锯大眼鲷，为辐鳍鱼纲鲈形目的其中一个种。本鱼分布于印度西太平洋区，包括东非、红海等海域。体长可达20公分。"
    answer = extractive_answer("大鳞大眼鲷分布于哪里？", [make_hit(text, title="大鳞大眼鲷", headings=["大鳞大眼鲷"])])
    assert "印度西太平洋区" in answer.text and "辐鳍鱼纲" not in answer.text


def test_a_question_combining_two_facts_gets_both_sentences_and_no_more():
    text = (
        "出差期间按自然日发放伙食补助：一线城市每人每天100元，其他城市每人每天80元。伙食补助实行包干制，无需提供餐饮发票。"
        "市内交通补助为每人每天50元，包干使用。住宿须取得酒店开具的增值税专用发票。"
    )
    hit = make_hit(text, title="差旅报销制度", headings=["差旅报销制度", "四、伙食补助与市内交通"], doc_offset=200)
    answer = extractive_answer("伙食补助和市内交通补助各是多少？", [hit])
    assert "每人每天100元" in answer.text and "每人每天50元" in answer.text
    assert "增值税" not in answer.text and "餐饮发票" not in answer.text
    assert answer.text.count("[1]") == 2 and len(answer.citations) == 1
    # One passage, one citation: its quote covers both sentences, exactly as the document has them.
    document = " " * 200 + text
    assert_quotes_exact(answer, {"doc1.md": document})
    assert answer.citations[0].quote.startswith("出差期间") and answer.citations[0].quote.endswith("包干使用。")


def test_a_single_fact_question_does_not_combine_even_when_allowed_three():
    text = "一线城市每晚不超过600元。二线城市每晚不超过450元。三线及以下城市每晚不超过350元。"
    answer = extractive_answer("二线城市住宿每晚多少钱？", [make_hit(text)], max_sentences=3)
    assert body(answer) == "二线城市每晚不超过450元。"


def test_max_sentences_one_never_combines():
    text = "出差期间伙食补助每人每天100元。市内交通补助每人每天50元。"
    answer = extractive_answer("伙食补助和市内交通补助各是多少？", [make_hit(text)], max_sentences=1)
    assert len(answer.text.split("[1]")) == 2  # one sentence, one marker


def test_a_long_sentence_is_trimmed_to_the_clauses_that_answer():
    text = (
        "鑫诺卫星通讯有限公司成立于1994年5月30日，总部位于北京，主要经营卫星转发器出租业务，"
        "是中国最早从事卫星通信运营的企业之一。"
    )
    hit = make_hit(text, title="鑫诺卫星通讯", doc_offset=37)
    answer = extractive_answer("鑫诺卫星的总部在哪里？", [hit])
    assert "总部位于北京" in answer.text
    assert "1994年" not in answer.text and "最早" not in answer.text
    # Still a statement, not a bare noun; and still a verbatim quote of the document.
    assert len(body(answer)) >= 8 and body(answer) in text
    assert_quotes_exact(answer, {"doc1.md": " " * 37 + text})
    assert answer.citations[0].quote == body(answer)


def test_a_short_sentence_is_never_trimmed():
    text = "客户投诉须在24小时内响应，48小时内给出处理方案。"
    answer = extractive_answer("客户投诉多久内要给出处理方案？", [make_hit(text)])
    assert body(answer) == text


def test_the_answer_after_an_echoed_faq_question_is_kept_whole():
    text = (
        "问题：如何重置API Key？；答案：登录管理控制台（默认端口9090），进入“密钥管理”页面，选择需要重置的密钥后点击“重置”按钮。"
        "新密钥立即生效，旧密钥将在5分钟后失效。\n问题：忘记了管理控制台的密码怎么办？；答案：在登录页点击“忘记密码”。"
    )
    answer = extractive_answer("如何重置API Key？", [make_hit(text)])
    assert body(answer) == "登录管理控制台（默认端口9090），进入“密钥管理”页面，选择需要重置的密钥后点击“重置”按钮。"
    # The answer reads without the FAQ's label; the citation still quotes the document as written.
    assert answer.citations[0].quote == "答案：" + body(answer)


def test_headings_and_table_headers_are_not_answers():
    text = "## 三、住宿标准\n\n| 城市级别 | 普通员工 | 经理及以上 |\n| --- | --- | --- |\n| 一线城市 | 每晚不超过600元 | 每晚不超过800元 |\n"
    answer = extractive_answer("一线城市住宿标准是多少？", [make_hit(text, headings=["三、住宿标准"])])
    assert "600元" in answer.text and "城市级别" not in answer.text and "##" not in answer.text


TRADITIONAL = (
    "第七條 資安事件通報\n一、資安事件包括但不限於：電腦中毒、帳號疑似遭盜用、筆記型電腦或手機遺失。\n"
    "二、任何人員發現資安事件時，須於1小時內通報資訊安全部，通報專線為分機6110。\n"
)


def test_a_simplified_question_gets_a_simplified_answer_quoting_the_traditional_text():
    answer = extractive_answer("资安事件多久内要通报？", [make_hit(TRADITIONAL, doc_offset=512, title="資訊安全規範")])
    assert "1小时内通报资讯安全部" in answer.text and "1小時內通報" not in answer.text
    assert not is_traditional(body(answer))
    [c] = answer.citations
    assert "1小時內通報資訊安全部" in c.quote and is_traditional(c.quote)
    # The same sentence, only the script differs (and the list number "二、" is not part of the answer).
    assert c.quote.startswith("二、") and answer_text(to_simplified(c.quote)) == body(answer)
    assert_quotes_exact(answer, {"doc1.md": " " * 512 + TRADITIONAL})


def test_a_traditional_question_gets_the_original_text():
    answer = extractive_answer("資安事件多久內要通報？", [make_hit(TRADITIONAL, title="資訊安全規範")])
    assert "1小時內通報資訊安全部" in answer.text
    assert body(answer) == answer_text(answer.citations[0].quote)


def test_a_simplified_passage_is_shown_as_written():
    """OpenCC's phrase table turns some Simplified words Traditional (t2s: 结束 → 結束): a Simplified
    sentence is never run through it."""
    text = "本赛季于5月结束，球队最终获得联赛第三名。"
    answer = extractive_answer("本赛季什么时候结束？", [make_hit(text)])
    assert body(answer) == text


def test_citations_follow_passages_across_hits_and_quote_their_chunk():
    first = "年休假按累计工作年限计算。员工累计工作已满1年不满10年的，年休假5天。"
    second = "病假须提供二级以上医院的诊断证明。"
    hits = [make_hit(first, rank=1, doc_offset=10), make_hit(second, rank=2, doc_offset=3000)]
    answer = extractive_answer("工作满5年有几天年假？", hits)
    assert "年休假5天" in answer.text and "[1]" in answer.text
    assert_quotes_exact(answer, {"doc1.md": " " * 10 + first, "doc2.md": " " * 3000 + second})


def test_is_traditional_reads_the_script_not_the_converter():
    assert is_traditional("資安事件多久內要通報？") and is_traditional("第七條 資安事件通報")
    for simplified in ["资安事件多久内要通报？", "比赛什么时候结束？", "尼高·高华以什么著称？", "牠们分布在哪里？", "API Key"]:
        assert not is_traditional(simplified), simplified


def test_answer_text_drops_source_labels_and_list_markers_but_not_numbers():
    assert answer_text("答案：支持HTTP/2协议。") == "支持HTTP/2协议。"
    assert answer_text("问题：如何重置API Key？；答案：在控制台点击“重置”。") == "在控制台点击“重置”。"
    assert answer_text("- 自驾：须事先报批，按每公里0.8元给予补贴") == "自驾：须事先报批，按每公里0.8元给予补贴"
    assert answer_text("• 飞机：普通员工限乘经济舱；") == "飞机：普通员工限乘经济舱。"
    assert answer_text("1. 员工应在出差结束后15个工作日内提交。") == "员工应在出差结束后15个工作日内提交。"
    assert answer_text("二、年休假：员工累计工作已满1年不满10年的，年休假5天；") == "年休假：员工累计工作已满1年不满10年的，年休假5天。"
    assert answer_text("（3）第三条 夜间乘车可购买卧铺。") == "夜间乘车可购买卧铺。"
    for kept in ["12.5%的员工选择远程办公。", "2026年1月1日起施行。", "一线城市每晚不超过600元。", "答复时限为3天。"]:
        assert answer_text(kept) == kept


def test_a_question_in_the_passage_is_never_the_answer_the_sentence_after_it_is():
    faq = ("问题：网关返回502错误是什么原因？；答案：502表示网关无法从上游服务获得有效响应，常见原因是上游服务宕机。\n"
           "问题：如何为某个API配置限流？；答案：在管理控制台的“流量治理”页面新建限流规则。")
    answer = extractive_answer("502错误怎么办？", [make_hit(faq, title="常见问题")])
    assert body(answer) == "502表示网关无法从上游服务获得有效响应，常见原因是上游服务宕机。"
    assert answer.citations[0].quote.startswith("答案：502表示")
    assert_quotes_exact(answer, {"doc1.md": faq})


def test_a_list_item_reads_as_an_answer_and_is_cited_as_written():
    text = "## 五、城际交通\n\n- 飞机：普通员工限乘经济舱。\n- 自驾：须事先报批，按每公里0.8元给予补贴，过路费凭票据报销。\n"
    answer = extractive_answer("自驾怎么补贴？", [make_hit(text, headings=["五、城际交通"])])
    assert body(answer).startswith("自驾：须事先报批") and "0.8元" in body(answer)
    assert answer.citations[0].quote.startswith("- 自驾") and text[answer.citations[0].start:answer.citations[0].end] == answer.citations[0].quote


def test_a_one_part_question_gets_no_second_sentence_from_another_passage_or_clause():
    """Two sentences that each share one word with the question are not two halves of an answer."""
    security = ("第七條 資安事件通報\n一、資安事件包括但不限於：電腦中毒、帳號疑似遭盜用、筆記型電腦或手機遺失、資料外洩、收到勒索訊息等。\n"
                "二、機密及以上等級的資料不得透過個人電子郵件、個人雲端硬碟或即時通訊軟體傳送。\n")
    answer = extractive_answer("公司允许用自己的手机收发工作邮件吗？", [make_hit(security, title="資訊安全規範")])
    assert answer.text.count("[1]") == 1 and "电子邮件" not in answer.text
    # The same fact twice (the product page and the FAQ): one sentence, one citation.
    duplicate = [
        make_hit("统一接入：支持HTTP/1.1、HTTP/2、gRPC和WebSocket协议，可在同一端口上同时处理多种协议的请求。",
                 title="知问网关产品说明", headings=["知问网关产品说明", "一、核心功能"]),
        make_hit("问题：知问网关支持哪些协议？；答案：支持HTTP/1.1、HTTP/2、gRPC和WebSocket协议。", rank=2, title="常见问题"),
    ]
    answer = extractive_answer("知问网关支持哪些协议？", duplicate)
    assert len(answer.citations) == 1 and "答案" not in answer.text


def test_a_two_part_question_still_gets_both_parts():
    text = ("所有生产数据库每日凌晨2点执行增量备份，每周日凌晨2点执行全量备份。\n"
            "异地备份每日6点前通过专线复制到上海机房。\n备份文件使用AES-256加密。")
    answer = extractive_answer("全量备份在什么时候做？异地备份放在哪里？", [make_hit(text, title="数据备份指南")])
    assert "每周日凌晨2点执行全量备份" in answer.text and "上海机房" in answer.text and "AES" not in answer.text
