"""The conversation store (llm.conversations): real files under a temporary data dir."""

from __future__ import annotations

import json
import threading

from core.models import Answer, Citation
from llm.conversations import ConversationStore, Turn, title_for


def turn(question: str, text: str = "答案[1]。", kb: str = "demo", **kw) -> Turn:
    citation = Citation(n=1, source="a.md", page=None, start=0, end=3, quote="答案。", chunk_id="d-0", score=1.0)
    return Turn(question=question, kb=kb, answer=Answer(text=text, citations=[citation]), **kw)


def test_a_conversation_is_stored_on_its_first_turn_and_reads_back_whole(settings):
    store = ConversationStore(settings, "local")
    conversation = store.new("demo")
    assert store.get(conversation.id) is None and store.list() == [], "an empty chat leaves no file"
    store.add_turn(conversation, turn("一线城市住宿标准是多少？"))
    store.add_turn(conversation, turn("那二线城市呢？", "450元[1]。"))
    again = ConversationStore(settings, "local").get(conversation.id)  # a new store: nothing held in memory
    assert [t.question for t in again.turns] == ["一线城市住宿标准是多少？", "那二线城市呢？"]
    assert again.turns[1].answer.citations[0].quote == "答案。"
    assert again.title == "一线城市住宿标准是多少？" and again.kb == "demo"
    assert again.history() == [("一线城市住宿标准是多少？", "答案[1]。"), ("那二线城市呢？", "450元[1]。")]
    files = sorted(p.name for p in store.dir.iterdir())
    assert files == [f"{conversation.id}.json"], "atomic writes leave no temporary files behind"
    assert json.loads((store.dir / files[0]).read_text(encoding="utf-8"))["turns"][0]["question"].startswith("一线城市")


def test_stopped_and_refused_turns_are_kept_but_not_used_as_history(settings):
    store = ConversationStore(settings, "local")
    conversation = store.add_turn(store.new("demo"), turn("问题一", "部分回答", stopped=True))
    conversation = store.add_turn(conversation, Turn(question="火星？", kb="demo", answer=Answer(text="抱歉", refused=True)))
    conversation = store.add_turn(conversation, turn("问题三"))
    assert len(conversation.turns) == 3 and conversation.history() == [("问题三", "答案[1]。")]


def test_replacing_the_last_turn_regenerates_it(settings):
    store = ConversationStore(settings, "local")
    conversation = store.add_turn(store.new("demo"), turn("问题一"))
    conversation = store.add_turn(conversation, turn("问题二", "旧回答"))
    conversation = store.add_turn(conversation, turn("问题二", "新回答"), replace_last=True)
    assert [(t.question, t.answer.text) for t in store.get(conversation.id).turns] == [("问题一", "答案[1]。"), ("问题二", "新回答")]


def test_rename_delete_and_list_newest_first(settings):
    store = ConversationStore(settings, "local")
    first = store.add_turn(store.new("demo"), turn("第一个问题"))
    second = store.add_turn(store.new("手册"), turn("第二个问题"))
    assert [s.id for s in store.list()] == [second.id, first.id]
    assert store.rename(first.id, "  差旅\n标准  ") and store.get(first.id).title == "差旅 标准"
    assert [s.title for s in store.list()] == ["差旅 标准", "第二个问题"], "a rename counts as a change"
    assert not store.rename(first.id, "   "), "an empty title is refused"
    assert store.delete(second.id) and not store.delete(second.id)
    assert [s.id for s in store.list()] == [first.id] and store.get(second.id) is None


def test_users_never_see_each_others_conversations_and_ids_cannot_name_other_files(settings):
    alice, bob = ConversationStore(settings, "key:alice"), ConversationStore(settings, "key:bob")
    secret = alice.add_turn(alice.new("secret"), turn("青龙项目的预算？"))
    assert bob.get(secret.id) is None and bob.list() == [] and not bob.delete(secret.id)
    assert alice.get(secret.id) is not None
    assert alice.dir != bob.dir and "alice" not in str(alice.dir), "the user name is hashed, not a path"
    for bad in ["../" + secret.id, secret.id + "/../x", "preferences", "", None, "A" * 16]:
        assert alice.get(bad) is None and not alice.delete(bad or "")


def test_an_unreadable_file_is_skipped_not_fatal(settings):
    store = ConversationStore(settings, "local")
    good = store.add_turn(store.new("demo"), turn("好的问题"))
    (store.dir / "0123456789abcdef.json").write_text("{not json", encoding="utf-8")
    assert [s.id for s in store.list()] == [good.id]
    assert store.get("0123456789abcdef") is None


def test_turns_added_at_once_from_two_tabs_are_all_kept(settings):
    store = ConversationStore(settings, "local")
    conversation = store.add_turn(store.new("demo"), turn("开始"))
    threads = [threading.Thread(target=store.add_turn, args=(conversation, turn(f"问题{i}"))) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(t.question for t in store.get(conversation.id).turns) == sorted(["开始", *(f"问题{i}" for i in range(8))])


def test_feedback_fields_and_preferences_persist(settings):
    store = ConversationStore(settings, "local")
    conversation = store.add_turn(store.new("demo"), turn("问题"))
    store.update_turn(conversation.id, 0, rating="down", comment="引用的条款不对")
    assert store.get(conversation.id).turns[0].rating == "down" and store.get(conversation.id).turns[0].comment == "引用的条款不对"
    assert store.update_turn(conversation.id, 5, rating="up") is None
    assert store.preferences() == {}
    store.save_preferences({"kb": "手册", "top_k": 8})
    assert ConversationStore(settings, "local").preferences() == {"kb": "手册", "top_k": 8}
    assert ConversationStore(settings, "key:other").preferences() == {}


def test_title_is_the_first_question_on_one_line_shortened():
    assert title_for("一线城市\n住宿标准？") == "一线城市 住宿标准？"
    long = title_for("问" * 100)
    assert len(long) == 40 and long.endswith("…")
