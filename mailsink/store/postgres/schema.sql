-- mailsink's tables in a PostgreSQL database, made by the first node to start (postgres.py).
-- The same rows as the SQLite schema (schema.sql) keeps, in PostgreSQL's own types; the
-- full-text index is a tsvector per message with a GIN index, in place of FTS5's tables.

-- Marks the database as mailsink's, and says which schema it has.
CREATE TABLE mailsink_schema (
    version integer NOT NULL
);

CREATE TABLE messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order
    uid text NOT NULL UNIQUE,           -- the public ID
    mailbox text NOT NULL DEFAULT 'default',
    created double precision NOT NULL,  -- when received, Unix seconds
    size bigint NOT NULL,
    read boolean NOT NULL DEFAULT false,
    mail_from text NOT NULL DEFAULT '', -- SMTP envelope
    rcpt_to text NOT NULL DEFAULT '[]', -- JSON list, Bcc recipients included
    helo text NOT NULL DEFAULT '',
    peer text NOT NULL DEFAULT '',
    username text,
    tls boolean NOT NULL DEFAULT false,
    message_id text NOT NULL DEFAULT '',
    subject text NOT NULL DEFAULT '',
    sender text,                        -- JSON [name, address], or NULL without a From
    to_list text NOT NULL DEFAULT '[]', -- JSON [[name, address], ...]
    cc_list text NOT NULL DEFAULT '[]',
    bcc_list text NOT NULL DEFAULT '[]',
    reply_to_list text NOT NULL DEFAULT '[]',
    date double precision,
    snippet text NOT NULL DEFAULT '',
    attachments integer NOT NULL DEFAULT 0,
    inline integer NOT NULL DEFAULT 0,
    subject_folded text NOT NULL DEFAULT '', -- fold(subject), for subject: searches
    -- Subject, addresses, body text and file names as words (words.py)
    words tsvector NOT NULL DEFAULT ''
);
-- Counting a search's matches visits every heap page that holds one: the words leave the
-- row for TOAST once it passes 256 bytes, while the other text stays in it, compressed,
-- for the filters that read it (subject:). At 100,000 messages the heap is 112 MB, not 145.
ALTER TABLE messages SET (toast_tuple_target = 256);
ALTER TABLE messages
    ALTER COLUMN mail_from SET STORAGE MAIN, ALTER COLUMN rcpt_to SET STORAGE MAIN,
    ALTER COLUMN message_id SET STORAGE MAIN, ALTER COLUMN subject SET STORAGE MAIN,
    ALTER COLUMN sender SET STORAGE MAIN, ALTER COLUMN to_list SET STORAGE MAIN,
    ALTER COLUMN cc_list SET STORAGE MAIN, ALTER COLUMN bcc_list SET STORAGE MAIN,
    ALTER COLUMN reply_to_list SET STORAGE MAIN, ALTER COLUMN snippet SET STORAGE MAIN,
    ALTER COLUMN subject_folded SET STORAGE MAIN;
CREATE INDEX messages_unread ON messages (id) WHERE NOT read;
CREATE INDEX messages_mailbox ON messages (mailbox, id);
CREATE INDEX messages_mailbox_unread ON messages (mailbox, id) WHERE NOT read;
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_created ON messages (created);
CREATE INDEX messages_words ON messages USING gin (words);

-- How many messages each mailbox has, how many are unread and their size: kept up to date
-- by each node's writer at the end of every batch, so that a listing never counts rows.
CREATE TABLE counts (
    mailbox text PRIMARY KEY,
    total bigint NOT NULL,
    unread bigint NOT NULL,
    size bigint NOT NULL
);

-- Mailboxes created through the API, with their SMTP login; a mailbox that mail was routed
-- to exists by its messages alone.
CREATE TABLE mailboxes (
    name text PRIMARY KEY,
    created double precision NOT NULL,  -- Unix seconds
    password text,                      -- its SMTP AUTH password (user name: the name)
    expires double precision            -- Unix seconds, or NULL to keep it until deleted
);

-- Kept apart so that list queries never page through message bodies. PostgreSQL compresses
-- large values itself.
CREATE TABLE raw (
    id bigint PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    data bytea NOT NULL
);

-- One row per distinct address and folded name of a message (see schema.sql).
CREATE TABLE addresses (
    message bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq integer NOT NULL,               -- order of first appearance
    fields integer NOT NULL,            -- where it appeared: a bitmask
    address text NOT NULL,              -- fold(address)
    name_folded text NOT NULL DEFAULT '',
    PRIMARY KEY (message, seq)
);
CREATE INDEX addresses_address ON addresses (address);

CREATE TABLE headers (
    message bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq integer NOT NULL,               -- position in the message
    name text NOT NULL,                 -- lower case
    value text NOT NULL,
    PRIMARY KEY (message, seq)
);
CREATE INDEX headers_name ON headers (name, message);

-- Tags that differ only in case are one tag, spelt as it was first used in the store.
CREATE TABLE tags (
    message bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tag text NOT NULL,                  -- as first spelt in the store
    folded text NOT NULL,               -- fold(tag)
    PRIMARY KEY (message, folded)
);
CREATE INDEX tags_by_folded ON tags (folded);
