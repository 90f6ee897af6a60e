//! Supplier onboarding's tables: `suppliers`, `supplier_developers`, `onboarding_managers`,
//! `initial_access_tokens`, `supplier_clients`, `conformance_reports`, `promotion_requests`,
//! `test_identities`. Tokens are stored as digests.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_json, Db, StoreError, WriteSet};
use crate::clock::UnixTime;
use crate::model::client::Client;
use crate::model::onboarding::{ConformanceReport, PromotionRequest, Supplier, SupplierClient};

fn supplier_client_from(r: &AnyRow) -> Result<SupplierClient, StoreError> {
    Ok(SupplierClient {
        client_id: r.try_get("client_id")?,
        supplier_id: r.try_get("supplier_id")?,
        scope_justification: r.try_get("scope_justification")?,
        last_test_sign_in_at: r.try_get("last_test_sign_in_at")?,
        created_at: r.try_get("created_at")?,
        promoted_at: r.try_get("promoted_at")?,
        promoted_by: r.try_get("promoted_by")?,
    })
}

fn promotion_from(r: &AnyRow) -> Result<PromotionRequest, StoreError> {
    Ok(PromotionRequest {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        report_id: r.try_get("report_id")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
    })
}

impl Db {
    pub async fn insert_supplier(&self, s: &Supplier, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO suppliers (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&s.id)
            .bind(&s.name)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn supplier(&self, id: &str) -> Result<Option<Supplier>, StoreError> {
        let row = sqlx::query("SELECT id, name FROM suppliers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Supplier {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }

    pub async fn add_supplier_developer(
        &self,
        supplier_id: &str,
        uuid: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO supplier_developers (supplier_id, user_uuid) VALUES ($1, $2)")
            .bind(supplier_id)
            .bind(uuid)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The suppliers a person develops for.
    pub async fn suppliers_of_developer(&self, uuid: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT supplier_id FROM supplier_developers WHERE user_uuid = $1")
            .bind(uuid)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("supplier_id")?)).collect()
    }

    pub async fn add_onboarding_manager(
        &self,
        uuid: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO onboarding_managers (user_uuid, created_at) VALUES ($1, $2)")
            .bind(uuid)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn is_onboarding_manager(&self, uuid: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT user_uuid FROM onboarding_managers WHERE user_uuid = $1")
                .bind(uuid)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }

    pub async fn insert_initial_access_token(
        &self,
        hash: &str,
        supplier_id: &str,
        created_by: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO initial_access_tokens (token_hash, supplier_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash)
            .bind(supplier_id)
            .bind(created_by)
            .bind(now)
            .bind(expires_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The supplier an unused, unexpired initial access token was issued to.
    pub async fn initial_access_token(
        &self,
        hash: &str,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT supplier_id FROM initial_access_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2")
            .bind(hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(r.try_get("supplier_id")?)).transpose()
    }

    pub async fn supplier_client(
        &self,
        client_id: &str,
    ) -> Result<Option<SupplierClient>, StoreError> {
        let row = sqlx::query("SELECT * FROM supplier_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(supplier_client_from).transpose()
    }

    /// The supplier client a registration access token manages.
    pub async fn supplier_client_by_token(
        &self,
        hash: &str,
    ) -> Result<Option<SupplierClient>, StoreError> {
        let row = sqlx::query("SELECT * FROM supplier_clients WHERE registration_token_hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(supplier_client_from).transpose()
    }

    pub async fn supplier_clients_of(
        &self,
        supplier_id: &str,
    ) -> Result<Vec<SupplierClient>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM supplier_clients WHERE supplier_id = $1 ORDER BY created_at",
        )
        .bind(supplier_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(supplier_client_from).collect()
    }

    pub async fn set_scope_justification(
        &self,
        client_id: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE supplier_clients SET scope_justification = $1 WHERE client_id = $2")
            .bind(text)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// RFC 7592 delete: the client is disabled and its registration access token stops working.
    pub async fn delete_supplier_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.set_client_active(client_id, false).await?;
        sqlx::query(
            "UPDATE supplier_clients SET registration_token_hash = $1 WHERE client_id = $2",
        )
        .bind(format!("deleted:{client_id}"))
        .bind(client_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A test identity completed a sign-in to this integration client.
    pub async fn record_test_sign_in(
        &self,
        client_id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE supplier_clients SET last_test_sign_in_at = $1 WHERE client_id = $2")
            .bind(now)
            .bind(client_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn insert_conformance_report(&self, r: &ConformanceReport) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO conformance_reports (id, client_id, created_at, passed, checks) VALUES ($1, $2, $3, $4, $5)")
            .bind(&r.id)
            .bind(&r.client_id)
            .bind(r.created_at)
            .bind(i64::from(r.passed))
            .bind(serde_json::to_string(&r.checks)?)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn latest_conformance_report(
        &self,
        client_id: &str,
    ) -> Result<Option<ConformanceReport>, StoreError> {
        let row = sqlx::query("SELECT * FROM conformance_reports WHERE client_id = $1 ORDER BY created_at DESC, id LIMIT 1")
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(ConformanceReport {
                id: r.try_get("id")?,
                client_id: r.try_get("client_id")?,
                created_at: r.try_get("created_at")?,
                passed: r.try_get::<i64, _>("passed")? == 1,
                checks: from_json(&r.try_get::<String, _>("checks")?)?,
            })
        })
        .transpose()
    }

    pub async fn insert_promotion_request(&self, p: &PromotionRequest) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO promotion_requests (id, client_id, report_id, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&p.id)
            .bind(&p.client_id)
            .bind(&p.report_id)
            .bind(&p.requested_by)
            .bind(p.requested_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub async fn promotion_request(
        &self,
        id: &str,
    ) -> Result<Option<PromotionRequest>, StoreError> {
        let row = sqlx::query("SELECT * FROM promotion_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(promotion_from).transpose()
    }

    /// Undecided promotion requests, oldest first (the onboarding managers' queue).
    pub async fn open_promotion_requests(&self) -> Result<Vec<PromotionRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM promotion_requests WHERE decided_at IS NULL ORDER BY requested_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(promotion_from).collect()
    }

    pub async fn insert_test_identity(
        &self,
        uuid: &str,
        supplier_id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO test_identities (user_uuid, supplier_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(uuid)
        .bind(supplier_id)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn is_test_identity(&self, uuid: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT user_uuid FROM test_identities WHERE user_uuid = $1")
                .bind(uuid)
                .fetch_optional(self.pool())
                .await?
                .is_some(),
        )
    }
}

impl WriteSet {
    /// A supplier's registration: the client and its onboarding row, written only if the
    /// initial access token is still unused and unexpired (the guard: one registration each).
    pub fn register_supplier_client(
        initial_token_hash: &str,
        client: &Client,
        sc: &SupplierClient,
        registration_token_hash: &str,
        now: UnixTime,
    ) -> Result<WriteSet, StoreError> {
        let id = &client.metadata.client_id;
        let mut set = WriteSet::guarded(
            "UPDATE initial_access_tokens SET used_at = $1, client_id = $2 WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1",
            vec![now.into(), id.clone().into(), initial_token_hash.to_string().into()],
        );
        set.insert(
            "clients (client_id, secret_hash, status, metadata, created_at)",
            vec![
                id.clone().into(),
                client.secret_digest.clone().into(),
                "active".to_string().into(),
                serde_json::to_string(&client.metadata)?.into(),
                now.into(),
            ],
        );
        set.insert(
            "supplier_clients (client_id, supplier_id, registration_token_hash, scope_justification, created_at)",
            vec![
                id.clone().into(),
                sc.supplier_id.clone().into(),
                registration_token_hash.to_string().into(),
                sc.scope_justification.clone().into(),
                now.into(),
            ],
        );
        Ok(set)
    }

    /// A promotion decided (once: the guard), and when approved the client's new metadata.
    pub fn decide_promotion(
        request_id: &str,
        by: &str,
        now: UnixTime,
        outcome: &str,
        reason: &str,
    ) -> WriteSet {
        WriteSet::guarded(
            "UPDATE promotion_requests SET decided_by = $1, decided_at = $2, outcome = $3, reason = $4 WHERE id = $5 AND decided_at IS NULL",
            vec![by.to_string().into(), now.into(), outcome.to_string().into(), reason.to_string().into(), request_id.to_string().into()],
        )
    }

    pub fn promote_client(
        &mut self,
        client_id: &str,
        metadata_json: String,
        by: &str,
        now: UnixTime,
    ) {
        self.execute(
            "UPDATE clients SET metadata = $1 WHERE client_id = $2",
            vec![metadata_json.into(), client_id.to_string().into()],
        );
        self.execute(
            "UPDATE supplier_clients SET promoted_at = $1, promoted_by = $2 WHERE client_id = $3",
            vec![
                now.into(),
                by.to_string().into(),
                client_id.to_string().into(),
            ],
        );
    }
}
