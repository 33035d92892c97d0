-- 0001: task history — one row per task, a bounded timeline, and the merge rules.
--
-- Applied by `strego migrate --postgres DSN` (strego.store.postgres.migrations), inside
-- one transaction, and recorded in strego_schema_migrations. Never edit a shipped
-- migration: add 0002_*.sql instead.

-- The functions below are small SQL functions that PostgreSQL inlines into the upsert
-- (merge rules written once, at no call cost). Inlining needs the declared volatility to
-- match the body's: timestamptz + interval and jsonb_build_array are STABLE, so are they.

-- The rank of a state inside one attempt. Within the same retry_count a task moves
-- scheduled/retry (waiting) -> pending (in the stream) -> active -> a final state.
CREATE FUNCTION strego_state_rank(state text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE state
        WHEN 'scheduled' THEN 1
        WHEN 'retry' THEN 1
        WHEN 'pending' THEN 2
        WHEN 'active' THEN 3
        ELSE 4  -- completed, dead, cancelled
    END::smallint
$$;

-- Does an incoming event move the task forward? Events reach the table out of order
-- (the client, the worker that failed attempt 1 and the worker that ran attempt 2 each
-- flush their own buffer), so the stored state only ever advances:
--   * a final state (completed/dead/cancelled) is kept against any late event, except
--     that a creation or start stamped more than 5 s after the task finished begins a
--     new lifecycle (a manual retry from the dead-letter queue resets attempts to 0);
--   * a final state beats any live state, whatever its retry_count (a manual retry of
--     a waiting task also resets attempts, and must still be able to finish);
--   * otherwise (retry_count, rank) must grow: active(0) -> retry(1) -> active(1).
CREATE FUNCTION strego_event_advances(
    cur_state text, cur_retry integer, cur_finished_at timestamptz,
    new_state text, new_retry integer, new_at timestamptz
) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN cur_finished_at IS NOT NULL THEN
            new_state IN ('pending', 'scheduled', 'active')
            AND new_at > cur_finished_at + interval '5 seconds'
        WHEN strego_state_rank(new_state) = 4 THEN true
        ELSE (new_retry, strego_state_rank(new_state))
             > (cur_retry, strego_state_rank(cur_state))
    END
$$;

-- Append one timeline entry, ignoring exact repeats (a batch replayed after a lost
-- commit acknowledgement) and keeping only the newest `cap` entries.
CREATE FUNCTION strego_timeline_append(timeline jsonb, entry jsonb, cap integer)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN timeline @> jsonb_build_array(entry) THEN timeline
        WHEN jsonb_array_length(timeline) >= cap
            THEN (timeline - 0) || jsonb_build_array(entry)
        ELSE timeline || jsonb_build_array(entry)
    END
$$;

CREATE TABLE strego_tasks (
    -- COLLATE "C": task ids are ASCII; a C-collated btree also serves `LIKE 'prefix%'`.
    id          text COLLATE "C" PRIMARY KEY,
    queue       text NOT NULL,
    type        text NOT NULL,
    state       text NOT NULL CHECK (state IN
                    ('pending', 'scheduled', 'active', 'completed', 'retry', 'dead',
                     'cancelled')),
    retry_count integer NOT NULL DEFAULT 0,
    max_retry   integer NOT NULL DEFAULT 0,
    priority    smallint NOT NULL DEFAULT 0,
    labels      jsonb NOT NULL DEFAULT '{}',
    payload     bytea,
    serializer  text,
    created_at  timestamptz NOT NULL,
    process_at  timestamptz,
    started_at  timestamptz,   -- when the latest attempt started
    finished_at timestamptz,   -- set while the state is completed, dead or cancelled
    updated_at  timestamptz NOT NULL,  -- the newest event seen, applied or not
    last_error  text,
    traceback   text,
    dead_reason text,
    worker      text,
    duration_ms double precision,
    timeline    jsonb NOT NULL DEFAULT '[]'  -- newest 50 transitions, see writes.py
);

-- Every index below is paid for on each write (a state change is never a HOT update),
-- so each one names the query it serves (strego/store/postgres/search.py, stats.py).

-- search(queue=Q, states={S}) newest first: the UI's main list ("dead tasks in
-- queue Q"); equality on (queue, state) then a keyset walk on (created_at, id).
CREATE INDEX strego_tasks_queue_state_created ON strego_tasks (queue, state, created_at, id);

-- search(states={S}) across every queue (e.g. "all dead tasks") and state_counts().
CREATE INDEX strego_tasks_state_created ON strego_tasks (state, created_at, id);

-- search() without queue/state filters, created_after/created_before ranges, and
-- search(queue=Q) in any state: walked newest first with queue as a filter, which
-- finds a page at once for any queue holding more than ~0.1 % of the rows; for a
-- smaller queue the planner reads its rows through the leading `queue` column of
-- strego_tasks_queue_state_created and sorts them. (A separate (queue, created_at, id)
-- index measured ~6 % slower writes for no gain on these queries, so there is none.)
CREATE INDEX strego_tasks_created ON strego_tasks (created_at, id);

-- search(sort="updated_at") ("recent activity") and delete_older_than(), which prunes
-- by the newest event of a task.
CREATE INDEX strego_tasks_updated ON strego_tasks (updated_at, id);

-- queue_stats() and throughput() (tasks finished in a window) and the
-- finished_after/finished_before filters; unfinished tasks are left out of it.
CREATE INDEX strego_tasks_finished ON strego_tasks (finished_at) WHERE finished_at IS NOT NULL;

-- search(labels={...}): JSONB containment (labels @> '{"k": "v"}'); jsonb_path_ops is
-- smaller and faster than the default opclass and supports exactly @>.
CREATE INDEX strego_tasks_labels ON strego_tasks USING gin (labels jsonb_path_ops);
