-- 0002: task results — a completed task's return value, as its worker stored it.
--
-- `result` holds the encoded value (the bytes after the serializer line of the Redis
-- result key) and `result_serializer` the serializer that wrote it; both stay NULL for
-- a task that returned None, one whose result was not kept (result_ttl=0), and every
-- task that did not complete. The history keeps it after Redis' result_ttl expired.
-- Adding nullable columns without a default rewrites nothing: instant on a big table.

ALTER TABLE strego_tasks
    ADD COLUMN result bytea,
    ADD COLUMN result_serializer text;
