//! Bulk cancel of a queue's time range: exactly the confirmed callbacks are cancelled (those
//! still unfinished in the queue and range; PROCESSING ones are left alone, as in the guide),
//! and the summary of what happened to each is kept in the store (`bulk_cancel` documents) for
//! its CSV export.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::CallbackRecord;
use super::service::CallbackService;
use crate::store::{Document, Store, StoreError};

/// Document kind of bulk-cancel summaries in the store.
pub const DOC_KIND: &str = "bulk_cancel";

/// One line of a bulk-cancel summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SummaryLine {
    /// Callback id.
    pub id: Uuid,
    /// Queue.
    pub service_name: String,
    /// Number.
    pub phone_number: String,
    /// Desired time.
    pub desired_time: Option<DateTime<Utc>>,
    /// State before.
    pub previous_state: String,
    /// `CANCELLED` or `SKIPPED`.
    pub result: String,
    /// Why skipped.
    pub reason: String,
}

/// A stored bulk-cancel summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSummary {
    /// Summary id.
    pub id: Uuid,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Who ran it.
    pub user: String,
    /// Queue.
    pub service_name: String,
    /// Range start.
    pub from: DateTime<Utc>,
    /// Range end.
    pub to: DateTime<Utc>,
    /// Every confirmed callback and what happened to it.
    pub lines: Vec<SummaryLine>,
}

/// Cancels the confirmed `ids` among `current` (the queue's unfinished callbacks in the range),
/// each once, in order; an id no longer there, or one that cannot be cancelled, is SKIPPED with
/// the reason.
pub async fn cancel_confirmed(
    callbacks: &CallbackService,
    current: &BTreeMap<Uuid, CallbackRecord>,
    ids: &[Uuid],
    queue: &str,
    by: &str,
) -> Vec<SummaryLine> {
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(*id) {
            continue;
        }
        let Some(rec) = current.get(id) else {
            lines.push(SummaryLine {
                id: *id,
                service_name: queue.to_string(),
                phone_number: String::new(),
                desired_time: None,
                previous_state: String::new(),
                result: "SKIPPED".into(),
                reason: "no longer an unfinished callback of this queue and range".into(),
            });
            continue;
        };
        // As in the guide, a bulk cancel leaves callbacks with an agent (PROCESSING) alone;
        // only the single cancel ends one.
        let (result, reason) = match callbacks.cancel_unless_processing(*id, by).await {
            Ok(_) => ("CANCELLED", String::new()),
            Err(e) => ("SKIPPED", e.to_string()),
        };
        lines.push(SummaryLine {
            id: *id,
            service_name: rec.queue.clone(),
            phone_number: rec.phone.clone(),
            desired_time: Some(rec.desired_time),
            previous_state: rec.state.name().into(),
            result: result.into(),
            reason,
        });
    }
    lines
}

impl BulkSummary {
    /// The stored form of this summary.
    pub fn document(&self) -> Document {
        Document {
            kind: DOC_KIND.into(),
            id: self.id.to_string(),
            body: serde_json::to_value(self).unwrap_or_default(),
        }
    }

    /// The summary as CSV: a header row, then one line per confirmed callback.
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "id",
            "serviceName",
            "phoneNumber",
            "desiredTime",
            "previousState",
            "result",
            "reason",
        ])?;
        for l in &self.lines {
            w.write_record([
                l.id.to_string(),
                l.service_name.clone(),
                l.phone_number.clone(),
                l.desired_time.map(|t| t.to_rfc3339()).unwrap_or_default(),
                l.previous_state.clone(),
                l.result.clone(),
                l.reason.clone(),
            ])?;
        }
        w.into_inner().map_err(|e| e.into_error().into())
    }
}

/// A stored summary by id; `None` when there is none (or it cannot be read).
pub async fn find(store: &dyn Store, id: Uuid) -> Result<Option<BulkSummary>, StoreError> {
    let key = id.to_string();
    Ok(store
        .documents(DOC_KIND)
        .await?
        .into_iter()
        .find(|d| d.id == key)
        .and_then(|d| serde_json::from_value(d.body).ok()))
}
