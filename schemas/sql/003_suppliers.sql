-- Supplier feeds (inv-supplier): their SKU codes mapped to ours, and how far
-- each feed got.

-- Their SKU -> ours, with the units in one of their packs (a case of 12:
-- units_per_pack 12). Loaded by `invctl supplier-map import FILE.csv`.
CREATE TABLE supplier_sku_map (
    supplier       text COLLATE "C" NOT NULL,
    supplier_sku   text COLLATE "C" NOT NULL,
    sku            text COLLATE "C" NOT NULL,
    units_per_pack bigint NOT NULL DEFAULT 1 CHECK (units_per_pack >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier, supplier_sku)
);

-- One row per feed document (supplier, business digest): the highest record
-- ordinal up to which every good event is acknowledged by JetStream, so a
-- restart after a crash skips what is already stored, and a re-sent
-- document (same digest) publishes nothing.
CREATE TABLE feed_checkpoints (
    supplier    text COLLATE "C" NOT NULL,
    digest      text COLLATE "C" NOT NULL,
    name        text NOT NULL,                -- the file or URL it was read from, last time
    records     bigint NOT NULL,              -- records in the feed, rejected ones included
    acked       bigint NOT NULL DEFAULT 0,    -- every record with ordinal <= acked is settled
    published   bigint NOT NULL DEFAULT 0,    -- events JetStream stored (new or duplicate)
    rejected    bigint NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'publishing' CHECK (state IN ('publishing', 'done')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (supplier, digest)
);
