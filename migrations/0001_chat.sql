-- The chat schema: messages in rooms, and per-user delivery/read receipts. Both are captured by Herald.

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id uuid NOT NULL,
    sender_id uuid NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at timestamptz,
    deleted_at timestamptz
);

CREATE INDEX messages_room_id_created_at_idx ON messages (room_id, created_at);

CREATE TABLE message_receipts (
    message_id uuid REFERENCES messages (id),
    user_id uuid,
    delivered_at timestamptz,
    read_at timestamptz,
    PRIMARY KEY (message_id, user_id)
);

SELECT realtime.enable_capture('messages');
SELECT realtime.enable_capture('message_receipts');
