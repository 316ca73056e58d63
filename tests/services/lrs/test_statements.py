"""The statement store (appliance.services.lrs.statements) on a real tenant database: ids, stored, authority,
version, conflicts, voiding, StatementRef keys, read_after, and the queries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.instance import Instance
from appliance.services.lrs import statement_ids, statement_keys, statement_refs
from appliance.services.lrs import statement_queries as sq
from appliance.services.lrs import statements as st
from appliance.services.tenancy.tenants import create_tenant
from appliance.storage.sqlite.database import Database

AUTHORITY = {"objectType": "Agent", "account": {"homePage": "urn:test", "name": "lrs_test"}}
VERB = "http://adlnet.gov/expapi/verbs/experienced"


def statement(actor: str = "mailto:a@example.com", activity: str = "http://example.com/a", **extra: Any) -> dict:
    return {
        "actor": {"objectType": "Agent", "mbox": actor},
        "verb": {"id": VERB},
        "object": {"objectType": "Activity", "id": activity},
        **extra,
    }


def voiding(target: str, **extra: Any) -> dict:
    return {
        "actor": {"mbox": "mailto:admin@example.com"},
        "verb": {"id": statement_refs.VOIDED},
        "object": {"objectType": "StatementRef", "id": target},
        **extra,
    }


@pytest.fixture
def db(inst: Instance) -> Database:
    return inst.tenant_db(create_tenant(inst, "Acme").id)


def insert(db: Database, batch: list[dict], stored: float = 1_800_000_000.0, version: str = "1.0.3") -> list[str]:
    return db.write_sync(
        lambda c: st.insert_statements(
            c, batch, stored=stored, authority=AUTHORITY, credential_id="lrs_test", version=version
        )
    )


def bodies(db: Database) -> list[dict]:
    return [s for _, s in db.read_sync(lambda c: sq.read_after(c, 0, 100))]


def test_ids_stored_authority_version_and_timestamp_are_set(db: Database) -> None:
    given = "E3C5F6A0-0000-4000-8000-000000000001"
    ids = insert(db, [statement(id=given, authority={"mbox": "mailto:liar@example.com"}), statement()])
    assert ids[0] == given.lower() and len(ids[1]) == 36 and ids[1] != ids[0]
    first, second = bodies(db)
    assert first["id"] == ids[0] and second["id"] == ids[1]
    assert first["stored"] == "2027-01-15T08:00:00.000Z" == first["timestamp"]
    assert first["authority"] == AUTHORITY  # the client's authority is replaced
    assert first["version"] == "1.0.0"
    insert(db, [statement()], version="2.0.0")
    assert bodies(db)[2]["version"] == "2.0.0"


def test_stored_never_goes_back(db: Database) -> None:
    insert(db, [statement()], stored=1_800_000_010.5)
    insert(db, [statement()], stored=1_800_000_000.0)  # the clock stepped back
    assert [s["stored"] for s in bodies(db)] == ["2027-01-15T08:00:10.500Z"] * 2


def test_same_id_same_content_is_kept_once_and_different_content_conflicts(db: Database) -> None:
    sid = "e3c5f6a0-0000-4000-8000-000000000002"
    assert insert(db, [statement(id=sid)]) == [sid]
    assert insert(db, [statement(id=sid)]) == [sid]
    assert len(bodies(db)) == 1
    with pytest.raises(st.StatementConflict):
        insert(db, [statement(), statement(id=sid, activity="http://example.com/other")])
    assert len(bodies(db)) == 1  # the whole batch rolled back


def test_a_batch_repeating_an_id_is_refused(db: Database) -> None:
    sid = "e3c5f6a0-0000-4000-8000-000000000003"
    with pytest.raises(st.StatementRefused):
        insert(db, [statement(id=sid), statement(id=sid)])
    assert bodies(db) == []


def test_voiding_marks_the_target_and_a_voiding_statement_cannot_be_voided(db: Database) -> None:
    target, void_id = insert(db, [statement()])[0], "e3c5f6a0-0000-4000-8000-000000000004"
    insert(db, [voiding(target, id=void_id)])
    flags = db.read_sync(lambda c: dict(c.execute("SELECT id, voided FROM xapi_statements").fetchall()))
    assert flags == {target: 1, void_id: 0}
    with pytest.raises(st.StatementRefused):
        insert(db, [voiding(void_id)])
    with pytest.raises(st.StatementRefused):  # in one batch too
        first = "e3c5f6a0-0000-4000-8000-000000000005"
        insert(db, [voiding(target, id=first), voiding(first)])


def test_a_statement_voided_before_it_arrives_is_stored_voided(db: Database) -> None:
    late = "e3c5f6a0-0000-4000-8000-000000000006"
    insert(db, [voiding(late)])
    insert(db, [statement(id=late)])
    voided = db.read_sync(lambda c: c.execute("SELECT voided FROM xapi_statements WHERE id = ?", (late,)).fetchall())
    assert voided == [(1,)]


def keys(db: Database, sid: str) -> dict[int, int]:
    """A statement's key rows, wherever they are (the key index or the staging table)."""
    found: dict[int, int] = {}
    for table in ("xapi_statement_keys", "xapi_statement_keys_recent"):
        found.update(
            db.read_sync(
                lambda c, t=table: c.execute(
                    f"SELECT k.key, k.related FROM {t} k JOIN xapi_statements s USING (seq) WHERE s.id = ?", (sid,)
                ).fetchall()
            )
        )
    return found


