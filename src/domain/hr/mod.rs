//! The HR feed (the ESR interface): access follows starters, movers and leavers.
//!
//! - `events.rs`: an event as it arrives (JSON or a CSV row) checked into an `HrEvent`;
//! - `feed.rs`: the two doors (the API's batches, `careid hr import`) and their one path:
//!   check, record in the inbox, apply the people concerned, report every row;
//! - `timeline.rs`: what a person's events add up to (a pure fold, so arrival order and
//!   replays change nothing);
//! - `apply.rs`: making stored access match the timeline, exactly once per person version;
//!   leavers, re-hires, detail changes for an RA;
//! - `schedule.rs`: what falls due (pending events, leaving dates, ended assignments);
//! - `reconcile.rs`: the reconciliation report.
//!
//! The RA's side (position maps, events needing attention, detail changes to approve) is in
//! `domain/ra/hr.rs`, under the RA permission rules.

pub mod apply;
mod batch;
pub mod events;
pub mod feed;
pub mod reconcile;
pub mod schedule;
pub mod timeline;
