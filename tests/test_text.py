from core.text import (
    count_tokens,
    fold,
    is_mostly_cjk,
    normalize_width,
    search_tokens,
    split_sentences,
    strip_invisible,
)


def test_normalize_width_folds_fullwidth_ascii_but_keeps_chinese_punctuation():
    assert normalize_width("ＡＰＩ　Ｋｅｙ１２３，好！（注）") == "API Key123，好！（注）"


def test_fold_maps_traditional_to_simplified_and_lowercases():
    assert fold("資訊安全規範 ＡＰＩ") == "资讯安全规范 api"


def test_strip_invisible_removes_zero_width_and_control_characters():
    assert strip_invisible("保\u200b本\x07收\ufeff益\n") == "保本收益\n"


def test_sentences_split_on_chinese_and_english_terminators_and_lines():
    text = "平均延迟为2毫秒。P99低于5毫秒！Is it v2.3.0? Yes.\n# 标题\n他说：“好的。”然后走了"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "平均延迟为2毫秒。", "P99低于5毫秒！", "Is it v2.3.0?", "Yes.", "# 标题", "他说：“好的。”", "然后走了",
    ]


def test_search_tokens_drop_stop_words_and_punctuation_and_fold_script():
    tokens = search_tokens("資安事件多久內要通報？什么是API")
    assert "资安" in tokens and "通报" in tokens and "api" in tokens
    assert "什么" not in tokens and "？" not in tokens and "是" not in tokens


def test_count_tokens_counts_jieba_words_not_characters():
    assert count_tokens("知问网关的延迟很低") < len("知问网关的延迟很低")
    assert count_tokens("hello world") == 2


def test_language_of_fixed_messages():
    assert is_mostly_cjk("火星上有几颗卫星？")
    assert not is_mostly_cjk("What is the capital of France?")
