//! The [`Store`] methods of [`SqlStore`]: one statement, or one transaction, per method.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::{Database, Encode, Type};

use super::rows::{
    Columns, FromRow, Statement, bind_grant, client_columns, code_columns, consent_columns, corrupt, db_time, decode,
    grant_columns, list_to_db, mcp_session_columns, pending_columns, session_columns, time_from_db, token_columns,
    upstream_columns, window_columns,
};
use super::{Pool, SqlStore, backend};
use crate::error::StoreError;
use crate::secret::TokenHash;
use crate::store::{
    AccessTokenRecord, ClientRecord, CodeRecord, CodeRedemption, ConsentRecord, Grant, IssuedTokens, McpSessionRecord,
    PendingAuthorization, RateLimitWindow, RefreshRotation, RefreshTokenRecord, RevokedToken, SessionRecord, Store,
    UpstreamTokenRecord,
};

/// Run one statement with these binds, the same text for both backends, and evaluate to the
/// number of rows it changed.
macro_rules! execute {
    ($store:expr, $statement:expr $(, $bind:expr)* $(,)?) => {
        with_pool!($store, |pool| {
            sqlx::query($statement)$(.bind($bind))*.execute(pool).await.map_err(backend)?.rows_affected()
        })
    };
}

/// A code that has not expired, used or not: [`Store::code`], and a failed redemption's look.
const SELECT_CODE: &str = concat!("SELECT ", code_columns!(), " FROM codes WHERE hash = $1 AND expires_at > $2");

fn insert_code<'q, DB>(code: &CodeRecord) -> Result<Statement<'q, DB>, StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    let query = sqlx::query(concat!(
        "INSERT INTO codes (",
        code_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, FALSE, $13)"
    ))
    .bind(code.hash.to_hex());
    Ok(bind_grant(query, &code.grant)?
        .bind(code.redirect_uri.clone())
        .bind(code.redirect_uri_given)
        .bind(code.code_challenge.clone())
        .bind(db_time(code.expires_at)))
}

