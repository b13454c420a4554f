-- The outbox holds the unsent rows only: the relay deletes each row in the
-- transaction that held it while JetStream acknowledged its event, instead
-- of marking it sent (007). The event stays in the ledger, with the stream
-- sequence from that ack in ledger.stream_seq; the outbox no longer grows
-- with every reservation ever made, and relaying a row writes no index
-- entry (an update of sent_at wrote a new one in each of its indexes).

DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_unsent;
ALTER TABLE outbox DROP COLUMN sent_at, DROP COLUMN stream_seq;
-- The relay's order: oldest first.
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (created_at, event_id);

-- The relay's claim: outbox rows, oldest first, one table, SKIP LOCKED so
-- several reconcilers share the work (TOOLCHAIN.md).
DROP FUNCTION IF EXISTS sf_outbox_claim(int);
CREATE FUNCTION sf_outbox_claim(batch int)
RETURNS SETOF outbox LANGUAGE sql AS $$
    SELECT * FROM outbox o
    ORDER BY o.created_at, o.event_id LIMIT batch FOR UPDATE SKIP LOCKED
$$;

-- Delete claimed rows JetStream acknowledged, and fill in the ledger's
-- stream_seq (the sequence of each ack) where it is still unknown.
-- Returns the rows deleted.
CREATE OR REPLACE FUNCTION sf_outbox_sent(ids text[], seqs bigint[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM outbox o WHERE o.event_id = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE ledger g SET stream_seq = u.seq
    FROM unnest(ids, seqs) AS u(id, seq)
    WHERE g.event_id = u.id AND g.stream_seq IS NULL AND u.seq > 0;
    RETURN n;
END
$$;
