//! Recordings the Record block makes: WAV files (8 kHz, 16-bit mono) in
//! `<data_dir>/recordings`, named by a generated UUID only (nothing a caller sends reaches a
//! path), within a total size (`media.recordings_max_total_mb`), each described by a store
//! document (kind `recording`) that the administration lists and that names the call and the
//! callback it belongs to.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::store::{Document, Store, StoreError};

/// Store document kind of a recording's description.
pub const DOC_KIND: &str = "recording";
/// Bytes per second of the files (8000 samples of 2 bytes).
pub const BYTES_PER_SECOND: u64 = 16_000;

/// One recording, as listed by `GET /admin/recordings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// Its id (the file is `<id>.wav`).
    pub id: Uuid,
    /// When it started.
    pub created: DateTime<Utc>,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Why it ended: `silence`, `max_length` or `hang_up`.
    pub ended: String,
    /// The SIP Call-ID of the call.
    pub call_id: String,
    /// The caller's number.
    pub ani: String,
    /// The number dialled.
    pub dnis: String,
    /// The callback the call served, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_id: Option<Uuid>,
}

/// Why a recording could not be kept.
#[derive(Debug, Error)]
pub enum RecordingError {
    /// The directory holds `media.recordings_max_total_mb` already.
    #[error("the recordings directory is full ({used} of {cap} bytes used)")]
    Full {
        /// Bytes used.
        used: u64,
        /// The cap.
        cap: u64,
    },
    /// The file could not be written.
    #[error("cannot write the recording: {0}")]
    Io(#[from] std::io::Error),
    /// The WAV encoder failed.
    #[error("cannot encode the recording: {0}")]
    Wav(#[from] hound::Error),
    /// The description could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The directory of recordings under `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}

/// The file of recording `id` (a UUID, so the name is always safe).
pub fn path_of(data_dir: &Path, id: Uuid) -> PathBuf {
    dir(data_dir).join(format!("{id}.wav"))
}

/// Every recording's description, newest first.
pub async fn list(store: &dyn Store) -> Result<Vec<Recording>, StoreError> {
    let mut out: Vec<Recording> = crate::store::documents_as(store, DOC_KIND).await?;
    out.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    Ok(out)
}

/// Whether `more` bytes fit beside what is stored, under `cap` bytes.
pub async fn room_for(store: &dyn Store, more: u64, cap: u64) -> Result<(), RecordingError> {
    let used: u64 = list(store).await?.iter().map(|r| r.bytes).sum();
    if used.saturating_add(more) > cap {
        return Err(RecordingError::Full { used, cap });
    }
    Ok(())
}

/// Writes `samples` as `<id>.wav` (through a temporary name, so a listed file is whole) and
/// stores its description; returns the description with its size.
pub async fn save(
    store: &dyn Store,
    data_dir: &Path,
    samples: Vec<i16>,
    mut rec: Recording,
) -> Result<Recording, RecordingError> {
    let dir = dir(data_dir);
    let path = path_of(data_dir, rec.id);
    let bytes = tokio::task::spawn_blocking(move || write_wav(&dir, &path, &samples))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    rec.bytes = bytes;
    let doc = Document::of(DOC_KIND, &rec.id.to_string(), &rec)?;
    store.save_documents(vec![doc]).await?;
    Ok(rec)
}

fn write_wav(dir: &Path, path: &Path, samples: &[i16]) -> Result<u64, RecordingError> {
    std::fs::create_dir_all(dir)?;
    let part = path.with_extension("wav.part");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&part, spec)?;
    for &s in samples {
        w.write_sample(s)?;
    }
    w.finalize()?;
    std::fs::rename(&part, path)?;
    Ok(std::fs::metadata(path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saved_recordings_are_listed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::MemoryStore::new();
        let rec = Recording {
            id: Uuid::new_v4(),
            created: DateTime::<Utc>::UNIX_EPOCH,
            duration_ms: 1000,
            bytes: 0,
            ended: "silence".into(),
            call_id: "c".into(),
            ani: "1".into(),
            dnis: "2".into(),
            callback_id: None,
        };
        let saved = save(&store, dir.path(), vec![100; 8000], rec.clone())
            .await
            .unwrap();
        assert_eq!(saved.bytes, 16_044);
        let r = hound::WavReader::open(path_of(dir.path(), rec.id)).unwrap();
        assert_eq!(r.duration(), 8000);
        assert_eq!(list(&store).await.unwrap(), vec![saved]);
        assert!(room_for(&store, 1000, 20_000).await.is_ok());
        assert!(matches!(
            room_for(&store, 5000, 20_000).await,
            Err(RecordingError::Full { used: 16_044, .. })
        ));
    }
}