/// The two statements that store a new token pair, access token first (the tables have the
/// same columns).
fn insert_pair<'q, DB>(tokens: &IssuedTokens) -> Result<[Statement<'q, DB>; 2], StoreError>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let insert = |sql: &'static str, hash: &TokenHash, grant: &Grant, expires_at: SystemTime| {
        Ok::<_, StoreError>(bind_grant(sqlx::query(sql).bind(hash.to_hex()), grant)?.bind(db_time(expires_at)))
    };
    let (access, refresh) = (&tokens.access, &tokens.refresh);
    Ok([
        insert(
            concat!(
                "INSERT INTO access_tokens (",
                token_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &access.hash,
            &access.grant,
            access.expires_at,
        )?,
        insert(
            concat!(
                "INSERT INTO refresh_tokens (",
                token_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &refresh.hash,
            &refresh.grant,
            refresh.expires_at,
        )?,
    ])
}

/// Revoke a grant, in this order, then its upstream tokens and MCP sessions. Refresh tokens first: on PostgreSQL, deleting a row that a
/// rotation in flight has updated waits for that rotation to commit, and each later statement
/// (a new snapshot under READ COMMITTED) then sees the successor pair it inserted, so the
/// second pass over `refresh_tokens` catches the successor. Without it, a rotation racing a
/// revocation leaves a live token pair behind.
const DELETE_GRANT: [&str; 6] = [
    "DELETE FROM refresh_tokens WHERE grant_id = $1",
    "DELETE FROM codes WHERE grant_id = $1",
    "DELETE FROM access_tokens WHERE grant_id = $1",
    "DELETE FROM refresh_tokens WHERE grant_id = $1",
    "DELETE FROM upstream_tokens WHERE grant_id = $1",
    "DELETE FROM mcp_sessions WHERE grant_id = $1",
];

/// Revoke everything of one user, in the order of [`DELETE_GRANT`] and for the same reason, then
/// their upstream tokens, sign-in sessions, MCP sessions and remembered consent.
const DELETE_SUBJECT: [&str; 8] = [
    "DELETE FROM refresh_tokens WHERE subject = $1",
    "DELETE FROM codes WHERE subject = $1",
    "DELETE FROM access_tokens WHERE subject = $1",
    "DELETE FROM refresh_tokens WHERE subject = $1",
    "DELETE FROM upstream_tokens WHERE subject = $1",
    "DELETE FROM sessions WHERE subject = $1",
    "DELETE FROM mcp_sessions WHERE subject = $1",
    "DELETE FROM consents WHERE subject = $1",
];

/// Revoke everything of everyone, in the order of [`DELETE_GRANT`] and for the same reason.
const DELETE_EVERY_GRANT: [&str; 8] = [
    "DELETE FROM refresh_tokens",
    "DELETE FROM codes",
    "DELETE FROM access_tokens",
    "DELETE FROM refresh_tokens",
    "DELETE FROM upstream_tokens",
    "DELETE FROM mcp_sessions",
    "DELETE FROM sessions",
    "DELETE FROM consents",
];

#[async_trait]
impl Store for SqlStore {
    async fn insert_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        let redirect_uris = list_to_db(&client.redirect_uris)?;
        let grant_types = list_to_db(&client.grant_types)?;
        execute!(
            self,
            concat!(
                "INSERT INTO clients (",
                client_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_id) DO UPDATE SET
                   secret_hash = excluded.secret_hash, auth_method = excluded.auth_method,
                   client_name = excluded.client_name, redirect_uris = excluded.redirect_uris,
                   grant_types = excluded.grant_types, scope = excluded.scope, issued_at = excluded.issued_at"
            ),
            client.client_id.as_str(),
            client.secret_hash.as_ref().map(TokenHash::to_hex),
            client.auth_method.as_str(),
            client.client_name.as_deref(),
            redirect_uris.as_str(),
            grant_types.as_str(),
            client.scope.as_deref(),
            db_time(client.issued_at)
        );
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        const SELECT: &str = concat!("SELECT ", client_columns!(), " FROM clients WHERE client_id = $1");
        with_pool!(self, |pool| decode(sqlx::query(SELECT).bind(client_id).fetch_optional(pool).await))
    }

    async fn insert_pending(&self, pending: PendingAuthorization) -> Result<(), StoreError> {
        let scopes = list_to_db(&pending.scopes)?;
        execute!(
            self,
            concat!(
                "INSERT INTO pending_authorizations (",
                pending_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            pending.id_hash.to_hex(),
            pending.client_id.as_str(),
            pending.redirect_uri.as_str(),
            pending.redirect_uri_given,
            pending.state.as_deref(),
            pending.code_challenge.as_str(),
            scopes.as_str(),
            pending.resource.as_str(),
            pending.csrf_token.as_str(),
            i64::from(pending.failed_logins),
            db_time(pending.expires_at)
        );
        Ok(())
    }

    async fn pending(&self, id_hash: &TokenHash, now: SystemTime) -> Result<Option<PendingAuthorization>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            pending_columns!(),
            " FROM pending_authorizations WHERE id_hash = $1 AND expires_at > $2"
        );
        self.find_current(SELECT, id_hash, now).await
    }

    async fn record_failed_login(&self, id_hash: &TokenHash) -> Result<u32, StoreError> {
        let count = with_pool!(self, |pool| {
            match sqlx::query(
                "UPDATE pending_authorizations SET failed_logins = failed_logins + 1 WHERE id_hash = $1
                 RETURNING failed_logins",
            )
            .bind(id_hash.to_hex())
            .fetch_optional(pool)
            .await
            .map_err(backend)?
            {
                Some(row) => Some(row.int("failed_logins")?),
                None => None,
            }
        });
        // No such sign-in: as many failures as can be, so that the caller gives up on it.
        Ok(count.map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    async fn take_pending(
        &self,
        id_hash: &TokenHash,
        now: SystemTime,
        code: Option<CodeRecord>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent takers.
            let taken = sqlx::query(concat!(
                "DELETE FROM pending_authorizations WHERE id_hash = $1 RETURNING ",
                pending_columns!()
            ))
            .bind(id_hash.to_hex())
            .fetch_optional(&mut *tx)
            .await;
            let taken = decode::<PendingAuthorization>(taken)?
                // An expired one is removed all the same, and not handed out.
                .filter(|p| p.expires_at > now);
            if let (Some(_), Some(code)) = (&taken, &code) {
                insert_code(code)?.execute(&mut *tx).await.map_err(backend)?;
                sqlx::query("UPDATE clients SET used_at = $1 WHERE client_id = $2 AND used_at IS NULL")
                    .bind(db_time(now))
                    .bind(code.grant.client_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(taken)
        })
    }

    async fn code(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<CodeRecord>, StoreError> {
        self.find_current(SELECT_CODE, hash, now).await
    }

    async fn redeem_code(
        &self,
        hash: &TokenHash,
        now: SystemTime,
        tokens: Option<IssuedTokens>,
    ) -> Result<CodeRedemption, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent redeemers. On PostgreSQL it
            // holds the row until commit, so a replay that revokes the grant waits for the
            // tokens below and then deletes them too.
            let redeemed = sqlx::query(concat!(
                "UPDATE codes SET used = TRUE WHERE hash = $1 AND used = FALSE AND expires_at > $2 RETURNING ",
                code_columns!()
            ))
            .bind(hash.to_hex())
            .bind(db_time(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            let outcome = match redeemed {
                Some(row) => {
                    if let Some(tokens) = &tokens {
                        for statement in insert_pair(tokens)? {
                            statement.execute(&mut *tx).await.map_err(backend)?;
                        }
                    }
                    CodeRedemption::Redeemed(CodeRecord::from_row(&row)?)
                }
                None => {
                    let existing = sqlx::query(SELECT_CODE)
                        .bind(hash.to_hex())
                        .bind(db_time(now))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend)?;
                    match existing {
                        Some(row) if row.flag("used")? => CodeRedemption::Replayed(CodeRecord::from_row(&row)?),
                        _ => CodeRedemption::Unknown,
                    }
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn access_token(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<AccessTokenRecord>, StoreError> {
        const SELECT: &str =
            concat!("SELECT ", token_columns!(), " FROM access_tokens WHERE hash = $1 AND expires_at > $2");
        self.find_current(SELECT, hash, now).await
    }

    async fn refresh_grant(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<Grant>, StoreError> {
        const SELECT: &str =
            concat!("SELECT ", grant_columns!(), " FROM refresh_tokens WHERE hash = $1 AND expires_at > $2");
        self.find_current(SELECT, hash, now).await
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: SystemTime,
        new: IssuedTokens,
        sealed_successor: Vec<u8>,
    ) -> Result<RefreshRotation, StoreError> {
        const RETIRE: &str = concat!(
            "UPDATE refresh_tokens SET rotated_at = $2, successor_hash = $3, sealed_successor = $4
             WHERE hash = $1 AND rotated_at IS NULL AND expires_at > $2 RETURNING ",
            token_columns!()
        );
        // The successor counts only while it is itself current: not rotated, expired or revoked.
        const STATE: &str = concat!(
            "SELECT ",
            grant_columns!(),
            ", rotated_at, sealed_successor,
               EXISTS (SELECT 1 FROM refresh_tokens s WHERE s.hash = refresh_tokens.successor_hash
                       AND s.rotated_at IS NULL AND s.expires_at > $2) AS successor_current
             FROM refresh_tokens WHERE hash = $1 AND expires_at > $2"
        );
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            // The one statement that decides between concurrent rotations.
            let retired = sqlx::query(RETIRE)
                .bind(old.to_hex())
                .bind(db_time(now))
                .bind(new.refresh.hash.to_hex())
                .bind(sealed_successor)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            let outcome = match retired {
                Some(row) => {
                    let record = RefreshTokenRecord::from_row(&row)?;
                    for statement in insert_pair(&new)? {
                        statement.execute(&mut *tx).await.map_err(backend)?;
                    }
                    RefreshRotation::Rotated(record)
                }
                None => {
                    let row = sqlx::query(STATE).bind(old.to_hex()).bind(db_time(now)).fetch_optional(&mut *tx).await;
                    match row.map_err(backend)? {
                        Some(row) => match row.opt_int("rotated_at")? {
                            Some(rotated_at) => RefreshRotation::AlreadyRotated {
                                grant: Grant::from_row(&row)?,
                                rotated_at: time_from_db(rotated_at)
                                    .ok_or_else(|| corrupt("rotated_at is negative"))?,
                                sealed_successor: match row.flag("successor_current")? {
                                    true => row.opt_bytes("sealed_successor")?,
                                    false => None,
                                },
                            },
                            // Current yet not matched by the update: cannot happen inside the
                            // transaction; refuse rather than guess.
                            None => RefreshRotation::Unknown,
                        },
                        None => RefreshRotation::Unknown,
                    }
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.delete_all(&DELETE_GRANT, Some(grant_id)).await
    }

    async fn revoke_token(&self, hash: &TokenHash) -> Result<RevokedToken, StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            let deleted = sqlx::query("DELETE FROM access_tokens WHERE hash = $1")
                .bind(hash.to_hex())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let outcome = if deleted.rows_affected() > 0 {
                RevokedToken::Access
            } else {
                let grant = sqlx::query("SELECT grant_id FROM refresh_tokens WHERE hash = $1")
                    .bind(hash.to_hex())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
                match grant {
                    Some(row) => {
                        let grant_id = row.text("grant_id")?;
                        for statement in DELETE_GRANT {
                            sqlx::query(statement).bind(grant_id.as_str()).execute(&mut *tx).await.map_err(backend)?;
                        }
                        RevokedToken::Refresh
                    }
                    None => RevokedToken::Unknown,
                }
            };
            tx.commit().await.map_err(backend)?;
            Ok(outcome)
        })
    }

    async fn revoke_subject(&self, subject: &str) -> Result<(), StoreError> {
        self.delete_all(&DELETE_SUBJECT, Some(subject)).await
    }

    async fn revoke_all(&self) -> Result<(), StoreError> {
        self.delete_all(&DELETE_EVERY_GRANT, None).await
    }

    async fn close(&self) {
        SqlStore::close(self).await;
    }

    async fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> Result<(), StoreError> {
        execute!(
            self,
            concat!(
                "INSERT INTO upstream_tokens (",
                upstream_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (grant_id) DO UPDATE SET
                   subject = excluded.subject, sealed = excluded.sealed, version = excluded.version,
                   refreshing_until = excluded.refreshing_until, expires_at = excluded.expires_at"
            ),
            record.grant_id.as_str(),
            record.subject.as_str(),
            record.sealed,
            db_version(record.version)?,
            record.refreshing_until.map(db_time),
            db_time(record.expires_at)
        );
        Ok(())
    }

    async fn upstream_tokens(
        &self,
        grant_id: &str,
        now: SystemTime,
    ) -> Result<Option<UpstreamTokenRecord>, StoreError> {
        const SELECT: &str =
            concat!("SELECT ", upstream_columns!(), " FROM upstream_tokens WHERE grant_id = $1 AND expires_at > $2");
        with_pool!(self, |pool| {
            decode(sqlx::query(SELECT).bind(grant_id).bind(db_time(now)).fetch_optional(pool).await)
        })
    }

    async fn replace_upstream_tokens(&self, version: u64, new: UpstreamTokenRecord) -> Result<bool, StoreError> {
        // One conditional statement: the database lets exactly one of concurrent callers
        // shown the same version match the row.
        let replaced = execute!(
            self,
            "UPDATE upstream_tokens SET sealed = $3, version = $4, refreshing_until = $5
             WHERE grant_id = $1 AND version = $2",
            new.grant_id.as_str(),
            db_version(version)?,
            new.sealed,
            db_version(new.version)?,
            new.refreshing_until.map(db_time)
        );
        Ok(replaced > 0)
    }

    async fn delete_upstream_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        execute!(self, "DELETE FROM upstream_tokens WHERE grant_id = $1", grant_id);
        Ok(())
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let claims = serde_json::to_string(&session.claims).map_err(|e| StoreError::Backend(Box::new(e)))?;
        execute!(
            self,
            concat!("INSERT INTO sessions (", session_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)"),
            session.hash.to_hex(),
            session.subject.as_str(),
            session.username.as_str(),
            db_time(session.created_at),
            db_time(session.expires_at),
            claims.as_str()
        );
        Ok(())
    }

    async fn session(&self, hash: &TokenHash, now: SystemTime) -> Result<Option<SessionRecord>, StoreError> {
        const SELECT: &str =
            concat!("SELECT ", session_columns!(), " FROM sessions WHERE hash = $1 AND expires_at > $2");
        self.find_current(SELECT, hash, now).await
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        execute!(self, "DELETE FROM sessions WHERE hash = $1", hash.to_hex());
        Ok(())
    }

    async fn put_mcp_session(&self, session: McpSessionRecord) -> Result<(), StoreError> {
        execute!(
            self,
            concat!(
                "INSERT INTO mcp_sessions (",
                mcp_session_columns!(),
                ") VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id_hash) DO UPDATE SET subject = excluded.subject, grant_id = excluded.grant_id,
                   initialize = excluded.initialize, last_used_at = excluded.last_used_at"
            ),
            session.id_hash.to_hex(),
            session.subject.as_str(),
            session.grant_id.as_deref(),
            session.initialize.as_str(),
            db_time(session.last_used_at)
        );
        Ok(())
    }

    async fn mcp_session(&self, id_hash: &TokenHash) -> Result<Option<McpSessionRecord>, StoreError> {
        const SELECT: &str = concat!("SELECT ", mcp_session_columns!(), " FROM mcp_sessions WHERE id_hash = $1");
        with_pool!(self, |pool| decode(sqlx::query(SELECT).bind(id_hash.to_hex()).fetch_optional(pool).await))
    }

    async fn delete_mcp_session(&self, id_hash: &TokenHash) -> Result<(), StoreError> {
        execute!(self, "DELETE FROM mcp_sessions WHERE id_hash = $1", id_hash.to_hex());
        Ok(())
    }

    async fn sync_mcp_sessions(
        &self,
        used: &[TokenHash],
        held: &[TokenHash],
        now: SystemTime,
    ) -> Result<Vec<TokenHash>, StoreError> {
        use sqlx::Row as _;
        let mut stored = std::collections::HashSet::new();
        // One transaction of a statement per chunk of ids: a sweep of many sessions is one
        // commit and few round trips, within every backend's limit on bound parameters.
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            for chunk in used.chunks(SESSION_CHUNK) {
                let touch = format!(
                    "UPDATE mcp_sessions SET last_used_at = $1 WHERE last_used_at < $1 AND id_hash IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&touch).bind(db_time(now));
                for hash in chunk {
                    query = query.bind(hash.to_hex());
                }
                query.execute(&mut *tx).await.map_err(backend)?;
            }
            for chunk in held.chunks(SESSION_CHUNK) {
                let select =
                    format!("SELECT id_hash FROM mcp_sessions WHERE id_hash IN ({})", placeholders(1, chunk.len()));
                let mut query = sqlx::query(&select);
                for hash in chunk {
                    query = query.bind(hash.to_hex());
                }
                for row in query.fetch_all(&mut *tx).await.map_err(backend)? {
                    stored.insert(row.try_get::<String, _>(0).map_err(backend)?);
                }
            }
            tx.commit().await.map_err(backend)
        })?;
        Ok(held.iter().filter(|h| !stored.contains(&h.to_hex())).copied().collect())
    }

    async fn sweep_idle_mcp_sessions(&self, idle_since: SystemTime) -> Result<usize, StoreError> {
        self.sweep("DELETE FROM mcp_sessions WHERE last_used_at <= $1", idle_since).await
    }

    async fn put_consent(&self, consent: ConsentRecord) -> Result<(), StoreError> {
        let scopes = list_to_db(&consent.scopes)?;
        execute!(
            self,
            concat!(
                "INSERT INTO consents (",
                consent_columns!(),
                ") VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subject, client_id) DO UPDATE SET
                   scopes = excluded.scopes, granted_at = excluded.granted_at, expires_at = excluded.expires_at"
            ),
            consent.subject.as_str(),
            consent.client_id.as_str(),
            scopes.as_str(),
            db_time(consent.granted_at),
            db_time(consent.expires_at)
        );
        Ok(())
    }

    async fn consent(
        &self,
        subject: &str,
        client_id: &str,
        now: SystemTime,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE subject = $1 AND client_id = $2 AND expires_at > $3"
        );
        with_pool!(self, |pool| {
            decode(sqlx::query(SELECT).bind(subject).bind(client_id).bind(db_time(now)).fetch_optional(pool).await)
        })
    }

    async fn revoke_consent(&self, subject: &str, client_id: &str) -> Result<(), StoreError> {
        execute!(self, "DELETE FROM consents WHERE subject = $1 AND client_id = $2", subject, client_id);
        Ok(())
    }

    async fn hit_rate_limit(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<RateLimitWindow, StoreError> {
        let ends_at = crate::clock::later(now, window);
        // One statement, so that concurrent callers (in any process) each get their own count:
        // the database applies the update to the row one caller at a time. A window that has
        // ended starts over at 1.
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "INSERT INTO rate_limits (limit_key, hits, ends_at) VALUES ($1, 1, $3)
                 ON CONFLICT (limit_key) DO UPDATE SET
                   hits = CASE WHEN rate_limits.ends_at > $2 THEN rate_limits.hits + 1 ELSE 1 END,
                   ends_at = CASE WHEN rate_limits.ends_at > $2 THEN rate_limits.ends_at ELSE excluded.ends_at END
                 RETURNING ",
                window_columns!()
            ))
            .bind(key)
            .bind(db_time(now))
            .bind(db_time(ends_at))
            .fetch_one(pool)
            .await
            .map_err(backend)?;
            RateLimitWindow::from_row(&row)
        })
    }

    async fn rate_limit_count(&self, key: &str, now: SystemTime) -> Result<RateLimitWindow, StoreError> {
        const SELECT: &str =
            concat!("SELECT ", window_columns!(), " FROM rate_limits WHERE limit_key = $1 AND ends_at > $2");
        let current = with_pool!(self, |pool| {
            decode(sqlx::query(SELECT).bind(key).bind(db_time(now)).fetch_optional(pool).await)?
        });
        Ok(current.unwrap_or(RateLimitWindow { count: 0, ends_at: now }))
    }

    async fn reset_rate_limit(&self, key: &str) -> Result<(), StoreError> {
        execute!(self, "DELETE FROM rate_limits WHERE limit_key = $1", key);
        Ok(())
    }

    async fn undo_rate_limit_hit(&self, key: &str, window_ends_at: SystemTime) -> Result<(), StoreError> {
        // Matched on the window's end: a window that started over since is not touched.
        execute!(
            self,
            "UPDATE rate_limits SET hits = hits - 1 WHERE limit_key = $1 AND ends_at = $2 AND hits > 0",
            key,
            db_time(window_ends_at)
        );
        Ok(())
    }

    async fn sweep_expired(&self, now: SystemTime) -> Result<usize, StoreError> {
        let mut swept = 0;
        let tables = [
            ("pending_authorizations", "expires_at"),
            ("codes", "expires_at"),
            ("access_tokens", "expires_at"),
            ("refresh_tokens", "expires_at"),
            ("sessions", "expires_at"),
            ("consents", "expires_at"),
            ("rate_limits", "ends_at"),
        ];
        for (table, column) in tables {
            swept += self.sweep(&format!("DELETE FROM {table} WHERE {column} <= $1"), now).await?;
        }
        // After the codes and tokens: a grant with neither a code nor a refresh token left has
        // ended, and its upstream tokens with it.
        swept += self
            .sweep(
                "DELETE FROM upstream_tokens WHERE expires_at <= $1
                 OR (NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = upstream_tokens.grant_id)
                     AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = upstream_tokens.grant_id))",
                now,
            )
            .await?;
        Ok(swept)
    }

    async fn forget_sealed_successors(&self, rotated_before: SystemTime) -> Result<usize, StoreError> {
        self.sweep(
            "UPDATE refresh_tokens SET sealed_successor = NULL
             WHERE sealed_successor IS NOT NULL AND rotated_at <= $1",
            rotated_before,
        )
        .await
    }

    async fn sweep_unused_clients(&self, registered_before: SystemTime) -> Result<usize, StoreError> {
        self.sweep(
            "DELETE FROM clients WHERE used_at IS NULL AND issued_at < $1
             AND NOT EXISTS (SELECT 1 FROM pending_authorizations p WHERE p.client_id = clients.client_id)",
            registered_before,
        )
        .await
    }
}