def key_rows(db: Database) -> tuple[int, int]:
    """(rows in the key index, rows in the staging table)."""
    return db.read_sync(
        lambda c: c.execute(
            "SELECT (SELECT count(*) FROM xapi_statement_keys), (SELECT count(*) FROM xapi_statement_keys_recent)"
        ).fetchall()[0]
    )


def test_recent_key_rows_are_staged_then_moved_into_the_key_index_and_queries_answer_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key rows go to the staging table and move into the key index in key order once MERGE_STATEMENTS
    statements are staged; every filter, paged or not, answers the same statements in the same order
    before and after the move, and no row is in both tables or lost."""
    monkeypatch.setattr(statement_keys, "MERGE_STATEMENTS", 12)
    actors = ["mailto:a@example.com", "mailto:b@example.com"]
    for n in range(5):  # 5 batches of 4: moved after the third (12 staged), 8 staged at the end
        insert(
            db,
            [statement(actor=actors[i % 2], activity=f"http://example.com/{i % 3}") for i in range(4)],
            stored=1_800_000_000.0 + n,
        )
    indexed, staged = key_rows(db)
    assert indexed > 0 and staged > 0
    assert indexed + staged == db.read_sync(lambda c: sum(len(statement_keys.keys_of(c, s)) for s in range(1, 21)))
    agent = [statement_keys.agent_key({"mbox": a}) for a in actors]
    queries = [
        sq.StatementQuery(agent=agent[0]),
        sq.StatementQuery(activity="http://example.com/1"),
        sq.StatementQuery(agent=agent[1], activity="http://example.com/2"),
        sq.StatementQuery(verb=VERB, ascending=True),
        sq.StatementQuery(agent=agent[0], limit=3),
    ]

    def answers() -> list[list[int]]:
        return [db.read_sync(lambda c, q=q: [s.seq for s in sq.query_statements(c, q).statements]) for q in queries]

    seqs = range(1, 21)  # statement seq: actor (seq - 1) % 2, activity (seq - 1) % 4 % 3
    before = answers()
    assert before == [
        [q for q in reversed(seqs) if (q - 1) % 2 == 0],
        [q for q in reversed(seqs) if (q - 1) % 4 % 3 == 1],
        [q for q in reversed(seqs) if (q - 1) % 2 == 1 and (q - 1) % 4 % 3 == 2],
        list(seqs),
        [19, 17, 15],
    ]
    db.write_sync(lambda c: statement_keys.insert_key_rows(c, []))  # nothing new: no move
    monkeypatch.setattr(statement_keys, "MERGE_STATEMENTS", 1)
    db.write_sync(lambda c: statement_keys.insert_key_rows(c, [(1, 0, 10_000)]))  # the move, in a transaction
    db.write_sync(lambda c: c.execute("DELETE FROM xapi_statement_keys WHERE seq = 10000"))
    assert key_rows(db) == (indexed + staged, 0)
    assert answers() == before


def test_keys_cover_actor_object_context_and_sub_statements(db: Database) -> None:
    sub = {
        "objectType": "SubStatement",
        "actor": {"mbox": "mailto:sub@example.com"},
        "verb": {"id": VERB},
        "object": {"id": "http://example.com/sub"},
    }
    context = {
        "registration": "EC531277-B57B-4C15-8D91-D292C5B2B8F7",
        "instructor": {"mbox": "mailto:teacher@example.com"},
        "contextActivities": {"parent": [{"id": "http://example.com/parent"}]},
    }
    group = {"objectType": "Group", "member": [{"mbox": "mailto:m@example.com"}]}
    sid = insert(db, [{"actor": group, "verb": {"id": VERB}, "object": sub, "context": context}])[0]
    a = lambda v: statement_keys.filter_key("a", v)  # noqa: E731
    assert keys(db, sid) == {
        a("mbox:mailto:m@example.com"): 1,
        statement_keys.filter_key("v", VERB): 0,
        a("mbox:mailto:sub@example.com"): 1,
        statement_keys.filter_key("c", "http://example.com/sub"): 1,
        statement_keys.filter_key("r", "ec531277-b57b-4c15-8d91-d292c5b2b8f7"): 0,
        a("mbox:mailto:teacher@example.com"): 1,
        statement_keys.filter_key("c", "http://example.com/parent"): 1,
        a(statement_keys.agent_key(AUTHORITY) or ""): 1,
    }


def test_statement_refs_carry_their_targets_keys_whichever_arrives_first(db: Database) -> None:
    target = "e3c5f6a0-0000-4000-8000-000000000007"
    early_ref = insert(db, [voiding(target)])[0]  # refers to a statement not stored yet
    insert(db, [statement(id=target, activity="http://example.com/t")])
    later_ref = insert(db, [{**voiding(early_ref), "verb": {"id": "http://example.com/liked"}}])[0]
    activity = statement_keys.filter_key("c", "http://example.com/t")
    assert keys(db, early_ref)[activity] == 0
    assert keys(db, later_ref)[activity] == 0  # through the chain


def test_activity_definitions_are_recorded(db: Database) -> None:
    definition = {"name": {"en-US": "Course"}}
    insert(db, [statement(object={"id": "http://example.com/c", "definition": definition})])
    found = db.read_sync(lambda c: c.execute("SELECT id, definition FROM xapi_activities").fetchall())
    assert found == [("http://example.com/c", '{"name":{"en-US":"Course"}}')]


def test_read_after_pages_in_arrival_order(db: Database) -> None:
    ids = insert(db, [statement() for _ in range(5)])
    first = db.read_sync(lambda c: sq.read_after(c, 0, 2))
    rest = db.read_sync(lambda c: sq.read_after(c, first[-1][0], 10))
    assert [s["id"] for _, s in first + rest] == ids
    assert db.read_sync(lambda c: sq.read_after(c, rest[-1][0], 10)) == []


def test_durations_compare_to_the_hundredth(db: Database) -> None:
    sid = "e3c5f6a0-0000-4000-8000-000000000008"
    insert(db, [statement(id=sid, result={"duration": "PT1.1237S"})])
    assert insert(db, [statement(id=sid, result={"duration": "PT1.12S"})]) == [sid]
    with pytest.raises(st.StatementConflict):
        insert(db, [statement(id=sid, result={"duration": "PT1.13S"})])


def page_ids(db: Database, q: sq.StatementQuery) -> list[str]:
    page = db.read_sync(lambda c: sq.query_statements(c, q))
    return [json.loads(s.body)["id"] for s in page.statements]


def test_queries_plain_related_combined_and_paged(db: Database) -> None:
    course = {"contextActivities": {"parent": [{"id": "http://example.com/course"}]}}
    as_parent = insert(db, [statement(context=course) for _ in range(30)])
    as_object = insert(db, [statement(activity="http://example.com/course", actor="mailto:b@example.com")])
    course_q = sq.StatementQuery(activity="http://example.com/course")
    assert page_ids(db, course_q) == as_object  # the parent rows are not plain matches
    course_q.related_activities = True
    assert page_ids(db, course_q) == as_object + as_parent[::-1]
    both = sq.StatementQuery(
        activity="http://example.com/course", related_activities=True, agent="mbox:mailto:b@example.com"
    )
    assert page_ids(db, both) == as_object  # the rarer filter drives, the other is checked
    first = db.read_sync(lambda c: sq.query_statements(c, sq.StatementQuery(limit=10, ascending=True)))
    assert first.more and len(first.statements) == 10
    insert(db, [statement()])  # arrives between pages: not in this query's pages
    rest = sq.StatementQuery(limit=100, ascending=True, upper=first.upper, after=first.statements[-1].seq)
    assert page_ids(db, rest) == as_parent[10:] + as_object


def test_filters_are_ranges_of_the_key_index(db: Database) -> None:
    insert(db, [statement()])
    plans: list[str] = []

    class Explain:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, sql: str, params: Any = ()) -> Any:
            if sql.startswith(("SELECT k0.seq", "SELECT seq, stored")):
                plans.extend(str(row) for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            return self.conn.execute(sql, params)

    query = sq.StatementQuery(activity="http://example.com/a", agent="mbox:mailto:a@example.com")
    db.read_sync(lambda c: sq.query_statements(Explain(c), query))  # type: ignore[arg-type]
    query.related_agents = True
    db.read_sync(lambda c: sq.query_statements(Explain(c), query))  # type: ignore[arg-type]
    assert plans and not any("SCAN" in p or "TEMP B-TREE" in p for p in plans), plans
    assert any("PRIMARY KEY (key=? AND related=? AND seq>? AND seq<?)" in p for p in plans), plans


def test_a_page_short_of_voided_statements_reads_on(db: Database) -> None:
    ids = insert(db, [statement() for _ in range(6)])
    voiders = insert(db, [voiding(sid) for sid in ids[3:]])  # they match what their targets match
    q = sq.StatementQuery(verb=VERB, activity="http://example.com/a", limit=4, ascending=True)
    page = db.read_sync(lambda c: sq.query_statements(c, q))
    assert [json.loads(s.body)["id"] for s in page.statements] == [*ids[:3], voiders[0]] and page.more
    one = db.read_sync(lambda c: sq.query_statements(c, sq.StatementQuery(verb=VERB, limit=4, ascending=True)))
    assert [s.seq for s in one.statements] == [s.seq for s in page.statements] and one.more


def test_new_ids_are_time_ordered_version_7_uuids() -> None:
    import uuid

    ids = statement_ids.new_statement_ids(1000, now_ms=1_800_000_000_000)
    assert len(set(ids)) == 1000
    for sid in ids:
        parsed = uuid.UUID(sid)
        assert str(parsed) == sid and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == 1_800_000_000_000  # the millisecond, in the first 48 bits
    assert max(statement_ids.new_statement_ids(5, now_ms=1_800_000_000_000)) < min(
        statement_ids.new_statement_ids(5, now_ms=1_800_000_000_001)
    )


def prepared(batch: list[dict], stored: float, version: str = "1.0.3") -> st.Batch:
    return st.prepare_batch(batch, stored=stored, authority=AUTHORITY, credential_id="lrs_test", version=version)


def test_queued_batches_share_one_transaction_and_a_refused_one_is_undone_alone(db: Database) -> None:
    sid = "e3c5f6a0-0000-4000-8000-0000000000aa"
    insert(db, [statement(id=sid)])
    items = [
        prepared([statement("mailto:b@example.com"), statement("mailto:c@example.com")], 1_800_000_001.0),
        prepared([statement("mailto:d@example.com")], 1_800_000_000.5),  # earlier: stored as the one before
        prepared([statement(id=sid, activity="http://example.com/other")], 1_800_000_002.0),  # a conflict
        lambda c: st.insert_statements(
            c,
            [statement("mailto:e@example.com")],
            stored=1_800_000_003.0,
            authority=AUTHORITY,
            credential_id=None,
            version="1.0.3",
        ),
    ]
    assert [b.simple for b in items[:3]] == [True, True, False]
    outcomes = db.write_sync(lambda c: st.run_queued(c, items))
    assert [type(error).__name__ if error else None for _, error in outcomes] == [None, None, "StatementConflict", None]
    assert outcomes[0][0] == items[0].ids and len(outcomes[3][0]) == 1
    stored = [(s["actor"]["mbox"], s["stored"]) for s in bodies(db)]
    assert stored == [
        ("mailto:a@example.com", "2027-01-15T08:00:00.000Z"),
        ("mailto:b@example.com", "2027-01-15T08:00:01.000Z"),
        ("mailto:c@example.com", "2027-01-15T08:00:01.000Z"),
        ("mailto:d@example.com", "2027-01-15T08:00:01.000Z"),  # never before the statement stored before it
        ("mailto:e@example.com", "2027-01-15T08:00:03.000Z"),
    ]
    page = db.read_sync(lambda c: sq.query_statements(c, sq.StatementQuery(agent="mbox:mailto:d@example.com")))
    assert len(page.statements) == 1  # the grouped batches' keys are written too


def test_the_writer_thread_answers_each_caller(db: Database) -> None:
    import asyncio

    from appliance.services.lrs import bulk

    async def main() -> list[object]:
        writer = bulk.writer_for(db, st.run_queued)
        batches = [
            prepared([statement(f"mailto:w{n}@example.com") for _ in range(3)], 1_800_000_000.0 + n) for n in range(20)
        ]
        clash = prepared([statement(id=statement_ids.new_statement_id()), statement()], 1_800_000_100.0)
        clash.pending[1].id = clash.pending[0].id  # the same id twice: the UNIQUE index refuses the batch
        return await asyncio.gather(*(writer.submit(b) for b in [*batches, clash]), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, list) and len(r) == 3 for r in results[:20])
    assert isinstance(results[20], Exception)
    assert len(bodies(db)) == 60


def test_the_writer_checkpoints_beside_itself_while_busy_and_leaves_sqlites_default_when_idle(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import time

    from appliance.services.lrs import bulk

    monkeypatch.setattr(bulk, "BUSY_CHECKPOINT_PAGES", 1)  # every commit wakes the checkpointer

    def autocheckpoint() -> int:
        return db.write_sync(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchall()[0][0], transaction=False)

    writer = bulk.writer_for(db, st.run_queued)

    async def main() -> int:
        seen: list[int] = []
        await writer.submit(prepared([statement()], 1_800_000_000.0))
        await writer.submit(lambda c: seen.append(autocheckpoint()))
        return seen[0]

    assert asyncio.run(main()) == 0  # no commit checkpoints inline: the checkpointer's hook is set
    assert writer._checkpointer._thread is not None or writer._checkpointer.pages >= 1
    deadline = time.monotonic() + 5
    while writer._running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert autocheckpoint() == bulk.DEFAULT_CHECKPOINT_PAGES
    assert len(bodies(db)) == 1


def test_the_writer_waits_for_as_many_statements_as_its_recent_transactions_held(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches arriving a few milliseconds apart (the loop preparing them one by one) share one
    transaction when the last ones held that many; fewer writers are not held back for 500."""
    import asyncio
    import time

    from appliance.services.lrs import bulk

    monkeypatch.setattr(bulk, "GROUP_WAIT_SECONDS", 1.0)
    transactions: list[int] = []

    def run(conn: Any, items: list[Any]) -> list[tuple[Any, BaseException | None]]:
        transactions.append(len(items))
        return st.run_queued(conn, items)

    writer = bulk.StatementWriter(db, run)

    def batches(count: int, base: float) -> list[st.Batch]:
        return [prepared([statement() for _ in range(10)], base + n) for n in range(count)]

    async def round_of(items: list[st.Batch], apart: float) -> float:
        began = time.monotonic()
        tasks = []
        for item in items:
            tasks.append(asyncio.ensure_future(writer.submit(item)))
            await asyncio.sleep(apart)
        await asyncio.gather(*tasks)
        return time.monotonic() - began

    async def main() -> tuple[list[float], int]:
        await round_of(batches(1, 1_800_000_000.0), 0)
        # three writers at a time, five rounds: never waiting the second for 500 statements
        quick = [await round_of(batches(3, 1_800_000_010.0 + 10 * r), 0) for r in range(5)]
        await asyncio.gather(*(writer.submit(b) for b in batches(4, 1_800_000_100.0)))
        before = len(transactions)
        await round_of(batches(4, 1_800_000_200.0), 0.02)  # 40 statements, 20 ms apart
        return quick, len(transactions) - before

    quick, grouped = asyncio.run(main())
    assert max(quick) < 0.5
    assert grouped == 1  # the writer waited for the 40 statements the last transaction held
    assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM xapi_statements").fetchall()[0][0]) == 240
