// @generated automatically by Diesel CLI.

diesel::table! {
    audit_events (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        actor_id -> Nullable<Int8>,
        kind -> Text,
        created_at -> Int8,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    logout_tokens (jti) {
        jti -> Text,
        expires_at -> Int8,
    }
}

diesel::table! {
    revocations (id) {
        id -> Int8,
        kind -> Text,
        value -> Text,
        revoked_at -> Int8,
        expires_at -> Int8,
    }
}

diesel::table! {
    sessions (key_hash) {
        key_hash -> Text,
        state -> Text,
        expires_at -> Int8,
        user_id -> Nullable<Int8>,
        kc_sid -> Nullable<Text>,
        login_id -> Nullable<Text>,
        refresh_lease_until -> Nullable<Int8>,
        refresh_lease_owner -> Nullable<Text>,
    }
}

diesel::table! {
    social_accounts (id) {
        id -> Int8,
        user_id -> Int8,
        provider -> Text,
        uid -> Text,
        extra_data -> Text,
        created_at -> Int8,
        last_login_at -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        email -> Nullable<Text>,
        first_name -> Text,
        last_name -> Text,
        is_active -> Bool,
        created_at -> Int8,
        last_login_at -> Nullable<Int8>,
        email_verified -> Bool,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(social_accounts -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    logout_tokens,
    revocations,
    sessions,
    social_accounts,
    users,
);