impl SqlStore {
    /// The record that `select` finds for `key` if it has not expired at `now`: `select` reads
    /// the record's column list, with `$1` the key's hash and `$2` the time.
    async fn find_current<R: FromRow>(
        &self,
        select: &str,
        key: &TokenHash,
        now: SystemTime,
    ) -> Result<Option<R>, StoreError> {
        with_pool!(self, |pool| {
            decode(sqlx::query(select).bind(key.to_hex()).bind(db_time(now)).fetch_optional(pool).await)
        })
    }

    /// Run `statements`, whose only parameter `$1` is `key` (or which have none), in order and
    /// in one transaction.
    async fn delete_all(&self, statements: &[&str], key: Option<&str>) -> Result<(), StoreError> {
        with_pool!(self, |pool, begin| {
            let mut tx = pool.begin_with(begin).await.map_err(backend)?;
            for statement in statements {
                let query = sqlx::query(statement);
                let query = match key {
                    Some(key) => query.bind(key),
                    None => query,
                };
                query.execute(&mut *tx).await.map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        })
    }

    /// Run one of the sweeper's statements, whose only parameter `$1` is a time, and return
    /// how many rows it deleted or changed.
    async fn sweep(&self, statement: &str, time: SystemTime) -> Result<usize, StoreError> {
        let rows = execute!(self, statement, db_time(time));
        Ok(usize::try_from(rows).unwrap_or(usize::MAX))
    }
}

/// How many MCP session ids [`Store::sync_mcp_sessions`] binds to one statement.
const SESSION_CHUNK: usize = 500;

/// `count` numbered parameters from `$first` on, comma-separated, for an `IN (...)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A record version as a `BIGINT`.
fn db_version(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| StoreError::Backend("an upstream token version beyond i64".into()))
}
