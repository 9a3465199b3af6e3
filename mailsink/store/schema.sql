-- mailsink's database, as a new file or an in-memory store gets it (see migrations.py).

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,             -- arrival order
    uid TEXT NOT NULL UNIQUE,           -- the public ID
    mailbox TEXT NOT NULL DEFAULT 'default',
    created REAL NOT NULL,              -- when received, Unix seconds
    size INTEGER NOT NULL,
    read INTEGER NOT NULL DEFAULT 0,
    mail_from TEXT NOT NULL DEFAULT '', -- SMTP envelope
    rcpt_to TEXT NOT NULL DEFAULT '[]', -- JSON list, Bcc recipients included
    helo TEXT NOT NULL DEFAULT '',
    peer TEXT NOT NULL DEFAULT '',
    username TEXT,
    tls INTEGER NOT NULL DEFAULT 0,
    message_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    sender TEXT,                        -- JSON [name, address], or NULL without a From
    to_list TEXT NOT NULL DEFAULT '[]', -- JSON [[name, address], ...]
    cc_list TEXT NOT NULL DEFAULT '[]',
    bcc_list TEXT NOT NULL DEFAULT '[]',
    reply_to_list TEXT NOT NULL DEFAULT '[]',
    date REAL,
    snippet TEXT NOT NULL DEFAULT '',
    attachments INTEGER NOT NULL DEFAULT 0,
    inline INTEGER NOT NULL DEFAULT 0,
    subject_folded TEXT NOT NULL DEFAULT '' -- mailsink_fold(subject), for subject: searches
);
CREATE INDEX messages_unread ON messages(id) WHERE read = 0;
-- A mailbox's messages in arrival order, and its unread ones: every listing and count of
-- one mailbox reads its own stretch of these, however many other mailboxes there are.
CREATE INDEX messages_mailbox ON messages(mailbox, id);
CREATE INDEX messages_mailbox_unread ON messages(mailbox, id) WHERE read = 0;
CREATE INDEX messages_message_id ON messages(message_id);
-- before:/after: searches and pruning by age
CREATE INDEX messages_created ON messages(created);

-- Mailboxes created through the API, with their SMTP login; a mailbox that mail was routed
-- to exists by its messages alone.
CREATE TABLE mailboxes (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,              -- Unix seconds
    password TEXT,                      -- its SMTP AUTH password (user name: the name)
    expires REAL                        -- Unix seconds, or NULL to keep it until deleted
) WITHOUT ROWID;

-- Kept apart so that list queries never page through message bodies.
CREATE TABLE raw (
    id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    data BLOB NOT NULL,
    compression TEXT NOT NULL DEFAULT '', -- '', 'zstd' or 'zstd:<dictionaries.id>' (codec.py)
    -- The full-text values, packed against the message (pack_words): the index keeps no
    -- copy of them, and needs them again to forget the message when it is deleted.
    words BLOB
);

-- zstd dictionaries trained on the store's own mail; never changed or deleted.
CREATE TABLE dictionaries (
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL,
    created REAL                        -- Unix seconds
);

-- The full-text index, two contentless tables of the same values (rowid = messages.id):
-- ``fts`` keeps each word's positions, for phrases and the words the tokenizer splits;
-- ``fts_words`` only which message has a word, with a three-letter prefix index, for the
-- common single-word search. Both are given text already folded (fold_for_index), and the
-- message's mailbox as one token no search can type (mailbox_token): a search in one
-- mailbox asks the index for that token too, and reads only that mailbox's matches.
CREATE VIRTUAL TABLE fts USING fts5(
    subject, addresses, body, filenames, mailbox,
    content = '', columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE fts_words USING fts5(
    subject, addresses, body, filenames, mailbox,
    content = '', columnsize = 0, detail = none, prefix = '3',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- One row per distinct address and folded name of a message. ``fields`` says where it
-- appeared, one bit per field (records.ADDRESS_FIELDS); an envelope address, which has no
-- name, joins the first header row with the same address.
CREATE TABLE addresses (
    message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,               -- order of first appearance
    fields INTEGER NOT NULL,            -- where it appeared: a bitmask
    address TEXT NOT NULL,              -- mailsink_fold(address)
    name_folded TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message, seq)
) WITHOUT ROWID;
CREATE INDEX addresses_address ON addresses(address);

-- Never deleted from: a name's ID stays valid for every connection that has seen it.
CREATE TABLE header_names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE           -- lower case
);
CREATE TABLE headers (
    message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,               -- position in the message
    name INTEGER NOT NULL,              -- header_names.id
    value TEXT NOT NULL,
    PRIMARY KEY (message, seq)
) WITHOUT ROWID;
CREATE INDEX headers_name ON headers(name, message);

-- Tags that differ only in case are one tag, spelt as it was first used in the store.
CREATE TABLE tags (
    message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,                  -- as first spelt in the store
    folded TEXT NOT NULL,               -- mailsink_fold(tag)
    PRIMARY KEY (message, folded)
) WITHOUT ROWID;
CREATE INDEX tags_by_folded ON tags(folded);
