-- Issue 17 (card agent): sign-in with careid-agent, and sign-out when the card leaves the reader.
-- A request: the short code a sign-in page shows (only its digest is kept), for the pending
-- sign-in it finishes; binding_id is set once a card has signed for it.
CREATE TABLE card_agent_requests (
    code_hash TEXT PRIMARY KEY,
    flow_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    binding_id TEXT
);
CREATE INDEX card_agent_requests_flow ON card_agent_requests(flow_key);
CREATE INDEX card_agent_requests_expiry ON card_agent_requests(expires_at);

-- A challenge: single use (deleted when answered, right or wrong), short-lived.
CREATE TABLE card_agent_challenges (
    id TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX card_agent_challenges_expiry ON card_agent_challenges(expires_at);

-- A binding: the card that signed, the session it made (sid, once the browser finished), and
-- the agent's last heartbeat. The agent's token is kept as a digest. A session is card-bound
-- when a binding names it.
CREATE TABLE card_agent_bindings (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    authenticator_id TEXT NOT NULL,
    user_uuid TEXT NOT NULL,
    sid TEXT,
    created_at BIGINT NOT NULL,
    last_heartbeat_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_reason TEXT
);
CREATE INDEX card_agent_bindings_sid ON card_agent_bindings(sid);
CREATE INDEX card_agent_bindings_open ON card_agent_bindings(ended_at, last_heartbeat_at);
