-- Ingest's fast path (src/pg/ingest.rs): a batch of fresh envelopes whose
-- chains have no gap is stored in one statement, in its own transaction,
-- the heads' new marks computed from the locked rows as they are written.
-- Where it cannot be (a chain with a gap, an envelope skipped as a
-- duplicate or a conflict), the statement calls this, which rolls it back
-- whole, and the batch is stored again by the transaction of several
-- statements, which handles every case.
CREATE FUNCTION festival_fast_path_refused(reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ingest fast path refused: %', reason USING ERRCODE = 'FC001';
END
$$;
