//! The conflict radar during a run (worktree mode): on every wake-up of the dispatcher the
//! stream branches' tips are read (a few ref reads: nothing more when nothing moved); when one
//! moved, the merges that will happen later are previewed in memory (`git::radar`, cached by
//! tip pair, so only the moved stream's pairs are merged again), each stream's `conflicts`
//! annotation is updated, and a new or changed prediction is reported at once, a vanished one
//! too. The radar never holds, launches or stops anything.

use std::collections::BTreeMap;

use super::Scheduler;
use super::event::Event;
use crate::facts;
use crate::git::radar::{Radar, Tips};
use crate::model::ConflictWith;

/// The radar's state for one run.
pub(super) struct RadarWatch {
    radar: Radar,
    /// The tips last scanned (`None`: never scanned).
    tips: Option<Tips>,
    /// What was said, by (stream, other side's branch): each pair once, from its earlier
    /// stream.
    said: BTreeMap<(String, String), ConflictWith>,
    /// The last error said (said once; again only when it changes).
    fault: Option<String>,
}

impl RadarWatch {
    /// The radar of a worktree run, aimed at the merge-back target. `None` (with why) when
    /// the repository or the target cannot be read.
    pub fn open(project: &crate::project::Project) -> Result<Self, crate::git::GitError> {
        let repo = crate::git::repo::Repo::open(&project.root)?;
        let target = crate::git::preview::target_branch(project, &repo, None)?;
        Ok(Self {
            radar: Radar::open(&project.root, &target)?,
            tips: None,
            said: BTreeMap::new(),
            fault: None,
        })
    }
}

impl Scheduler<'_> {
    /// Turns the radar on for a worktree run; a repository it cannot read is said once and
    /// the run goes on without it.
    pub(super) fn open_radar(&mut self) {
        if !self.settings.worktree_mode {
            return;
        }
        match RadarWatch::open(&self.settings.project) {
            Ok(watch) => self.radar = Some(watch),
            Err(e) => self.reporter.event(Event::Note {
                stream: None,
                text: format!("the conflict radar is off for this run: {e}"),
            }),
        }
    }

    /// Compares the branches' tips with the last scan; on a move, previews the merges again
    /// and reports what changed. Cheap when nothing moved.
    pub(super) fn watch_conflicts(&mut self) {
        let Some(watch) = self.radar.as_mut() else {
            return;
        };
        let tips = match watch.radar.tips(facts::radar_streams(&self.graph)) {
            Ok(tips) => tips,
            Err(e) => return self.radar_fault(e),
        };
        if watch.tips.as_ref() == Some(&tips) {
            return;
        }
        let predicted = match watch.radar.scan(&self.graph, &tips) {
            Ok(p) => p,
            Err(e) => return self.radar_fault(e),
        };
        watch.tips = Some(tips);
        watch.fault = None;
        let by_stream = facts::conflicts_by_stream(&predicted);
        let now: BTreeMap<(String, String), ConflictWith> = predicted
            .iter()
            .map(|p| {
                let with = facts::conflict_with(p);
                ((p.stream.clone(), with.branch.clone()), with)
            })
            .collect();
        let said = std::mem::replace(&mut watch.said, now);
        for run in self.runs.values_mut() {
            run.conflicts.clear();
        }
        for (stream, conflicts) in by_stream {
            self.run_of(&stream).conflicts = conflicts;
        }
        let now = self
            .radar
            .as_ref()
            .map(|w| w.said.clone())
            .unwrap_or_default();
        for (key, with) in &now {
            if said.get(key) != Some(with) {
                self.reporter.event(Event::Conflict {
                    stream: &key.0,
                    with,
                });
            }
        }
        for (key, with) in &said {
            if !now.contains_key(key) {
                self.reporter.event(Event::ConflictResolved {
                    stream: &key.0,
                    with,
                });
            }
        }
    }

    fn radar_fault(&mut self, e: crate::git::GitError) {
        let text = format!("the conflict radar cannot preview merges: {e}");
        let Some(watch) = self.radar.as_mut() else {
            return;
        };
        if watch.fault.as_ref() != Some(&text) {
            watch.fault = Some(text.clone());
            self.reporter.event(Event::Note { stream: None, text });
        }
    }
}
