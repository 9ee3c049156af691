-- ElevenLabs' verdict on each conversation (docs/post-call.md), from its post-call webhook or fetched by the
-- reconciler: keyed by conversation, so it waits here for a call not stored yet and joins it when it is.
-- The first delivery is kept; ElevenLabs' retries change nothing.
CREATE TABLE call_analyses (
    conversation_id TEXT PRIMARY KEY CHECK (length(conversation_id) BETWEEN 1 AND 256),
    kind TEXT NOT NULL CHECK (length(kind) <= 64),
    agent_id TEXT CHECK (length(agent_id) <= 256),
    event_at BIGINT NOT NULL,
    status TEXT CHECK (length(status) <= 64),
    call_successful TEXT CHECK (length(call_successful) <= 64),
    summary TEXT CHECK (length(summary) <= 16384),
    title TEXT CHECK (length(title) <= 1024),
    data_collection TEXT CHECK (length(data_collection) <= 1048576),
    evaluation TEXT CHECK (length(evaluation) <= 1048576),
    transcript TEXT CHECK (length(transcript) <= 1048576),
    duration_secs BIGINT,
    cost BIGINT,
    termination_reason TEXT CHECK (length(termination_reason) <= 1024),
    main_language TEXT CHECK (length(main_language) <= 64),
    failure TEXT CHECK (length(failure) <= 16384),
    source TEXT NOT NULL CHECK (length(source) <= 32),
    received_at BIGINT NOT NULL
);
