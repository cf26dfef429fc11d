//! Durable verdicts ([`Verdict`]): one per stream, stored as JSON beside its kind. Written by the
//! dispatcher (failed, blocked, needs attention) and `stop` (stopped); read by every command.

use std::collections::HashMap;

use rusqlite::params;

use super::time::now_rfc3339;
use super::{StateError, StateStore};
use crate::model::Verdict;

impl StateStore {
    /// Records `verdict` for `stream`, replacing any earlier one.
    pub fn set_verdict(&self, stream: &str, verdict: &Verdict) -> Result<(), StateError> {
        let body = serde_json::to_string(verdict).expect("verdicts serialise");
        self.conn
            .execute(
                "INSERT INTO verdicts (stream, kind, body, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(stream) DO UPDATE SET kind = ?2, body = ?3, updated_at = ?4",
                params![stream, verdict.kind(), body, now_rfc3339()],
            )
            .map_err(self.w())?;
        Ok(())
    }

    /// Forgets `stream`'s verdict (its cause is gone, or the user asked to run it again).
    pub fn clear_verdict(&self, stream: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM verdicts WHERE stream = ?1", [stream])
            .map_err(self.w())?;
        Ok(())
    }

    /// Forgets every verdict of `kind` (`failed`: a plain `start` tries those streams again).
    pub fn clear_verdicts_of_kind(&self, kind: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM verdicts WHERE kind = ?1", [kind])
            .map_err(self.w())?;
        Ok(())
    }

    /// Every stream's verdict. A body this version cannot read (written by a newer one) is
    /// kept as a legacy failure with its text, never dropped.
    pub fn verdicts(&self) -> Result<HashMap<String, Verdict>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT stream, kind, body FROM verdicts")
            .map_err(self.q())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(self.q())?;
        let mut out = HashMap::new();
        for row in rows {
            let (stream, kind, body) = row.map_err(self.q())?;
            let verdict = match serde_json::from_str(&body) {
                Ok(v) => v,
                Err(_) if kind == "stopped" => Verdict::Stopped,
                Err(_) => Verdict::Failed {
                    failure: crate::model::Failure::Legacy { text: body },
                },
            };
            out.insert(stream, verdict);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Block, Failure};

    #[test]
    fn verdicts_round_trip_replace_and_clear_by_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(&tmp.path().join("state.db")).unwrap();
        let failed = Verdict::Failed {
            failure: Failure::Prepare {
                detail: "git said no".into(),
            },
        };
        let conflict = Verdict::Blocked {
            block: Block::BaseConflict {
                branches: vec!["stream/B".into(), "stream/C".into()],
                paths: vec!["x.rs".into()],
                tips: vec!["abc".into(), "def".into()],
            },
        };
        store.set_verdict("A", &failed).unwrap();
        store.set_verdict("B", &Verdict::Stopped).unwrap();
        store.set_verdict("Z", &failed).unwrap();
        store.set_verdict("Z", &conflict).unwrap();
        let all = store.verdicts().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["Z"], conflict);
        store.clear_verdicts_of_kind("failed").unwrap();
        store.clear_verdict("B").unwrap();
        assert_eq!(
            store.verdicts().unwrap(),
            HashMap::from([("Z".to_string(), conflict)])
        );
    }
}
