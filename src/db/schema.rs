// @generated-compatible: what `diesel print-schema` writes for migrations/*/ up to 2026-12-08-000002_analyses
// (column order aside: PostgreSQL appends `attempt` and the events' `carrier`, SQLite's rebuilds put them
// near the front).

diesel::table! {
    calls (call_id, carrier, attempt) {
        call_id -> Text,
        attempt -> BigInt,
        stream_id -> Nullable<Text>,
        carrier -> Text,
        direction -> Text,
        from_number -> Text,
        to_number -> Text,
        agent_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        state -> Text,
        end_reason -> Nullable<Text>,
        dial_status -> Nullable<Text>,
        recording_url -> Nullable<Text>,
        started_at -> BigInt,
        answered_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        duration_ms -> BigInt,
        frames_in -> BigInt,
        frames_out -> BigInt,
        bytes_in -> BigInt,
        bytes_out -> BigInt,
        interruptions -> BigInt,
        upstream_reconnects -> BigInt,
        carrier_format -> Nullable<Text>,
        agent_input_format -> Nullable<Text>,
        agent_output_format -> Nullable<Text>,
        error_detail -> Nullable<Text>,
        revision -> BigInt,
        updated_at -> BigInt,
        instance_id -> Text,
        conversation_ids -> Text,
        route -> Text,
        turns -> BigInt,
        turn_p50_ms -> Nullable<BigInt>,
        turn_p95_ms -> Nullable<BigInt>,
        turn_elevenlabs_p50_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    call_events (call_id, carrier, attempt, seq) {
        call_id -> Text,
        carrier -> Text,
        attempt -> BigInt,
        seq -> BigInt,
        at_ms -> BigInt,
        kind -> Text,
        detail -> Text,
    }
}

diesel::table! {
    call_recordings (call_id, carrier, attempt) {
        call_id -> Text,
        carrier -> Text,
        attempt -> BigInt,
        path -> Text,
        bytes -> BigInt,
        duration_ms -> BigInt,
        complete -> Bool,
        lost_ms -> BigInt,
        paused_ms -> BigInt,
        error -> Nullable<Text>,
        url -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    call_analyses (conversation_id) {
        conversation_id -> Text,
        kind -> Text,
        agent_id -> Nullable<Text>,
        event_at -> BigInt,
        status -> Nullable<Text>,
        call_successful -> Nullable<Text>,
        summary -> Nullable<Text>,
        title -> Nullable<Text>,
        data_collection -> Nullable<Text>,
        evaluation -> Nullable<Text>,
        transcript -> Nullable<Text>,
        duration_secs -> Nullable<BigInt>,
        cost -> Nullable<BigInt>,
        termination_reason -> Nullable<Text>,
        main_language -> Nullable<Text>,
        failure -> Nullable<Text>,
        source -> Text,
        received_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(calls, call_events, call_recordings, call_analyses);
