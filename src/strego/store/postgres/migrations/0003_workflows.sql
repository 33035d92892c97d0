-- 0003: workflows — the workflow (strego.chain/group/chord) a task is a member of.
--
-- NULL for tasks outside workflows. A nullable column without a default rewrites
-- nothing; the partial index holds only workflow members (what "every task of
-- workflow X" reads).

ALTER TABLE strego_tasks
    ADD COLUMN workflow_id text;

CREATE INDEX strego_tasks_workflow_idx ON strego_tasks (workflow_id)
    WHERE workflow_id IS NOT NULL;
